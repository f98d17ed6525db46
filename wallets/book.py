"""Households from CSV, and the commune's encrypted voucher book.

Households CSV (UTF-8, header row, ``,`` or ``;`` separated)::

    amount,zone,channel,name,address,email,holder,household_id
    50,NAM-CENTRE,post,Zoë Lefèvre,"Rue de Fer 12;5000 Namur",,,
    50,NAM-JAMBES,email,Jean Dupont,,jean@example.be,,
    50,NAM-CENTRE,app,,,,7be1...90,

``amount`` in euros; ``channel`` is ``app`` (``holder`` gives the citizen's app
public key), ``email`` (``email`` needed) or ``post`` (``name`` and ``address``
needed; ``;`` separates address lines). ``household_id`` is optional: it names
the row for reruns; without it the row's content does.

The voucher book maps each serial number to its voucher key (and the
household's delivery data). It is sealed like a key (Argon2id + SecretBox,
atomic writes, mode 0600) under the issuer's passphrase, one file per
campaign: ``HOME/vouchers/<chain>/<campaign>.book``. A voucher's key is
written to the book before the allocation that funds it is submitted, so a
crash never leaves money on a key nobody kept.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections import Counter
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Final

from node.protocol.crypto import PUBLIC_KEY_BYTES, Signer
from wallets.exits import Exit, WalletError
from wallets.keystore import read_sealed, write_sealed
from wallets.units import parse_euros

BOOK_FORMAT: Final = "relance-voucher-book"
BOOK_VERSION: Final = 1
CHANNELS: Final = ("app", "email", "post")
CSV_ROWS_MAX: Final = 200_000
CSV_BYTES_MAX: Final = 64 * 1024 * 1024
REQUIRED: Final = ("amount", "zone", "channel")


@dataclass(frozen=True, slots=True)
class Household:
    line: int
    row_id: str
    amount_cents: int
    zone: str
    channel: str
    name: str
    address: tuple[str, ...]
    email: str
    holder: bytes  # the app key for channel app, else empty


@dataclass(frozen=True, slots=True)
class Entry:
    """One allocation the commune made: a voucher (email/post) or an app key."""

    serial: str
    row_id: str
    channel: str
    public_key: str
    seed: str  # hex; empty for app keys
    amount_cents: int
    zone: str
    name: str
    address: tuple[str, ...]
    email: str
    status: str  # new (key kept, not yet allocated) | allocated | lost
    tx_id: str = ""
    replaces: str = ""
    replaced_by: str = ""

    @property
    def signer(self) -> Signer:
        return Signer(bytes.fromhex(self.seed))


def read_households(path: Path) -> list[Household]:
    """Parse and check every row; any error names its line (exit 2)."""
    try:
        if path.stat().st_size > CSV_BYTES_MAX:
            raise WalletError(Exit.USAGE, f"{path} is larger than {CSV_BYTES_MAX} bytes")
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise WalletError(Exit.USAGE, f"no such file: {path}") from None
    except UnicodeDecodeError:
        raise WalletError(Exit.USAGE, f"{path} is not UTF-8 text") from None
    rows = read_csv(text, REQUIRED, path.name)
    seen: Counter[str] = Counter()
    out = []
    for line, row in rows:
        household = _household(line, row, path.name, seen)
        out.append(household)
    keys = [h.holder for h in out if h.holder]
    if len(set(keys)) != len(keys):
        raise WalletError(Exit.USAGE, f"{path.name}: the same app key appears twice")
    return out


def read_csv(text: str, required: tuple[str, ...], where: str) -> list[tuple[int, dict[str, str]]]:
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;")
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise WalletError(Exit.USAGE, f"{where}: missing column(s) {', '.join(missing)}")
    reader.fieldnames = header
    out = []
    for row in reader:
        if reader.line_num > CSV_ROWS_MAX + 1:
            raise WalletError(Exit.USAGE, f"{where}: more than {CSV_ROWS_MAX} rows")
        clean = {k: (v or "").strip() for k, v in row.items() if isinstance(k, str)}
        if any(clean.values()):
            out.append((reader.line_num, clean))
    return out


def _household(line: int, row: dict[str, str], where: str, seen: Counter[str]) -> Household:
    at = f"{where} line {line}"
    channel = row.get("channel", "").lower()
    if channel not in CHANNELS:
        raise WalletError(Exit.USAGE, f"{at}: channel must be app, email or post")
    try:
        cents = parse_euros(row.get("amount", ""))
    except WalletError as error:
        raise WalletError(Exit.USAGE, f"{at}: {error.message}") from None
    zone = row.get("zone", "")
    if not zone:
        raise WalletError(Exit.USAGE, f"{at}: zone is empty")
    name, email = row.get("name", ""), row.get("email", "")
    address = tuple(part.strip() for part in row.get("address", "").split(";") if part.strip())
    holder = b""
    if channel == "app":
        try:
            holder = bytes.fromhex(row.get("holder", ""))
        except ValueError:
            holder = b""
        if len(holder) != PUBLIC_KEY_BYTES:
            raise WalletError(Exit.USAGE, f"{at}: an app line needs the holder's public key (hex)")
    if channel == "email" and ("@" not in email or not name):
        raise WalletError(Exit.USAGE, f"{at}: an email line needs a name and an e-mail address")
    if channel == "post" and (not name or not address):
        raise WalletError(Exit.USAGE, f"{at}: a post line needs a name and an address")
    content = json.dumps([channel, cents, zone, name, list(address), email, holder.hex()])
    seen[content] += 1
    row_id = (
        row.get("household_id", "")
        or hashlib.sha256(f"{content}#{seen[content]}".encode()).hexdigest()[:32]
    )
    return Household(line, row_id, cents, zone, channel, name, address, email, holder)


# --- the book ---------------------------------------------------------------------------


class VoucherBook:
    """Serial numbers to voucher keys for one campaign, sealed on disk."""

    def __init__(self, path: Path, chain_id: str, campaign: str, passphrase: str) -> None:
        self.path = path
        self.chain_id = chain_id
        self.campaign = campaign
        self._passphrase = passphrase
        self.entries: list[Entry] = []
        self.next_serial = 1
        if path.exists():
            self._load()

    def _load(self) -> None:
        raw = read_sealed(self.path, self._passphrase, f"voucher book {self.campaign!r}")
        try:
            doc = json.loads(raw)
            if doc["format"] != BOOK_FORMAT or doc["version"] != BOOK_VERSION:
                raise ValueError("format")
            if doc["chain_id"] != self.chain_id or doc["campaign"] != self.campaign:
                raise ValueError("another campaign's book")
            self.next_serial = int(doc["next_serial"])
            self.entries = [Entry(**{**e, "address": tuple(e["address"])}) for e in doc["entries"]]
        except (ValueError, KeyError, TypeError) as error:
            raise WalletError(Exit.KEYSTORE, f"the voucher book is damaged ({error})") from None

    def save(self) -> None:
        doc = {
            "format": BOOK_FORMAT,
            "version": BOOK_VERSION,
            "chain_id": self.chain_id,
            "campaign": self.campaign,
            "next_serial": self.next_serial,
            "entries": [asdict(e) for e in self.entries],
        }
        write_sealed(self.path, json.dumps(doc, ensure_ascii=False).encode(), self._passphrase)

    def by_row(self) -> dict[str, Entry]:
        return {e.row_id: e for e in self.entries if e.status != "lost"}

    def find(self, serial: str) -> Entry:
        for entry in self.entries:
            if entry.serial.upper() == serial.strip().upper():
                return entry
        raise WalletError(Exit.USAGE, f"no voucher with serial {serial} in this campaign's book")

    def new_serial(self) -> str:
        serial = f"{self.campaign.upper()}-{self.next_serial:06d}"
        self.next_serial += 1
        return serial

    def add(self, household: Household) -> Entry:
        if household.channel == "app":
            public_key, seed = household.holder.hex(), ""
        else:
            signer = Signer.generate()
            public_key, seed = signer.public_key.hex(), signer.seed.hex()
        entry = Entry(
            serial=self.new_serial(),
            row_id=household.row_id,
            channel=household.channel,
            public_key=public_key,
            seed=seed,
            amount_cents=household.amount_cents,
            zone=household.zone,
            name=household.name,
            address=household.address,
            email=household.email,
            status="new",
        )
        self.entries.append(entry)
        return entry

    def update(self, entry: Entry, **changes: str | int) -> Entry:
        index = next(i for i, e in enumerate(self.entries) if e.serial == entry.serial)
        updated = replace(entry, **changes)  # type: ignore[arg-type]  # field names checked by replace
        self.entries[index] = updated
        return updated

    def replacement(self, lost: Entry) -> Entry:
        """A new voucher key for the household of ``lost`` (status new until allocated)."""
        signer = Signer.generate()
        entry = replace(
            lost,
            serial=self.new_serial(),
            public_key=signer.public_key.hex(),
            seed=signer.seed.hex(),
            status="new",
            tx_id="",
            replaces=lost.serial,
            replaced_by="",
        )
        self.entries.append(entry)
        return entry


def book_path(home: Path, chain_id: str, campaign: str) -> Path:
    return home / "vouchers" / chain_id / f"{campaign}.book"
