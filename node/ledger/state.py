"""Reading and staging ledger state during one block.

``View`` is what the ledger needs from storage: point reads and prefix scans
of committed state (LevelDB in the node, a dict in tests). ``BlockState``
stages one block's changes above a view: records are decoded once, mutated
as new frozen records, and encoded once at the end of the block, so a value
touched by many transactions (a campaign's totals) is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final, Protocol, TypeVar

from node.ledger import records as r
from node.ledger.records import Record
from node.protocol import limits


class View(Protocol):
    def get(self, key: bytes) -> bytes | None: ...

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]: ...


class DictView:
    """A view over a plain mapping (tests, models, genesis)."""

    def __init__(self, items: Mapping[bytes, bytes]) -> None:
        self._items = dict(items)

    def get(self, key: bytes) -> bytes | None:
        return self._items.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(self._items):
            if key.startswith(prefix):
                yield key, self._items[key]

    def apply(self, writes: Mapping[bytes, bytes | None]) -> None:
        for key, value in writes.items():
            if value is None:
                self._items.pop(key, None)
            else:
                self._items[key] = value

    def items(self) -> dict[bytes, bytes]:
        return dict(self._items)


_R = TypeVar("_R", bound=Record)


class _Missing:
    """Not in a cache (as opposed to a cached None: known to be absent)."""


MISSING: Final = _Missing()


class RecordCache:
    """Decoded records of the committed state, shared by every block executed on it.

    A state read costs a LevelDB lookup and a decode (about 6 us, more than the
    rest of a payment's reads together), and most payments read a holder or a
    merchant that was read or written a few blocks before. Records are frozen,
    so one object serves every reader. Reads fill the cache (None: known to be
    absent); once a block is committed to the view, ``commit`` puts in that
    block's new records. Use one only with the view of the committed state
    (the node's store), never above staged changes. Cleared whole when it
    outgrows ``limits.RECORD_CACHE_MAX`` (cheaper than keeping an LRU order).
    """

    def __init__(self, max_records: int = limits.RECORD_CACHE_MAX) -> None:
        self._records: dict[bytes, Record | None] = {}
        self._max = max_records

    def __len__(self) -> int:
        return len(self._records)

    def items(self) -> list[tuple[bytes, Record | None]]:
        return list(self._records.items())

    def get(self, key: bytes) -> Record | _Missing | None:
        return self._records.get(key, MISSING)

    def put(self, key: bytes, record: Record | None) -> None:
        if len(self._records) >= self._max:
            self._records.clear()
        self._records[key] = record

    def commit(self, changes: Mapping[bytes, Record | None]) -> None:
        """The records a block committed to the view (None: deleted)."""
        if len(self._records) + len(changes) > self._max:
            self._records.clear()
        self._records.update(changes)


class BlockState:
    """Staged changes of one block above a committed view (and its record cache)."""

    def __init__(self, view: View, records: RecordCache | None = None) -> None:
        self._view = view
        self._records = records
        self._cache: dict[bytes, Record | None] = {}
        self._dirty: set[bytes] = set()

    def load(self, key: bytes, decode: Callable[[bytes], _R]) -> _R | None:
        if key in self._cache:
            return self._cache[key]  # type: ignore[return-value]  # one record type per prefix
        shared = self._records
        found = MISSING if shared is None else shared.get(key)
        if isinstance(found, _Missing):
            raw = self._view.get(key)
            record = None if raw is None else decode(raw)
            if shared is not None:
                shared.put(key, record)
        else:
            record = found  # type: ignore[assignment]  # one record type per prefix
        self._cache[key] = record
        return record

    def store(self, key: bytes, record: Record | None) -> None:
        self._cache[key] = record
        self._dirty.add(key)

    def keys_with_prefix(self, prefix: bytes) -> list[bytes]:
        """Keys present under ``prefix``, staged changes included, in key order."""
        found = {key for key, _ in self._view.iter_prefix(prefix)}
        for key in self._dirty:
            if key.startswith(prefix):
                if self._cache[key] is None:
                    found.discard(key)
                else:
                    found.add(key)
        return sorted(found)

    def changes(self) -> dict[bytes, Record | None]:
        """The block's changed records (None deletes), for ``RecordCache.commit``."""
        return {key: self._cache[key] for key in self._dirty}

    def writes(self) -> dict[bytes, bytes | None]:
        """The block's changes as encoded bytes (None deletes), in key order."""
        out: dict[bytes, bytes | None] = {}
        for key in sorted(self._dirty):
            record = self._cache[key]
            out[key] = None if record is None else record.encode()
        return out

    # typed accessors -------------------------------------------------------

    def params(self) -> r.Params:
        params = self.load(r.params_key(), r.Params.decode)
        if params is None:
            raise RuntimeError("state has no genesis parameters")
        return params

    def issuer(self, pk: bytes) -> r.Issuer | None:
        return self.load(r.issuer_key(pk), r.Issuer.decode)

    def merchant(self, pk: bytes) -> r.Merchant | None:
        return self.load(r.merchant_key(pk), r.Merchant.decode)

    def holder(self, pk: bytes) -> r.Holder | None:
        return self.load(r.holder_key(pk), r.Holder.decode)

    def bank(self, pk: bytes) -> r.Bank | None:
        return self.load(r.bank_key(pk), r.Bank.decode)

    def auditor(self, pk: bytes) -> r.Auditor | None:
        return self.load(r.auditor_key(pk), r.Auditor.decode)

    def campaign(self, code: str) -> r.Campaign | None:
        return self.load(r.campaign_key(code), r.Campaign.decode)

    def payout(self, payout_id: bytes) -> r.Payout | None:
        return self.load(r.payout_key(payout_id), r.Payout.decode)

    def validators(self) -> r.Validators:
        found = self.load(r.validators_key(), r.Validators.decode)
        if found is None:
            raise RuntimeError("state has no validator set")
        return found

    def zone_owner(self, zone: str) -> r.ZoneOwner | None:
        return self.load(r.zone_key(zone), r.ZoneOwner.decode)

    def consent(self, region: bytes, commune: bytes) -> r.Consent | None:
        return self.load(r.consent_key(region, commune), r.Consent.decode)

    def counter(self, key: bytes) -> int:
        found = self.load(key, r.Counter.decode)
        return 0 if found is None else found.value

    def has_role(self, pk: bytes) -> bool:
        """True when ``pk`` is a bank, issuer, merchant or auditor (not a holder)."""
        return (
            self.merchant(pk) is not None
            or self.issuer(pk) is not None
            or self.bank(pk) is not None
            or self.auditor(pk) is not None
        )
