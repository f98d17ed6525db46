"""TLS for the public API (issue 17): served from the configured PEM files, reloaded on
SIGHUP, its expiry exported as a metric, and the session cookie Secure over it.

The process test runs a real one-validator node: it replaces the certificate files,
sends SIGHUP, and a new connection gets the new certificate (serial and notAfter),
without a restart; a broken file on SIGHUP keeps the certificate in use.
"""

from __future__ import annotations

import calendar
import http.client
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest

from node.api.tokens import make_token
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, write_devnet
from node.protocol.crypto import Signer
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.run.config import ApiTlsFiles, ConfigError
from node.run.tls import ApiTls, TlsError, certificate_not_after
from tests.node.netutil import eventually, free_base_port


def make_certificate(folder: Path, serial: int, days: int) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl), and its key."""
    folder.mkdir(parents=True, exist_ok=True)
    cert, key = folder / "api.crt", folder / "api.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", str(days),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-set_serial", str(serial)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def openssl_field(cert: Path, option: str) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-noout", option, "-in", str(cert)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().split("=", 1)[1]


def openssl_not_after(cert: Path) -> int:
    text = openssl_field(cert, "-enddate")  # e.g. "Jan  6 06:20:00 2027 GMT"
    return calendar.timegm(time.strptime(text, "%b %d %H:%M:%S %Y %Z"))


def test_not_after_is_read_from_the_certificate(tmp_path: Path) -> None:
    cert, _ = make_certificate(tmp_path, 7, 45)
    assert certificate_not_after(cert.read_bytes()) == openssl_not_after(cert)
    with pytest.raises(ValueError, match="no PEM certificate"):
        certificate_not_after(b"not a certificate")


def test_tls_settings_are_parsed_and_checked(tmp_path: Path) -> None:
    base = 'moniker = "n"\nvalidator = true\n[p2p]\nhost = "127.0.0.1"\nport = 1\n'
    api = '[api]\nhost = "127.0.0.1"\nport = 2\n'
    plain = config.parse(base + api)
    assert plain.api_tls is None and plain.api_trust_forwarded_for is False
    tls = config.parse(base + api + 'tls_cert = "tls/api.crt"\ntls_key = "tls/api.key"\n')
    assert tls.api_tls == ApiTlsFiles("tls/api.crt", "tls/api.key")
    assert config.parse(config.render(tls)) == tls  # rendered and read back alike
    proxied = config.parse(base + api + "trust_forwarded_for = true\n")
    assert proxied.api_trust_forwarded_for and config.parse(config.render(proxied)) == proxied
    with pytest.raises(ConfigError, match="go together"):
        config.parse(base + api + 'tls_cert = "a.crt"\n')
    with pytest.raises(ConfigError, match=r"\[api\] has only"):
        config.parse(base + api + 'tls_certificate = "a.crt"\n')
    with pytest.raises(ConfigError, match="true or false"):
        config.parse(base + api + 'trust_forwarded_for = "yes"\n')
    with pytest.raises(TlsError, match=r"api\.key\.gone"):  # a missing key file is named
        ApiTls(tmp_path, ApiTlsFiles(str(make_certificate(tmp_path, 1, 1)[0]), "api.key.gone"))


def peer_certificate(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed test certificates; compared by bytes
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), 10)) as s:
        der = s.getpeercert(binary_form=True)
    assert der is not None
    return der


def https(port: int, path: str, headers: dict[str, str] | None = None) -> http.client.HTTPResponse:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    connection.request("GET", path, headers=headers or {})
    response = connection.getresponse()
    response.read()
    response.close()
    connection.close()
    return response


def expiry_metric(port: int) -> int:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=context)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    found = re.search(r"^relance_tls_certificate_expiry_seconds ([0-9.e+]+)$", text, re.M)
    assert found is not None, "metric missing"
    return int(float(found.group(1)))


def der_of(cert: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))


def test_the_api_serves_tls_and_reloads_the_certificate_on_sighup(tmp_path: Path) -> None:
    (node,) = write_devnet(tmp_path / "net", 1, free_base_port(2), time.time_ns() // 1_000_000)
    cert, key = make_certificate(node.home / "tls", 1001, 30)
    text = (node.home / config.CONFIG_FILE).read_text(encoding="utf-8")
    settings = config.parse(text)
    tls_settings = config.NodeConfig(**{
        **{f: getattr(settings, f) for f in config.NodeConfig.__dataclass_fields__},
        "api_tls": ApiTlsFiles("tls/api.crt", "tls/api.key"),
    })  # fmt: skip
    (node.home / config.CONFIG_FILE).write_text(config.render(tls_settings), encoding="utf-8")
    port = settings.api_port
    supervisor = Supervisor([node])
    supervisor.start()
    try:
        eventually(lambda: https(port, "/v1/health").status == 200 or None, 30, "https up")
        assert peer_certificate(port) == der_of(cert)
        assert expiry_metric(port) == openssl_not_after(cert)

        # The session cookie is Secure when the login came over TLS.
        genesis = parse_genesis((node.home / config.GENESIS_FILE).read_text(encoding="utf-8"))
        bank = load_keys(node.home.parent / DEMO_KEYS_FILE)["bank"]
        node_key = Signer(bytes.fromhex((node.home / config.NODE_KEY_FILE).read_text().strip()))
        now = time.time_ns() // 1_000_000
        link = make_token(bank, genesis.chain_id, node_key.public_key, now, 600_000)
        landed = https(port, f"/ui/login?token={link}")
        assert landed.status == 303, landed.status
        cookie = [c for c in landed.headers.get_all("Set-Cookie") or [] if "relance_session" in c]
        assert len(cookie) == 1 and "; Secure" in cookie[0] and "HttpOnly" in cookie[0]

        # New files, SIGHUP: a new connection gets the new certificate, no restart.
        old_der = der_of(cert)
        new_cert, _ = make_certificate(node.home / "tls", 2002, 90)
        assert openssl_field(new_cert, "-serial") == f"{2002:02X}".rjust(4, "0")
        os.kill(supervisor_pid(supervisor), signal.SIGHUP)
        eventually(lambda: peer_certificate(port) == der_of(new_cert) or None, 20, "new cert")
        assert peer_certificate(port) != old_der
        assert expiry_metric(port) == openssl_not_after(new_cert)

        # A broken key on SIGHUP: the node keeps serving the certificate it has.
        key.write_text("not a key\n", encoding="ascii")
        os.kill(supervisor_pid(supervisor), signal.SIGHUP)
        time.sleep(1.0)
        assert peer_certificate(port) == der_of(new_cert)
        assert supervisor.exit_code(0) is None
        log = (node.home / "node.log").read_text(encoding="utf-8")
        assert "keeping the previous certificate" in log
    finally:
        supervisor.stop()
    assert supervisor.exit_code(0) == 0


def supervisor_pid(supervisor: Supervisor) -> int:
    return supervisor.pid(0)
