"""Vouchers by e-mail against a real SMTP server (aiosmtpd on 127.0.0.1): multipart
messages with the QR inline, a journal so reruns send nothing twice, and a report
that names the address the server refused."""

from __future__ import annotations

import dataclasses
import gc
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from tests.node.netutil import free_base_port
from tests.wallet.support import Inbox, start_smtp, tool, zbar
from wallets import mail
from wallets.book import Entry
from wallets.letters import CampaignText, balance_link
from wallets.mail import Journal, SmtpSettings, build_message, send
from wallets.voucher import Voucher, new_voucher

CHAIN = "relance-devnet-1764431234"
CAMPAIGN = CampaignText(
    "NAM-2026", "Chèques relance Namur 2026", "Ville de Namur", ("NAM-CENTRE",), (),
    1_767_225_600_000, 1_767_225_600_000 + 90 * 86_400_000,
)  # fmt: skip


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox(refuse={"nobody@example.be"})
    port = free_base_port(1)
    controller = start_smtp(inbox, port)
    try:
        yield inbox, port
    finally:
        controller.stop()


def _item(n: int, email: str) -> tuple[Entry, Voucher]:
    voucher = new_voucher(CHAIN)
    entry = Entry(
        serial=f"NAM-2026-{n:06d}", row_id=str(n), channel="email",
        public_key=voucher.signer.public_key.hex(), seed=voucher.seed.hex(), amount_cents=4_000,
        zone="NAM-CENTRE", name="Zoë Lefèvre", address=(), email=email, status="allocated",
    )  # fmt: skip
    return entry, voucher


