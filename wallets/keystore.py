"""The encrypted keystore, sealed files, and recovery phrases.

A *sealed* blob is JSON (``relance-sealed`` v1): Argon2id (libsodium's
``crypto_pwhash``, parameters stored beside a random 16-byte salt) derives a
32-byte key from the passphrase; XSalsa20-Poly1305 (``SecretBox``) encrypts
the payload under a random 24-byte nonce. A wrong passphrase or any altered
byte fails authentication.

A key file ``<keystore>/<name>.key`` (``relance-key`` v1) holds the key's name,
public key and creation time in clear, and the Ed25519 seed sealed; opening
checks that the seed gives the stored public key. Every file is written
atomically (temporary file, fsync, rename, fsync of the folder) with mode 0600.

Folders: every folder the wallet creates on the way to a file (the keystore,
``~/.relance`` itself, the voucher books, the journal) is created 0700, the
topmost missing one first. A folder that already exists is never changed: it
may be the user's home or a shared folder named with ``--keystore``, and the
wallet cannot tell whether it is its own; the files in it are 0600 anyway.

Reading: a file that is not a sealed or key document of a sane shape (not
JSON, nested deeper than Python parses, an integer of more than
``JSON_INTEGER_DIGITS_MAX`` digits, ``NaN``, too large, a folder, unreadable)
is a keystore error (exit code 4), never an uncaught exception.

Recovery phrases are BIP39: the 32-byte seed is the entropy of 24 words, in
English or French.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import nacl.exceptions
import nacl.pwhash
import nacl.secret
import nacl.utils
from mnemonic import Mnemonic

from node.protocol.crypto import SEED_BYTES, Signer
from wallets.exits import Exit, WalletError

SEALED_FORMAT: Final = "relance-sealed"
KEY_FORMAT: Final = "relance-key"
VERSION: Final = 1
KDF: Final = "argon2id13"
CIPHER: Final = "xsalsa20poly1305"
OPSLIMIT: Final = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
MEMLIMIT: Final = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
OPSLIMIT_MAX: Final = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
MEMLIMIT_MAX: Final = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE
SEALED_BYTES_MAX: Final = 64 * 1024 * 1024  # a voucher book of a large commune
KEY_FILE_BYTES_MAX: Final = 64 * 1024  # a key file is under 1 KiB
JSON_INTEGER_DIGITS_MAX: Final = 32  # the largest integer a sealed file holds is memlimit
FOLDER_MODE: Final = 0o700
PASSPHRASE_CHARS_MIN: Final = 8
LANGUAGES: Final = {"en": "english", "fr": "french"}
_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


# --- atomic files -------------------------------------------------------------------


def make_private_folder(folder: Path) -> None:
    """Create ``folder`` and its missing parents, each 0700; existing folders are left alone."""
    missing = []
    for candidate in (folder, *folder.parents):
        if candidate.is_dir():
            break
        missing.append(candidate)
    for candidate in reversed(missing):
        try:
            candidate.mkdir(mode=FOLDER_MODE)
        except FileExistsError:
            if not candidate.is_dir():
                raise
            continue  # made meanwhile by someone else: not ours to change
        os.chmod(candidate, FOLDER_MODE)  # exactly 0700, whatever the umask


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``data`` to ``path`` so that a crash leaves the old file or the new one."""
    make_private_folder(path.parent)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


# --- sealing -------------------------------------------------------------------------


