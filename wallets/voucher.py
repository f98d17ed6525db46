"""Voucher and authorization URIs, their QR codes, and reading QR images.

Voucher URI (version 1), printed on letters and sent by e-mail::

    RLV1:<CHAIN>:<SEED>:<CHECK>

- ``CHAIN`` is the chain id in upper case (chain ids that a voucher can carry
  use only letters, digits, ``.`` and ``-``, and are compared without case);
- ``SEED`` is the voucher key's 32-byte Ed25519 seed in RFC 4648 base32
  without padding (52 characters);
- ``CHECK`` is the first 4 base32 characters of SHA-256 over everything
  before the last ``:`` (``RLV1:<CHAIN>:<SEED>``): it catches a mistyped code.

Every character is in the QR alphanumeric set (``0-9 A-Z $%*+-./:`` and
space), so the QR is alphanumeric mode: about 88 characters fit a version 4
symbol (33x33 modules) at error correction M, which scans from paper at 3 cm.

Authorization URI (version 1), shown by a holder's phone to a merchant::

    RLA1:<CHAIN>:<BODY>:<CHECK>

``BODY`` is base32 of the canonical msgpack ``[authorization bytes,
signature]``; ``CHECK`` as above. The bearer may take up to the maximum once,
before the expiry; the ledger checks the signature again.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import segno
from nacl.exceptions import CryptoError
from nacl.secret import SecretBox

from node.ledger.tx import Authorization
from node.protocol import codec, limits
from node.protocol.codec import DecodeError
from node.protocol.crypto import SEED_BYTES, Signer
from node.protocol.errors import WalletInvariantBroken
from node.protocol.genesis import CHAIN_ID_PATTERN
from wallets.exits import Exit, WalletError

VOUCHER_SCHEME: Final = "RLV1"
AUTHORIZATION_SCHEME: Final = "RLA1"
KEY_SCHEME: Final = "RLK1"  # a shop's key sealed for its counter phone (SealedKey)
KEY_ROUNDS: Final = 310_000  # PBKDF2-SHA-256, as the counter page's own sealing
KEY_SALT_BYTES: Final = 16
CODE_ALPHABET: Final = "ABCDEFGHJKMNPQRSTVWXYZ23456789"  # no 0/O, 1/I/L, U: read aloud
CODE_CHARS: Final = 12
CHECK_CHARS: Final = 4
QR_ERROR: Final = "m"  # the minimum; segno boosts it when the same version allows
QR_ALPHANUMERIC: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")
URI_CHARS_MAX: Final = 1_000
ZBAR_TIMEOUT_S: Final = 30.0
_CHAIN: Final = CHAIN_ID_PATTERN
_B32: Final = re.compile(r"[A-Z2-7]+")


@dataclass(frozen=True, slots=True)
class Voucher:
    """A bearer voucher: whoever holds the seed may spend its balance."""

    chain_id: str  # as carried: upper case
    seed: bytes

    @property
    def signer(self) -> Signer:
        return Signer(self.seed)

    def uri(self) -> str:
        head = f"{VOUCHER_SCHEME}:{_chain(self.chain_id)}:{_b32(self.seed)}"
        return f"{head}:{_check(head)}"

    def matches(self, chain_id: str) -> bool:
        return self.chain_id.upper() == chain_id.upper()


@dataclass(frozen=True, slots=True)
class SignedAuthorization:
    chain_id: str
    authorization: Authorization
    signature: bytes

    def uri(self) -> str:
        body = codec.encode([self.authorization.encode(), self.signature])
        head = f"{AUTHORIZATION_SCHEME}:{_chain(self.chain_id)}:{_b32(body)}"
        return f"{head}:{_check(head)}"


def new_voucher(chain_id: str) -> Voucher:
    _chain(chain_id)
    return Voucher(chain_id.upper(), Signer.generate().seed)


def parse_voucher(text: str) -> Voucher:
    chain, body = _parse(text, VOUCHER_SCHEME, "voucher code")
    seed = _unb32(body, "voucher code")
    if len(seed) != SEED_BYTES:
        raise WalletError(Exit.USAGE, "the voucher code does not hold a 32-byte key")
    return Voucher(chain, seed)


def parse_authorization(text: str) -> SignedAuthorization:
    chain, body = _parse(text, AUTHORIZATION_SCHEME, "authorization code")
    raw = _unb32(body, "authorization code")
    try:
        auth_bytes, signature = codec.as_list(codec.decode(raw, limits.TX_BYTES_MAX), 2)
        if not isinstance(auth_bytes, bytes) or not isinstance(signature, bytes):
            raise DecodeError("authorization parts")
        authorization = Authorization.decode_value(codec.decode(auth_bytes, limits.TX_BYTES_MAX))
    except DecodeError:
        raise WalletError(Exit.USAGE, "the authorization code is damaged") from None
    return SignedAuthorization(chain, authorization, signature)


@dataclass(frozen=True, slots=True)
class SealedKey:
    """A key's seed sealed under a one-time code, for the counter page (``key export``):

        RLK1:<CHAIN>:<BODY>:<CHECK>

    ``BODY`` is base32 of ``salt (16) || nonce (24) || secretbox(seed)`` (48 bytes), the
    box's key ``PBKDF2-SHA-256(code, salt, KEY_ROUNDS)``: what the page opens with
    WebCrypto and tweetnacl. The code is ``CODE_CHARS`` characters of ``CODE_ALPHABET``
    (about 59 bits), shown beside the QR code and never in it."""

    chain_id: str
    salt: bytes
    nonce: bytes
    box: bytes

    def uri(self) -> str:
        head = f"{KEY_SCHEME}:{_chain(self.chain_id)}:{_b32(self.salt + self.nonce + self.box)}"
        return f"{head}:{_check(head)}"

    def open(self, code: str) -> bytes:
        """The seed; a usage error if ``code`` is not the one it was sealed with."""
        try:
            return bytes(SecretBox(_box_key(code, self.salt)).decrypt(self.box, self.nonce))
        except CryptoError:
            raise WalletError(Exit.USAGE, "the one-time code does not open this key") from None


def seal_key(seed: bytes, chain_id: str) -> tuple[SealedKey, str]:
    """``seed`` sealed under a new one-time code; the sealed key and the code (grouped)."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_CHARS))
    salt, nonce = secrets.token_bytes(KEY_SALT_BYTES), secrets.token_bytes(SecretBox.NONCE_SIZE)
    box = SecretBox(_box_key(code, salt)).encrypt(seed, nonce).ciphertext
    grouped = "-".join(code[i : i + 4] for i in range(0, CODE_CHARS, 4))
    return SealedKey(_chain(chain_id), salt, nonce, box), grouped