def _inline_qr(message: EmailMessage, tmp_path: Path) -> str:
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert plain is not None and html is not None
    images = [p for p in message.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1
    cid = str(images[0]["Content-ID"]).strip("<>")
    assert f'src="cid:{cid}"' in html.get_content()
    png = tmp_path / f"{message['X-Relance-Serial']}.png"
    payload = images[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    png.write_bytes(payload)
    (code,) = zbar(png)
    assert code in plain.get_content()  # the code is also written out for manual entry
    return code


def test_mails_are_sent_once_with_the_qr_inline_and_failures_reported(
    smtp: tuple[Inbox, int], tmp_path: Path
) -> None:
    inbox, port = smtp
    items = [_item(1, "zoe@example.be"), _item(2, "nobody@example.be"), _item(3, "jean@example.be")]
    settings = SmtpSettings("127.0.0.1", port, "Ville de Namur <relance@namur.be>")
    journal_file = tmp_path / "journal.jsonl"

    first = send(items, CAMPAIGN, settings, Journal(journal_file))
    assert [(o.serial, o.status) for o in first] == [
        ("NAM-2026-000001", "sent"), ("NAM-2026-000002", "failed"), ("NAM-2026-000003", "sent"),
    ]  # fmt: skip
    assert "550" in first[1].detail
    received = inbox.received()
    assert sorted(str(m["To"]) for m in received) == ["jean@example.be", "zoe@example.be"]
    for message in received:
        assert "40,00" in str(message["Subject"]) and "€" in str(message["Subject"])
        serial = str(message["X-Relance-Serial"])
        expected = next(v for e, v in items if e.serial == serial)
        assert _inline_qr(message, tmp_path) == expected.uri()

    # A rerun sends nothing twice; the refused address is tried again and reported again.
    second = send(items, CAMPAIGN, settings, Journal(journal_file))
    assert [(o.serial, o.status) for o in second] == [
        ("NAM-2026-000001", "skipped"), ("NAM-2026-000003", "skipped"),
        ("NAM-2026-000002", "failed"),
    ]  # fmt: skip
    assert len(inbox.received()) == 2


def test_an_unreachable_server_fails_every_message_without_raising(tmp_path: Path) -> None:
    settings = SmtpSettings("127.0.0.1", free_base_port(1), "relance@namur.be")
    outcomes = send([_item(1, "zoe@example.be")], CAMPAIGN, settings, Journal(tmp_path / "j"))
    assert [o.status for o in outcomes] == ["failed"]
    assert not (tmp_path / "j").exists()


def test_the_sender_logs_in_when_asked(tmp_path: Path) -> None:
    seen: list[tuple[str, bytes, bytes]] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        seen.append((mechanism, data.login, data.password))
        return AuthResult(success=data.password == b"s3cret", handled=False)

    inbox = Inbox()
    port = free_base_port(1)
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=authenticator, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        good = SmtpSettings("127.0.0.1", port, "relance@namur.be", "relance", "s3cret")
        outcomes = send([_item(1, "zoe@example.be")], CAMPAIGN, good, Journal(tmp_path / "a"))
        assert [o.status for o in outcomes] == ["sent"]
        bad = SmtpSettings("127.0.0.1", port, "relance@namur.be", "relance", "wrong")
        refused = send([_item(2, "zoe@example.be")], CAMPAIGN, bad, Journal(tmp_path / "b"))
        assert [o.status for o in refused] == ["failed"]
    finally:
        controller.stop()
    assert seen[0][1:] == (b"relance", b"s3cret")
    assert len(inbox.received()) == 1


def _self_signed(tmp_path: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate for 127.0.0.1 (the commune's own CA) and a server context using it."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(cert), str(key))
    return cert, server_tls


def _login(
    port: int, *, tls: bool = False, starttls: bool = False, cafile: str | None = None
) -> SmtpSettings:
    """Settings that log in as relance/s3cret, with the TLS options given."""
    return SmtpSettings(
        "127.0.0.1", port, "relance@namur.be", "relance", "s3cret", starttls, tls, cafile
    )


def _authenticator(
    server: object, session: object, envelope: object, mechanism: str, data: object
) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password == b"s3cret"
    return AuthResult(success=ok, handled=False)


def test_implicit_tls_then_login_with_the_communes_own_ca(tmp_path: Path) -> None:
    cert, server_tls = _self_signed(tmp_path)
    inbox = Inbox()
    port = free_base_port(1)
    # aiosmtpd offers AUTH only after its own STARTTLS; here the whole connection is TLS.
    controller = Controller(inbox, hostname="127.0.0.1", port=port, ssl_context=server_tls,
                            authenticator=_authenticator, auth_require_tls=False)  # fmt: skip
    controller.start()
    try:
        secure = _login(port, tls=True, cafile=str(cert))
        sent = send([_item(1, "zoe@example.be")], CAMPAIGN, secure, Journal(tmp_path / "a"))
        assert [o.status for o in sent] == ["sent"]
        untrusted = _login(port, tls=True)
        failed = send([_item(2, "zoe@example.be")], CAMPAIGN, untrusted, Journal(tmp_path / "b"))
        assert [o.status for o in failed] == ["failed"]  # a certificate nobody vouches for
    finally:
        controller.stop()
    (message,) = inbox.received()
    assert message["X-Relance-Serial"] == "NAM-2026-000001"


def test_starttls_then_login_with_the_communes_own_ca(tmp_path: Path) -> None:
    cert, server_tls = _self_signed(tmp_path)
    inbox = Inbox()
    port = free_base_port(1)
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_tls,
                            require_starttls=True, authenticator=_authenticator)  # fmt: skip
    controller.start()
    try:
        secure = _login(port, starttls=True, cafile=str(cert))
        sent = send([_item(1, "zoe@example.be")], CAMPAIGN, secure, Journal(tmp_path / "a"))
        assert [o.status for o in sent] == ["sent"]
        plain = _login(port)
        refused = send([_item(2, "zoe@example.be")], CAMPAIGN, plain, Journal(tmp_path / "b"))
        assert [o.status for o in refused] == ["failed"]  # the server insists on STARTTLS
        untrusted = _login(port, starttls=True)
        failed = send([_item(3, "zoe@example.be")], CAMPAIGN, untrusted, Journal(tmp_path / "c"))
        assert [o.status for o in failed] == ["failed"]  # a certificate nobody vouches for
    finally:
        controller.stop()
    assert len(inbox.received()) == 1


class _SlowGoodbye(SMTP):
    """Answers QUIT, then stalls its loop for a second before the TLS goodbye, as a busy
    server (or a loaded CI machine) does."""

    async def smtp_QUIT(self, arg: str) -> None:
        await self.push("221 Bye")
        time.sleep(1.0)  # blocks this server's loop: no close_notify answered meanwhile
        assert self.transport is not None
        self.transport.close()


class _SlowGoodbyeController(Controller):
    def factory(self) -> SMTP:
        return _SlowGoodbye(self.handler, **self.SMTP_kwargs)


def _open_sockets_to(port: int) -> int:
    count = 0
    for thing in gc.get_objects():
        if isinstance(thing, socket.socket) and thing.fileno() != -1:
            try:
                peer = thing.getpeername()
            except OSError:
                continue
            count += isinstance(peer, tuple) and peer[1] == port
    return count


@pytest.mark.parametrize("close_wait_s", [mail.SMTP_CLOSE_WAIT_S, 0.1])
def test_the_sender_waits_for_the_servers_tls_goodbye_and_leaks_no_socket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, close_wait_s: float
) -> None:
    """Waiting (the default), or past the wait the connection is cut: no socket left open."""
    monkeypatch.setattr(mail, "SMTP_CLOSE_WAIT_S", close_wait_s)
    cert, server_tls = _self_signed(tmp_path)
    inbox = Inbox()
    port = free_base_port(1)
    controller = _SlowGoodbyeController(inbox, hostname="127.0.0.1", port=port,
                                        tls_context=server_tls, require_starttls=True,
                                        authenticator=_authenticator)  # fmt: skip
    controller.start()
    try:
        secure = _login(port, starttls=True, cafile=str(cert))
        sent = send([_item(1, "zoe@example.be")], CAMPAIGN, secure, Journal(tmp_path / "a"))
        assert [o.status for o in sent] == ["sent"]
        # The event loop of send() is gone: a socket still open now would never be closed.
        assert _open_sockets_to(port) == 0
    finally:
        controller.stop()
    assert len(inbox.received()) == 1


def test_the_mail_points_to_the_balance_page_in_french_and_english() -> None:
    campaign = dataclasses.replace(
        CAMPAIGN, chain_id=CHAIN, balance_url="https://relance.namur.be/"
    )
    entry, voucher = _item(1, "zoe@example.be")
    message = build_message(entry, voucher, campaign, "Ville de Namur <relance@namur.be>")
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert plain is not None and html is not None
    link = balance_link(campaign, voucher)
    assert link.startswith("https://relance.namur.be/b/")
    for text in (plain.get_content(), html.get_content()):
        assert link in text
        assert "où dépenser" in text and "where to spend" in text
        assert "application" not in text.lower()  # no app that does not exist
    without = build_message(entry, voucher, CAMPAIGN, "relance@namur.be").get_body(("plain",))
    assert without is not None and "/b/" not in without.get_content()
    assert "scanning the QR code" in without.get_content()