def seal(plaintext: bytes, passphrase: str) -> dict[str, object]:
    salt = nacl.utils.random(nacl.pwhash.argon2id.SALTBYTES)
    key = _derive(passphrase, salt, OPSLIMIT, MEMLIMIT)
    nonce = nacl.utils.random(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(key)
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    return {
        "format": SEALED_FORMAT,
        "version": VERSION,
        "kdf": KDF,
        "opslimit": OPSLIMIT,
        "memlimit": MEMLIMIT,
        "salt": salt.hex(),
        "cipher": CIPHER,
        "nonce": nonce.hex(),
        "ciphertext": ciphertext.hex(),
    }


def unseal(sealed: object, passphrase: str, what: str) -> bytes:
    """The plaintext, or ``WalletError(KEYSTORE)`` for a wrong passphrase or a damaged file."""
    if not isinstance(sealed, dict) or sealed.get("format") != SEALED_FORMAT:
        raise WalletError(Exit.KEYSTORE, f"{what} is not a sealed Relance file")
    if (
        sealed.get("version") != VERSION
        or sealed.get("kdf") != KDF
        or sealed.get("cipher") != CIPHER
    ):
        raise WalletError(Exit.KEYSTORE, f"{what} uses an unsupported format version")
    opslimit, memlimit = sealed.get("opslimit"), sealed.get("memlimit")
    if not isinstance(opslimit, int) or not 1 <= opslimit <= OPSLIMIT_MAX:
        raise WalletError(Exit.KEYSTORE, f"{what} has invalid key-derivation parameters")
    if not isinstance(memlimit, int) or not 8192 <= memlimit <= MEMLIMIT_MAX:
        raise WalletError(Exit.KEYSTORE, f"{what} has invalid key-derivation parameters")
    try:
        salt = bytes.fromhex(str(sealed.get("salt")))
        nonce = bytes.fromhex(str(sealed.get("nonce")))
        ciphertext = bytes.fromhex(str(sealed.get("ciphertext")))
    except ValueError:
        raise WalletError(Exit.KEYSTORE, f"{what} is damaged (not hex)") from None
    if len(salt) != nacl.pwhash.argon2id.SALTBYTES:
        raise WalletError(Exit.KEYSTORE, f"{what} is damaged (salt)")
    if len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise WalletError(Exit.KEYSTORE, f"{what} is damaged (nonce)")
    key = _derive(passphrase, salt, opslimit, memlimit)
    try:
        return nacl.secret.SecretBox(key).decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError:
        raise WalletError(
            Exit.KEYSTORE, f"wrong passphrase for {what} (or the file was altered)"
        ) from None


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    return nacl.pwhash.argon2id.kdf(
        nacl.secret.SecretBox.KEY_SIZE,
        unicodedata.normalize("NFC", passphrase).encode(),
        salt,
        opslimit=opslimit,
        memlimit=memlimit,
    )


def write_sealed(path: Path, plaintext: bytes, passphrase: str) -> None:
    write_atomic(path, json.dumps(seal(plaintext, passphrase), indent=2).encode())


def read_sealed(path: Path, passphrase: str, what: str) -> bytes:
    return unseal(_read_json(path, what, SEALED_BYTES_MAX), passphrase, what)


def _read_json(path: Path, what: str, bytes_max: int) -> object:
    try:
        if path.stat().st_size > bytes_max:
            raise WalletError(Exit.KEYSTORE, f"{what} is larger than such a file may be")
        data = path.read_bytes()
    except FileNotFoundError:
        raise WalletError(Exit.KEYSTORE, f"{what} does not exist ({path})") from None
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise WalletError(Exit.KEYSTORE, f"{what} cannot be read ({path}: {reason})") from None
    try:
        return json.loads(data, parse_int=_bounded_int, parse_constant=_no_constant)
    except RecursionError:
        raise WalletError(Exit.KEYSTORE, f"{what} is damaged (JSON nested too deep)") from None
    except (ValueError, UnicodeDecodeError):  # JSONDecodeError is a ValueError
        raise WalletError(Exit.KEYSTORE, f"{what} is damaged (not JSON)") from None


def _bounded_int(text: str) -> int:
    if len(text.lstrip("-")) > JSON_INTEGER_DIGITS_MAX:
        raise ValueError("integer too long")
    return int(text)


def _no_constant(text: str) -> object:
    raise ValueError(f"{text} is not JSON")


# --- the keystore ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyInfo:
    name: str
    public_key: bytes
    created: str
    path: Path


class Keystore:
    """A folder of sealed key files, one per named key."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        if _NAME.fullmatch(name) is None:
            raise WalletError(
                Exit.USAGE, f"a key name is 1-64 letters, digits, '.', '_' or '-': {name!r}"
            )
        return self.folder / f"{name}.key"

    def add(self, name: str, signer: Signer, passphrase: str, replace: bool = False) -> KeyInfo:
        path = self.path(name)
        if path.exists() and not replace:
            raise WalletError(Exit.USAGE, f"a key named {name!r} already exists in {self.folder}")
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        document = {
            "format": KEY_FORMAT,
            "version": VERSION,
            "name": name,
            "public_key": signer.public_key.hex(),
            "created": created,
            "sealed": seal(signer.seed, passphrase),
        }
        write_atomic(path, json.dumps(document, indent=2).encode())
        return KeyInfo(name, signer.public_key, created, path)

    def info(self, name: str) -> KeyInfo:
        return self._document(name)[1]

    def open(self, name: str, passphrase: str) -> Signer:
        document, info = self._document(name)
        seed = unseal(document.get("sealed"), passphrase, f"key {name!r}")
        if len(seed) != SEED_BYTES:
            raise WalletError(Exit.KEYSTORE, f"key {name!r} is damaged (seed length)")
        signer = Signer(seed)
        if signer.public_key != info.public_key:
            raise WalletError(Exit.KEYSTORE, f"key {name!r} is damaged (public key mismatch)")
        return signer

    def _document(self, name: str) -> tuple[dict[str, object], KeyInfo]:
        path = self.path(name)
        document = _read_json(path, f"key {name!r}", KEY_FILE_BYTES_MAX)
        if not isinstance(document, dict) or document.get("format") != KEY_FORMAT:
            raise WalletError(Exit.KEYSTORE, f"key {name!r} is not a Relance key file")
        try:
            public_key = bytes.fromhex(str(document.get("public_key")))
        except ValueError:
            raise WalletError(Exit.KEYSTORE, f"key {name!r} is damaged") from None
        return document, KeyInfo(name, public_key, str(document.get("created", "")), path)

    def list(self) -> list[KeyInfo]:
        if not self.folder.is_dir():
            return []
        out = []
        for path in sorted(self.folder.glob("*.key")):
            try:
                out.append(self.info(path.stem))
            except WalletError:
                continue
        return out


# --- recovery phrases -----------------------------------------------------------------


def to_phrase(seed: bytes, language: str) -> str:
    """The 24-word BIP39 phrase whose entropy is ``seed``."""
    if len(seed) != SEED_BYTES:
        raise ValueError("a seed is 32 bytes")
    return str(Mnemonic(_language(language)).to_mnemonic(seed))


def from_phrase(phrase: str, language: str | None = None) -> bytes:
    """The seed back from a phrase (language detected when not given)."""
    words = " ".join(unicodedata.normalize("NFKD", phrase).lower().split())
    names = [_language(language)] if language else list(LANGUAGES.values())
    for name in names:
        mnemo = Mnemonic(name)
        if mnemo.check(words):
            entropy = bytes(mnemo.to_entropy(words))
            if len(entropy) != SEED_BYTES:
                raise WalletError(Exit.USAGE, "a Relance recovery phrase has 24 words")
            return entropy
    raise WalletError(
        Exit.USAGE, "the recovery phrase is not valid (a word is misspelt or out of order)"
    )


def _language(code: str) -> str:
    if code not in LANGUAGES:
        raise WalletError(
            Exit.USAGE, f"recovery phrase language must be one of: {', '.join(LANGUAGES)}"
        )
    return LANGUAGES[code]
