"""Vouchers by e-mail: multipart messages with the QR inline, sent over SMTP.

Each message is ``multipart/alternative``: plain text (with the voucher code
written out) and HTML whose ``multipart/related`` part carries the QR as a
PNG referenced by ``cid:``. Sending goes through aiosmtplib on one
connection (implicit TLS, STARTTLS and login as options).

A journal (``HOME/journal/<chain>/<campaign>.mail.jsonl``, one JSON line per
message sent, fsynced before the next send) makes reruns send nothing twice.
Each run returns a report: sent, skipped (already in the journal), failed
with the reason.
"""

from __future__ import annotations

import asyncio
import html
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Final

import aiosmtplib

from node.protocol.errors import WalletInvariantBroken
from wallets.book import Entry
from wallets.keystore import make_private_folder
from wallets.letters import CampaignText, balance_hint, balance_link, rules_fr
from wallets.units import format_euros
from wallets.voucher import Voucher, qr_png

SMTP_TIMEOUT_S: Final = 30.0
SMTP_CLOSE_WAIT_S: Final = 5.0  # for a TLS goodbye before the connection is cut
JOURNAL_LINE_BYTES_MAX: Final = 4096


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    tls: bool = False  # implicit TLS (port 465)
    cafile: str | None = None  # trust this CA bundle too (a commune's own CA)


@dataclass(frozen=True, slots=True)
class MailOutcome:
    serial: str
    email: str
    status: str  # sent | skipped | failed
    detail: str = ""


def build_message(
    entry: Entry, voucher: Voucher, campaign: CampaignText, sender: str
) -> EmailMessage:
    amount = format_euros(entry.amount_cents)
    uri = voucher.uri()
    message = EmailMessage()
    message["Subject"] = f"Votre chèque-relance de {amount} — {campaign.issuer_name}"
    message["From"] = sender
    message["To"] = entry.email
    message["Message-ID"] = make_msgid(idstring=entry.serial, domain="relance.invalid")
    message["X-Relance-Serial"] = entry.serial
    rules = rules_fr(campaign)
    link = balance_link(campaign, voucher)
    french, english = balance_hint(bool(link))
    balance_text = [french, english, *([link] if link else []), ""]
    link_html = (
        f'<p><a href="{html.escape(link)}">Mon solde et où dépenser · My balance and where to '
        "spend</a></p>"
        if link
        else ""
    )
    balance_html = (
        f'<p>{html.escape(french)}</p>\n<p lang="en">{html.escape(english)}</p>\n{link_html}'
    )
    text = _plain_text(entry, campaign, amount, rules, uri, balance_text)
    message.set_content(text)
    cid = make_msgid(idstring="qr", domain="relance.invalid")
    items = "".join(f"<li>{html.escape(rule)}</li>" for rule in rules)
    body = f"""<!doctype html>
<html lang="fr"><body style="font-family: sans-serif">
<p>Bonjour {html.escape(entry.name)},</p>
<p>{html.escape(campaign.issuer_name)} vous offre <strong>{html.escape(amount)}</strong>
à dépenser chez les commerçants de chez vous.</p>
<ul>{items}</ul>
<p>Montrez ce code QR au commerçant&nbsp;:</p>
<p><img src="cid:{cid[1:-1]}" alt="Code QR du chèque {html.escape(entry.serial)}"
 width="240" height="240"></p>
{balance_html}
<p>Numéro de série&nbsp;: <strong>{html.escape(entry.serial)}</strong></p>
<p><small>Ce code vaut de l'argent&nbsp;: ne le transférez à personne.</small></p>
</body></html>"""
    message.add_alternative(body, subtype="html")
    html_part = next((p for p in message.iter_parts() if p.get_content_type() == "text/html"), None)
    if not isinstance(html_part, EmailMessage):
        raise WalletInvariantBroken("the HTML alternative is missing")
    html_part.add_related(
        qr_png(uri, scale=6),
        maintype="image",
        subtype="png",
        cid=cid,
        filename=f"{entry.serial}.png",
    )
    return message


def _plain_text(
    entry: Entry,
    campaign: CampaignText,
    amount: str,
    rules: list[str],
    uri: str,
    balance_text: list[str],
) -> str:
    """The message's text part, for a reader without HTML."""
    return "\n".join(
        [
            f"Bonjour {entry.name},",
            "",
            f"{campaign.issuer_name} vous offre {amount} à dépenser chez les commerçants "
            "de chez vous.",
            "",
            *[f"- {rule}" for rule in rules],
            "",
            "Montrez le code QR joint au commerçant. Si votre appareil ne montre pas l'image, "
            "donnez-lui ce code :",
            uri,
            "",
            *balance_text,
            f"Numéro de série : {entry.serial}",
            "Ce code vaut de l'argent : ne le transférez à personne. En cas de perte, "
            f"contactez {campaign.issuer_name} avec le numéro de série.",
        ]
    )


