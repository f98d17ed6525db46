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
from node.protocol.errors import LedgerInvariantBroken


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


_ROLE_READS: Final[tuple[tuple[bytes, Callable[[bytes], Record]], ...]] = (
    (r.merchant_key(b""), r.Merchant.decode),
    (r.issuer_key(b""), r.Issuer.decode),
    (r.bank_key(b""), r.Bank.decode),
    (r.auditor_key(b""), r.Auditor.decode),
    (r.delegate_key(b""), r.Delegate.decode),
)
ROLE_PREFIXES: Final = tuple(prefix for prefix, _ in _ROLE_READS)
"""The prefixes ``BlockState.has_role`` reads: few keys next to the holders."""


class RecordCache:
    """Decoded records of the committed state, shared by every block executed on it.

    A state read costs a LevelDB lookup and a decode (about 6 us, more than the
    rest of a payment's reads together), and most payments read a holder or a
    merchant that was read or written a few blocks before. Records are frozen,
    so one object serves every reader. Reads fill the cache; once a block is
    committed to the view, ``commit`` puts in that block's new records. Use one
    only with the view of the committed state (the node's store), never above
    staged changes. Cleared whole when it outgrows ``limits.RECORD_CACHE_MAX``
    (cheaper than keeping an LRU order).

    Keys known to be absent are kept apart, in a set cleared whole at
    ``limits.RECORD_ABSENT_MAX``: an allocation of 5,000 new holders reads
    thousands of absent keys, and those must not push the useful records out.

    ``index(view, prefixes)`` loads the complete set of committed keys under
    each prefix (one prefix scan; ``ROLE_PREFIXES`` for the node), then kept
    exact by ``commit``: a read of a key under an indexed prefix that is not in
    its set is answered "absent" from memory, without a view read and without
    a cache entry. A prefix whose keys outgrow ``limits.ROLE_INDEX_KEYS_MAX``
    stops being indexed (its reads go to the view again).
    """

    def __init__(
        self,
        max_records: int = limits.RECORD_CACHE_MAX,
        max_absent: int = limits.RECORD_ABSENT_MAX,
        max_index_keys: int = limits.ROLE_INDEX_KEYS_MAX,
    ) -> None:
        self._records: dict[bytes, Record] = {}
        self._absent: set[bytes] = set()
        self._indexed: dict[bytes, set[bytes]] = {}  # prefix (one byte) -> its committed keys
        self._max = max_records
        self._max_absent = max_absent
        self._max_index_keys = max_index_keys

    def __len__(self) -> int:
        return len(self._records) + len(self._absent)

    def items(self) -> list[tuple[bytes, Record | None]]:
        """The cached records and the keys known absent (None)."""
        absent: list[tuple[bytes, Record | None]] = [(key, None) for key in self._absent]
        return [*self._records.items(), *absent]

    def index(self, view: View, prefixes: tuple[bytes, ...]) -> None:
        """Index every committed key under each one-byte prefix of ``prefixes`` (a scan
        of ``view``, the committed state this cache serves)."""
        for prefix in prefixes:
            if len(prefix) != 1:
                raise ValueError("an indexed prefix is one byte")
            keys: set[bytes] = set()
            for key, _ in view.iter_prefix(prefix):
                keys.add(key)
                if len(keys) > self._max_index_keys:
                    break
            else:
                self._indexed[prefix] = keys

    def indexed_keys(self, prefix: bytes) -> frozenset[bytes] | None:
        """The committed keys under an indexed ``prefix`` (None: not indexed)."""
        keys = self._indexed.get(prefix)
        return None if keys is None else frozenset(keys)

    def known_absent(self, key: bytes) -> bool:
        """True when ``key`` is under an indexed prefix and absent from the committed state."""
        keys = self._indexed.get(key[:1])
        return keys is not None and key not in keys

    def get(self, key: bytes) -> Record | _Missing | None:
        found = self._records.get(key)
        if found is not None:
            return found
        if key in self._absent:
            return None
        keys = self._indexed.get(key[:1])
        if keys is not None and key not in keys:
            return None
        return MISSING

    def put(self, key: bytes, record: Record | None) -> None:
        if record is None:
            if key[:1] in self._indexed:
                return  # the index answers
            if len(self._absent) >= self._max_absent:
                self._absent.clear()
            self._absent.add(key)
            return
        if len(self._records) >= self._max:
            self._records.clear()
        self._records[key] = record

    def commit(self, changes: Mapping[bytes, Record | None]) -> None:
        """The records a block committed to the view (None: deleted)."""
        if len(self._records) + len(changes) > self._max:
            self._records.clear()
        indexed = self._indexed
        for key, record in changes.items():
            keys = indexed.get(key[:1])
            if record is None:
                self._records.pop(key, None)
                if keys is not None:
                    keys.discard(key)
                else:
                    self.put(key, None)
                continue
            self._records[key] = record
            self._absent.discard(key)
            if keys is not None:
                keys.add(key)
                if len(keys) > self._max_index_keys:
                    del indexed[key[:1]]


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
            raise LedgerInvariantBroken("state has no genesis parameters")
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
            raise LedgerInvariantBroken("state has no validator set")
        return found

    def zone_owner(self, zone: str) -> r.ZoneOwner | None:
        return self.load(r.zone_key(zone), r.ZoneOwner.decode)

    def consent(self, region: bytes, commune: bytes) -> r.Consent | None:
        return self.load(r.consent_key(region, commune), r.Consent.decode)

    def signing_key(self, account: bytes) -> r.SigningKey | None:
        return self.load(r.signing_key_key(account), r.SigningKey.decode)

    def delegate(self, key: bytes) -> r.Delegate | None:
        return self.load(r.delegate_key(key), r.Delegate.decode)

    def counter(self, key: bytes) -> int:
        found = self.load(key, r.Counter.decode)
        return 0 if found is None else found.value

    def has_role(self, pk: bytes) -> bool:
        """True when ``pk`` is a bank, issuer, merchant or auditor (not a holder), or signs
        for one of them (a key governance moved an account to, ``rotate_key``).

        A role key this block has not read or staged, and that the shared cache's index
        knows to be absent from the committed state, is answered without a read and
        without an entry in the block's cache (five per new holder of an allocation)."""
        cache, shared = self._cache, self._records
        for prefix, decode in _ROLE_READS:
            key = prefix + pk
            if key in cache:
                found = cache[key]
            elif shared is not None and shared.known_absent(key):
                continue
            else:
                found = self.load(key, decode)
            if found is not None:
                return True
        return False
