"""Reading and staging ledger state during one block.

``View`` is what the ledger needs from storage: point reads and prefix scans
of committed state (LevelDB in the node, a dict in tests). ``BlockState``
stages one block's changes above a view: records are decoded once, mutated
as new frozen records, and encoded once at the end of the block, so a value
touched by many transactions (a campaign's totals) is written once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Protocol, TypeVar

from node.ledger import records as r
from node.ledger.records import Record


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


class BlockState:
    """Staged changes of one block above a committed view."""

    def __init__(self, view: View) -> None:
        self._view = view
        self._cache: dict[bytes, Record | None] = {}
        self._dirty: set[bytes] = set()

    def load(self, key: bytes, decode: Callable[[bytes], _R]) -> _R | None:
        if key in self._cache:
            record = self._cache[key]
        else:
            raw = self._view.get(key)
            record = None if raw is None else decode(raw)
            self._cache[key] = record
        return record  # type: ignore[return-value]  # each key prefix has one record type

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