class Journal:
    """Serials already e-mailed, one JSON line each, fsynced as written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sent: set[str] = set()
        if path.exists():
            with path.open("rb") as handle:
                for line in handle:
                    try:
                        item = json.loads(line[:JOURNAL_LINE_BYTES_MAX])
                    except (json.JSONDecodeError, UnicodeDecodeError):
                        continue  # a torn last line after a crash: that send is retried
                    if isinstance(item, dict) and isinstance(item.get("serial"), str):
                        self.sent.add(item["serial"])

    def record(self, serial: str, message_id: str) -> None:
        make_private_folder(self.path.parent)
        line = json.dumps(
            {
                "serial": serial,
                "message_id": message_id,
                "sent_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        )
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, (line + "\n").encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self.sent.add(serial)


async def send_all(
    items: list[tuple[Entry, Voucher]],
    campaign: CampaignText,
    smtp: SmtpSettings,
    journal: Journal,
    progress: Callable[[MailOutcome], None] = lambda outcome: None,
) -> list[MailOutcome]:
    """Send every message not yet in the journal; never raises for one bad address."""
    outcomes: list[MailOutcome] = []
    todo = []
    for entry, voucher in items:
        if entry.serial in journal.sent:
            outcome = MailOutcome(entry.serial, entry.email, "skipped", "already sent")
            outcomes.append(outcome)
            progress(outcome)
        else:
            todo.append((entry, voucher))
    if not todo:
        return outcomes
    client = aiosmtplib.SMTP(
        hostname=smtp.host,
        port=smtp.port,
        use_tls=smtp.tls,
        start_tls=smtp.starttls,
        cert_bundle=smtp.cafile,
        timeout=SMTP_TIMEOUT_S,
    )
    try:
        await _connect(client, smtp)
    except (aiosmtplib.SMTPException, OSError) as error:
        await _hang_up(client, quit=False)  # e.g. connected, then the login was refused
        for entry, _ in todo:
            outcome = MailOutcome(entry.serial, entry.email, "failed", f"SMTP server: {error}")
            outcomes.append(outcome)
            progress(outcome)
        return outcomes
    try:
        for entry, voucher in todo:
            outcome = await _send_one(client, smtp, entry, voucher, campaign, journal)
            outcomes.append(outcome)
            progress(outcome)
    finally:
        await _hang_up(client, quit=True)
    return outcomes


async def _hang_up(client: aiosmtplib.SMTP, *, quit: bool) -> None:
    """Say QUIT (if asked and still connected), close, and wait until the socket is shut.

    A TLS connection closes its socket only after the TLS goodbye (close_notify)
    round trip; a caller's event loop ending first leaves the socket open (seen
    on a loaded machine), so wait for it, bounded, then cut the connection.
    """
    if not client.is_connected:
        return
    sock = client.get_transport_info("socket")
    transport = client.transport
    try:
        if quit:
            await client.quit()
    except (aiosmtplib.SMTPException, OSError):
        pass
    finally:
        client.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + SMTP_CLOSE_WAIT_S
    while sock is not None and sock.fileno() != -1 and loop.time() < deadline:
        await asyncio.sleep(0.01)
    if sock is not None and sock.fileno() != -1 and isinstance(transport, asyncio.Transport):
        transport.abort()  # the server never said goodbye: cut the connection
        await asyncio.sleep(0)  # the loop closes the socket on its next turn


async def _connect(client: aiosmtplib.SMTP, smtp: SmtpSettings) -> None:
    await client.connect()
    if smtp.username is not None:
        await client.login(smtp.username, smtp.password or "")


async def _send_one(
    client: aiosmtplib.SMTP,
    smtp: SmtpSettings,
    entry: Entry,
    voucher: Voucher,
    campaign: CampaignText,
    journal: Journal,
) -> MailOutcome:
    message = build_message(entry, voucher, campaign, smtp.sender)
    try:
        if not client.is_connected:
            await _connect(client, smtp)
        await client.send_message(message)
    except aiosmtplib.SMTPRecipientsRefused as error:
        reasons = "; ".join(f"{r.code} {r.message}" for r in error.recipients)
        return MailOutcome(entry.serial, entry.email, "failed", f"refused: {reasons}")
    except (aiosmtplib.SMTPException, OSError) as error:
        return MailOutcome(entry.serial, entry.email, "failed", str(error) or type(error).__name__)
    journal.record(entry.serial, str(message["Message-ID"]))
    return MailOutcome(entry.serial, entry.email, "sent")


def send(
    items: list[tuple[Entry, Voucher]],
    campaign: CampaignText,
    smtp: SmtpSettings,
    journal: Journal,
    progress: Callable[[MailOutcome], None] = lambda outcome: None,
) -> list[MailOutcome]:
    return asyncio.run(send_all(items, campaign, smtp, journal, progress))


def journal_path(home: Path, chain_id: str, campaign: str) -> Path:
    return home / "journal" / chain_id / f"{campaign}.mail.jsonl"
