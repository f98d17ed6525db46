"""TLS for the public API: a server context from the configured PEM files, reloaded on SIGHUP.

``[api] tls_cert`` and ``tls_key`` (paths relative to the node home, or absolute)
name the certificate chain and its private key. ``ApiTls.reload`` loads them
again into the same ``ssl.SSLContext``: connections opened afterwards get the
new certificate, open ones keep theirs. A reload that fails (a file missing or
not matching) keeps the previous certificate and says why.

``not_after`` (the leaf certificate's notAfter, Unix seconds) is exported as
``relance_tls_certificate_expiry_seconds``; an alert reads it
(``configs/alerts.yml``). It is read from the certificate's DER here, without a
crypto library: the standard ``ssl`` module has no public reader for a file.

p2p does not use this: it has its own authenticated encryption (``node.p2p``).
"""

from __future__ import annotations

import base64
import calendar
import logging
import re
import ssl
from pathlib import Path
from typing import Final

from node.run.config import ApiTlsFiles

logger = logging.getLogger(__name__)

PEM_BYTES_MAX: Final = 1 << 20  # a certificate chain file larger than this is refused
_PEM_CERT: Final = re.compile(
    rb"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.DOTALL
)


class TlsError(RuntimeError):
    """The configured certificate or key cannot be used; the message says which and why."""


class ApiTls:
    """The API's server-side TLS context (TLS 1.2 at least) and its certificate's expiry."""

    __slots__ = ("_cert", "_key", "context", "not_after")

    def __init__(self, home: Path, files: ApiTlsFiles) -> None:
        self._cert = home / files.cert  # an absolute path stays absolute
        self._key = home / files.key
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.minimum_version = ssl.TLSVersion.TLSv1_2
        self.not_after = 0
        self.reload()

    def reload(self) -> None:
        """Load the files again into the same context; raise ``TlsError`` (old one kept)."""
        try:
            not_after = certificate_not_after(_read_pem(self._cert))
            self.context.load_cert_chain(self._cert, self._key)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TlsError(f"TLS certificate {self._cert} / key {self._key}: {exc}") from None
        self.not_after = not_after

    def reload_logged(self) -> None:
        """The SIGHUP handler: reload, and log the outcome rather than stop the node."""
        try:
            self.reload()
        except TlsError as exc:
            logger.error("%s; keeping the previous certificate", exc)
            return
        logger.info("TLS certificate reloaded from %s; valid until %d", self._cert, self.not_after)


def _read_pem(path: Path) -> bytes:
    with open(path, "rb") as file:
        data = file.read(PEM_BYTES_MAX + 1)
    if len(data) > PEM_BYTES_MAX:
        raise ValueError(f"larger than {PEM_BYTES_MAX} bytes")
    return data


def certificate_not_after(pem: bytes) -> int:
    """The notAfter of the first certificate in ``pem``, as Unix seconds."""
    found = _PEM_CERT.search(pem)
    if found is None:
        raise ValueError("no PEM certificate")
    der = base64.b64decode(b"".join(found.group(1).split()), validate=True)
    certificate, _ = _der(der, 0, 0x30)
    tbs, _ = _der(certificate, 0, 0x30)
    at = 0
    if tbs[:1] == b"\xa0":  # [0] version
        _, at = _der(tbs, at, 0xA0)
    for tag in (0x02, 0x30, 0x30):  # serial, signature algorithm, issuer
        _, at = _der(tbs, at, tag)
    validity, _ = _der(tbs, at, 0x30)
    _, at = _any_time(validity, 0)  # notBefore
    not_after, _ = _any_time(validity, at)
    return not_after


def _any_time(data: bytes, at: int) -> tuple[int, int]:
    tag = data[at] if at < len(data) else -1
    if tag not in (0x17, 0x18):
        raise ValueError("a validity time is neither UTCTime nor GeneralizedTime")
    raw, end = _der(data, at, tag)
    text = raw.decode("ascii")
    match = re.fullmatch(r"(\d{2}|\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z", text)
    if match is None or len(match.group(1)) != (2 if tag == 0x17 else 4):
        raise ValueError(f"unreadable certificate time {text!r}")
    year = int(match.group(1))
    if tag == 0x17:
        year += 2000 if year < 50 else 1900  # RFC 5280, 4.1.2.5.1
    fields = (year, *(int(match.group(n)) for n in range(2, 7)))
    return calendar.timegm((*fields, 0, 0, 0)), end


def _der(data: bytes, at: int, tag: int) -> tuple[bytes, int]:
    """The content of the DER element of ``tag`` at ``at``, and where the next begins."""
    if at + 2 > len(data) or data[at] != tag:
        raise ValueError("not a certificate (unexpected DER structure)")
    length, at = data[at + 1], at + 2
    if length & 0x80:
        count = length & 0x7F
        if not 1 <= count <= 4 or at + count > len(data):
            raise ValueError("not a certificate (bad DER length)")
        length, at = int.from_bytes(data[at : at + count], "big"), at + count
    if at + length > len(data):
        raise ValueError("not a certificate (truncated)")
    return data[at : at + length], at + length