def parse_sealed_key(text: str) -> SealedKey:
    chain, body = _parse(text, KEY_SCHEME, "sealed key")
    raw = _unb32(body, "sealed key")
    nonce_end = KEY_SALT_BYTES + SecretBox.NONCE_SIZE
    if len(raw) != nonce_end + SEED_BYTES + SecretBox.MACBYTES:
        raise WalletError(Exit.USAGE, "the sealed key is damaged")
    return SealedKey(chain, raw[:KEY_SALT_BYTES], raw[KEY_SALT_BYTES:nonce_end], raw[nonce_end:])


def _box_key(code: str, salt: bytes) -> bytes:
    """The box's key: ``code`` upper case without spaces or dashes, stretched."""
    typed = "".join(c for c in code.upper() if c not in " -")
    return hashlib.pbkdf2_hmac("sha256", typed.encode(), salt, KEY_ROUNDS, SecretBox.KEY_SIZE)


def is_voucher_uri(text: str) -> bool:
    return text.strip().upper().startswith(VOUCHER_SCHEME + ":")


def _parse(text: str, scheme: str, what: str) -> tuple[str, str]:
    value = text.strip().upper()
    if len(value) > URI_CHARS_MAX:
        raise WalletError(Exit.USAGE, f"the {what} is too long")
    parts = value.split(":")
    if len(parts) != 4 or parts[0] != scheme:
        raise WalletError(Exit.USAGE, f"not a {what} (expected {scheme}:CHAIN:...:CHECK)")
    head = ":".join(parts[:3])
    if _check(head) != parts[3]:
        raise WalletError(Exit.USAGE, f"the {what} checksum does not match: a character is wrong")
    if _CHAIN.fullmatch(parts[1]) is None:
        raise WalletError(Exit.USAGE, f"the {what} names an invalid chain")
    return parts[1], parts[2]


def _chain(chain_id: str) -> str:
    if _CHAIN.fullmatch(chain_id) is None:
        raise WalletError(
            Exit.USAGE, f"chain id {chain_id!r} cannot be carried by a QR code (A-Z 0-9 . -)"
        )
    return chain_id.upper()


def _b32(data: bytes) -> str:
    return base64.b32encode(data).decode().rstrip("=")


def _unb32(text: str, what: str) -> bytes:
    if _B32.fullmatch(text) is None:
        raise WalletError(Exit.USAGE, f"the {what} is not base32")
    try:
        return base64.b32decode(text + "=" * (-len(text) % 8))
    except ValueError:
        raise WalletError(Exit.USAGE, f"the {what} is not base32") from None


def _check(head: str) -> str:
    return _b32(hashlib.sha256(head.encode()).digest())[:CHECK_CHARS]


# --- QR codes --------------------------------------------------------------------------


def make_qr(uri: str) -> segno.QRCode:
    """A QR code in alphanumeric mode, error correction M or better."""
    if not set(uri) <= QR_ALPHANUMERIC:
        raise ValueError("a Relance URI uses only the QR alphanumeric characters")
    qr = segno.make_qr(uri, mode="alphanumeric", error=QR_ERROR, boost_error=True)
    if qr.mode != "alphanumeric" or qr.error not in ("M", "Q", "H"):
        raise WalletInvariantBroken("segno did not make an alphanumeric QR code, EC M or better")
    return qr


def qr_png(uri: str, scale: int = 8) -> bytes:
    buffer = io.BytesIO()
    make_qr(uri).save(buffer, kind="png", scale=scale, border=4)
    return buffer.getvalue()


def qr_text(uri: str) -> str:
    """The QR drawn with block characters, for a terminal."""
    buffer = io.StringIO()
    make_qr(uri).terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def read_qr_image(path: Path) -> list[str]:
    """Every QR code zbarimg (Debian zbar-tools) finds in an image file."""
    zbarimg = shutil.which("zbarimg")
    if zbarimg is None:
        raise WalletError(
            Exit.USAGE, "reading a QR image needs zbarimg: apt-get install zbar-tools"
        )
    if not path.is_file():
        raise WalletError(Exit.USAGE, f"no such image: {path}")
    try:
        done = subprocess.run(
            [zbarimg, "--quiet", "--raw", "-Sdisable", "-Sqrcode.enable", str(path)],
            capture_output=True,
            timeout=ZBAR_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise WalletError(Exit.USAGE, f"zbarimg took too long on {path}") from None
    codes = [line.strip() for line in done.stdout.decode(errors="replace").splitlines()]
    codes = [code for code in codes if code]
    if not codes:
        raise WalletError(Exit.USAGE, f"no QR code found in {path}")
    return codes
