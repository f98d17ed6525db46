"""A small, deterministic world for ledger tests: keys, genesis, and a chain of blocks.

Keys come from fixed seeds so every run (and every golden vector) is identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from node.app.version import RULEBOOK
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import VALIDATOR_KINDS, BlockExecutor, BlockOutcome
from node.ledger.genesis import initial_state
from node.ledger.protocols import Rulebook, RuleSet
from node.ledger.state import ROLE_PREFIXES, DictView, RecordCache
from node.protocol.crypto import PublicKey, Signer, digest
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
)
from node.protocol.state_tree import StateTree

CHAIN_ID = "relance-test"
DAY_MS = 86_400_000
_R = TypeVar("_R", bound=r.Record)
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


def signer(name: str) -> Signer:
    """A deterministic key for ``name``."""
    return Signer(digest(b"relance-test-key:" + name.encode()))


NEXT_PROTOCOL = "tx3.block2"  # the protocol the ledger tests' governance upgrades to
TEST_RULEBOOK = RULEBOOK.with_rules(RuleSet(NEXT_PROTOCOL, memo_chars_max=16))
"""Today's protocol, and a next one whose memos hold 16 characters at most."""


@dataclass
class World:
    """The ledger state after genesis and the blocks applied so far."""

    bank: Signer = field(default_factory=lambda: signer("bank"))
    namur: Signer = field(default_factory=lambda: signer("namur"))
    liege: Signer = field(default_factory=lambda: signer("liege"))
    auditor: Signer = field(default_factory=lambda: signer("auditor"))
    time_ms: int = T0_MS
    height: int = 0
    sequences: dict[bytes, int] = field(default_factory=dict)  # accounts' next sequences
    # validator node keys' next sequences (evidence and governance: a separate counter)
    node_sequences: dict[bytes, int] = field(default_factory=dict)
    rulebook: Rulebook = TEST_RULEBOOK  # the protocols (and rules) the world's release knows

    def __post_init__(self) -> None:
        self.validators = validator_signers()
        self.genesis = Genesis(
            chain_id=CHAIN_ID,
            genesis_time_ms=T0_MS,
            limits=ProtocolLimits(),
            bank=GenesisAccount("Banque Test", self.bank.public_key),
            validators=tuple(
                GenesisValidator(f"v{n}", "commune", v.public_key, 1)
                for n, v in enumerate(self.validators)
            ),
            issuers=(
                GenesisIssuer("Namur", "Ville de Namur", self.namur.public_key, ("NA-1", "NA-2")),
                GenesisIssuer("Liège", "Ville de Liège", self.liege.public_key, ("LG-1",)),
            ),
            auditors=(GenesisAccount("Cour des comptes", self.auditor.public_key),),
        )
        self.view = DictView(initial_state(self.genesis))
        self.tree = StateTree.from_items(self.view.items().items())
        # Every ledger test executes as the node does: above a cache of decoded
        # committed records that outlives blocks (a stale entry fails the tests).
        self.records: RecordCache | None = _indexed_cache(self.view)

    # --- building transactions ----------------------------------------------------

    def _counters(self, kind: t.Kind) -> dict[bytes, int]:
        return self.node_sequences if kind in VALIDATOR_KINDS else self.sequences

    def next_sequence(self, who: Signer | bytes, kind: t.Kind) -> int:
        """``who``'s next sequence for a transaction of ``kind``, as this World tracks it.

        Accounts have one sequence; a validator node key has its own for the
        validator kinds, whatever other role the same key has.
        """
        return self._counters(kind).get(_pk_of(who), 0)

    def sign(self, who: Signer, payload: t.Payload, sequence: int | None = None) -> bytes:
        """Sign ``payload`` by ``who`` with its next sequence (or the one given)."""
        seq = self.next_sequence(who, payload.KIND) if sequence is None else sequence
        return t.Tx(CHAIN_ID, who.public_key, seq, payload).sign(who).encode()

    # --- applying ---------------------------------------------------------------------

    @property
    def next_height(self) -> int:
        """The height of the next block (genesis is height 0)."""
        return self.height + 1

    def executor(self) -> BlockExecutor:
        """An executor for the next block (its height and time); changes nothing by itself."""
        return BlockExecutor(
            self.view, self.time_ms, self.next_height, self.records, rulebook=self.rulebook
        )

    def check(self, data: bytes) -> Result:
        """The result ``data`` would get in the next block; changes nothing."""
        return self.executor().execute(data).result

    def apply(self, *txs: bytes) -> BlockOutcome:
        """Apply one block holding ``txs`` if every one applies; else change nothing.

        A rejected block is not committed: the height stays, so the next block
        (at the same height) starts from the same state.
        """
        executor = self.executor()
        outcome = BlockOutcome(tuple(executor.execute(data) for data in txs), executor.writes())
        if outcome.all_ok:
            self.view.apply(outcome.writes)
            if self.records is not None:
                self.records.commit(executor.changes())
            self.tree.update(outcome.writes)
            self.height += 1
            for o in outcome.outcomes:
                if o.sender is not None and o.kind is not None:
                    counters = self._counters(o.kind)
                    counters[o.sender] = counters.get(o.sender, 0) + 1
        return outcome

    def do(self, who: Signer, payload: t.Payload) -> Result:
        """Sign and apply one transaction in its own block; return its result."""
        outcome = self.apply(self.sign(who, payload))
        return outcome.outcomes[0].result

    def root(self) -> bytes:
        return self.tree.root()

    # --- helpers added for the kind tests (read-only unless named otherwise) -------

    def copy(self) -> World:
        """An independent World in the same state (same keys, clock, height, sequences)."""
        other = World(
            self.bank, self.namur, self.liege, self.auditor,
            self.time_ms, self.height, dict(self.sequences), dict(self.node_sequences),
        )  # fmt: skip
        other.view = DictView(self.view.items())
        other.tree = StateTree.from_items(other.view.items().items())
        other.records = None if self.records is None else _indexed_cache(other.view)
        return other

    def sign_block(self, *steps: tuple[Signer, t.Payload]) -> list[bytes]:
        """Sign several transactions for one block, each sender's sequences consecutive."""
        next_seq: dict[tuple[bool, bytes], int] = {}
        out = []
        for who, payload in steps:
            counter = (payload.KIND in VALIDATOR_KINDS, who.public_key)
            seq = next_seq.get(counter, self.next_sequence(who, payload.KIND))
            next_seq[counter] = seq + 1
            out.append(self.sign(who, payload, sequence=seq))
        return out

    def read(self, key: bytes, decode: Callable[[bytes], _R]) -> _R | None:
        raw = self.view.get(key)
        return None if raw is None else decode(raw)

    def merchant(self, who: Signer | bytes) -> r.Merchant | None:
        return self.read(r.merchant_key(_pk_of(who)), r.Merchant.decode)

    def holder(self, who: Signer | bytes) -> r.Holder | None:
        return self.read(r.holder_key(_pk_of(who)), r.Holder.decode)

    def issuer(self, who: Signer | bytes) -> r.Issuer | None:
        return self.read(r.issuer_key(_pk_of(who)), r.Issuer.decode)

    def bank_record(self) -> r.Bank | None:
        return self.read(r.bank_key(self.bank.public_key), r.Bank.decode)

    def campaign(self, code: str) -> r.Campaign | None:
        return self.read(r.campaign_key(code), r.Campaign.decode)

    def payout(self, payout_id: bytes) -> r.Payout | None:
        return self.read(r.payout_key(payout_id), r.Payout.decode)

    def validators_record(self) -> r.Validators:
        found = self.read(r.validators_key(), r.Validators.decode)
        assert found is not None, "the state has no validator set"
        return found

    def node_sequence(self, who: Signer | bytes) -> int:
        """A validator node key's sequence (evidence and governance senders)."""
        return self.counter(r.node_key(_pk_of(who)))

    def counter(self, key: bytes) -> int:
        found = self.read(key, r.Counter.decode)
        return 0 if found is None else found.value

    def seed(self, key: bytes, record: r.Record | None) -> None:
        """Write one record directly, bypassing the rules (changes state and root).

        Only for limits no transaction sequence reaches in a test's time budget.
        """
        writes = {key: None if record is None else record.encode()}
        self.view.apply(writes)
        self.tree.update(writes)
        if self.records is not None:
            self.records.commit({key: record})

    def check_record_cache(self) -> None:
        """Every record the cache holds is the committed one (None: absent), and its
        index of role keys is exactly the committed keys under each role prefix."""
        for prefix in [] if self.records is None else ROLE_PREFIXES:
            assert self.records is not None
            stored_keys = {key for key, _ in self.view.iter_prefix(prefix)}
            assert self.records.indexed_keys(prefix) == stored_keys, f"index of {prefix!r}"
        for key, record in [] if self.records is None else self.records.items():
            stored = self.view.get(key)
            if record is None:
                assert stored is None, f"the cache says {key!r} is absent"
            else:
                assert record.encode() == stored, f"the cache holds a stale {key!r}"


def _indexed_cache(view: DictView) -> RecordCache:
    """A record cache for ``view``, its role keys indexed as the node's (``Chain``)."""
    records = RecordCache()
    records.index(view, ROLE_PREFIXES)
    return records


VALIDATOR_COUNT = 4


def validator_signers(n: int = VALIDATOR_COUNT) -> tuple[Signer, ...]:
    """The genesis validators' node keys: ``validator0`` .. ``validator{n-1}``, power 1 each."""
    return tuple(signer(f"validator{i}") for i in range(n))


def holder_keys(n: int, prefix: str = "holder") -> list[Signer]:
    return [signer(f"{prefix}{i}") for i in range(n)]


def pk(s: Signer) -> PublicKey:
    return s.public_key


def _pk_of(who: Signer | bytes) -> bytes:
    return who if isinstance(who, bytes) else who.public_key
