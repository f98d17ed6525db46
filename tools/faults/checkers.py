"""Checks over the honest nodes' final state, after every node has stopped.

Sources, none trusted blindly:

- each stopped node's store (``BlockStore``): blocks, certificates, recorded
  roots, the final ledger state (read with ``node.ledger.records``);
- each node's consensus journal (``tools.faults.byzantine``): every vote and
  proposal it signed, and every distinct one it received. Each entry's
  signature is verified here; an entry that does not verify is counted and
  ignored, so a journal can only ever show what a key really signed;
- the workload's history (what clients were told);
- each node's ``node.log`` (what the driver reported as evidence).

Each check returns ``Finding``s: a name, a verdict, a one-line detail.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from node.consensus.types import (
    NIL_ROUND,
    Block,
    Certificate,
    Header,
    Proposal,
    Vote,
    VoteKind,
    is_proposal_signed,
    is_vote_signed,
)
from node.ledger import execute
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import codec
from node.protocol.codec import DecodeError
from node.protocol.crypto import digest
from node.protocol.genesis import Genesis
from node.run import config
from node.store.blockstore import BlockStore
from tools.audit.chain import Auditor
from tools.audit.report import reconcile
from tools.audit.sources import DataDirSource
from tools.faults.workload import History, Outcome


@dataclass(frozen=True, slots=True)
class Finding:
    check: str
    ok: bool
    detail: str


# --- chains from stores ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockRow:
    height: int
    hash: bytes
    header: Header
    recorded_root: bytes | None
    certificate: Certificate
    txs: tuple[bytes, ...]


@dataclass
class NodeChain:
    index: int
    blocks: list[BlockRow]
    state: dict[bytes, bytes]

    @property
    def top(self) -> int:
        return len(self.blocks)

    def tx_heights(self) -> dict[bytes, list[int]]:
        """Each transaction id, and every height holding it (twice would be a bug)."""
        found: dict[bytes, list[int]] = defaultdict(list)
        for row in self.blocks:
            for data in row.txs:
                found[digest(_body(data))].append(row.height)
        return found


def _body(data: bytes) -> bytes:
    """A transaction's body (``[body, signature]``, or ``[body, signature, items]``)."""
    outer = codec.decode(data, len(data))
    if not isinstance(outer, list) or len(outer) not in (2, 3) or not isinstance(outer[0], bytes):
        raise DecodeError("a transaction is [body, signature] or [body, signature, items]")
    return outer[0]


def read_chain(index: int, home: Path, genesis: Genesis) -> NodeChain:
    """Every block of a stopped node's store, and its final state."""
    store = BlockStore.open(home / config.DATA_DIR, genesis.genesis_hash, create=False)
    try:
        rows = []
        for height in range(1, store.height() + 1):
            raw_block, raw_cert = store.block(height), store.certificate(height)
            if raw_block is None or raw_cert is None:
                raise RuntimeError(f"node {index}: block {height} missing from its store")
            block = Block.decode(raw_block)
            rows.append(
                BlockRow(
                    height,
                    block.hash(),
                    block.header,
                    store.state_root(height),
                    Certificate.decode(raw_cert),
                    block.txs,
                )
            )
        return NodeChain(index, rows, dict(store.state_items()))
    finally:
        store.close()


def check_chain_integrity(chain: NodeChain, genesis: Genesis) -> Finding:
    """Each block follows the previous one; its certificate and recorded root are its own."""
    previous: bytes = genesis.genesis_hash
    problems: list[str] = []
    for row in chain.blocks:
        if row.header.height != row.height or row.header.previous_block_hash != previous:
            problems.append(f"block {row.height} does not follow block {row.height - 1}")
        if row.certificate.height != row.height or row.certificate.block_hash != row.hash:
            problems.append(f"certificate {row.height} is not its block's")
        if row.recorded_root != row.header.state_root:
            problems.append(f"recorded state root {row.height} differs from the header's")
        previous = row.hash
    detail = "; ".join(problems[:3]) or f"{chain.top} blocks linked, certificates match"
    return Finding(f"integrity[node{chain.index}]", not problems, detail)


def check_agreement(chains: Sequence[NodeChain]) -> Finding:
    """The same block hash and state root at every height the nodes share."""
    common = min(c.top for c in chains)
    for height in range(1, common + 1):
        seen = {(c.blocks[height - 1].hash, c.blocks[height - 1].header.state_root) for c in chains}
        if len(seen) != 1:
            return Finding("agreement", False, f"nodes disagree at height {height}: a fork")
    tops = ", ".join(f"node{c.index}={c.top}" for c in chains)
    return Finding("agreement", True, f"{common} common heights identical ({tops})")


# --- money ---------------------------------------------------------------------------------


def check_conservation(chain: NodeChain) -> Finding:
    """Per issuer: escrow == budgets + holder balances + merchant units + pending payouts."""
    issuers: dict[bytes, r.Issuer] = {}
    budgets: Counter[bytes] = Counter()
    held: Counter[bytes] = Counter()
    held_in: Counter[str] = Counter()
    units: Counter[bytes] = Counter()
    unsettled: Counter[bytes] = Counter()
    campaigns: dict[str, r.Campaign] = {}
    for key, value in chain.state.items():
        prefix, rest = key[:1], key[1:]
        if prefix == r.Prefix.ISSUER.value:
            issuers[rest] = r.Issuer.decode(value)
        elif prefix == r.Prefix.CAMPAIGN.value:
            campaigns[rest.decode()] = r.Campaign.decode(value)
        elif prefix == r.Prefix.MERCHANT.value:
            for owner, cents in r.Merchant.decode(value).balances:
                units[owner] += cents
        elif prefix == r.Prefix.PAYOUT.value:
            payout = r.Payout.decode(value)
            if not payout.settled:
                unsettled[payout.issuer] += payout.amount_cents
    for key, value in chain.state.items():
        if key[:1] == r.Prefix.HOLDER.value:
            for code, cents in r.Holder.decode(value).balances:
                held[campaigns[code].issuer] += cents
                held_in[code] += cents
    for code, campaign in campaigns.items():
        budgets[campaign.issuer] += campaign.budget_cents
        if campaign.outstanding_cents != held_in[code]:
            return Finding("conservation", False, f"campaign {code}: outstanding != holdings")
    escrow_total = 0
    for key, books in issuers.items():
        parts = budgets[key] + held[key] + units[key] + books.pending_cents
        if books.escrow_cents != parts or books.pending_cents != unsettled[key]:
            return Finding(
                "conservation",
                False,
                f"{books.name}: escrow {books.escrow_cents} != {parts} "
                f"(pending {books.pending_cents}, unsettled payouts {unsettled[key]})",
            )
        escrow_total += books.escrow_cents
    return Finding(
        "conservation",
        True,
        f"{len(issuers)} issuers balance at height {chain.top} (escrow {escrow_total} cents)",
    )


# --- what clients were told --------------------------------------------------------------


def _sequence_space(kind: t.Kind) -> str:
    for name, kinds in (
        ("holder", execute.HOLDER_KINDS),
        ("bank", execute.BANK_KINDS),
        ("merchant", execute.MERCHANT_KINDS),
        ("node", execute.VALIDATOR_KINDS),
    ):
        if kind in kinds:
            return name
    return "issuer"


def check_history(chain: NodeChain, history: History, genesis: Genesis) -> list[Finding]:
    """No acknowledged transaction lost; none applied twice; refused ones never applied."""
    where = chain.tx_heights()
    twice = [tx_id.hex()[:16] for tx_id, heights in where.items() if len(heights) > 1]
    sequences: Counter[tuple[bytes, str, int]] = Counter()
    for row in chain.blocks:
        for data in row.txs:
            signed = t.decode_tx(data, genesis.chain_id)
            if isinstance(signed, t.SignedTx):
                space = _sequence_space(signed.tx.payload.KIND)
                sequences[(signed.tx.sender, space, signed.tx.sequence)] += 1
    reused = [f"{k[0].hex()[:12]}/{k[1]}/{k[2]}" for k, n in sequences.items() if n > 1]
    ok_ids, failed_ids = history.ids(Outcome.OK), history.ids(Outcome.FAILED)
    unknown_ids = history.ids(Outcome.UNKNOWN) | history.ids(Outcome.INVOKED)
    lost = [i.hex()[:16] for i in ok_ids if i not in where]
    phantom = [i.hex()[:16] for i in failed_ids if i in where]
    wrong_height = [
        c.tx_id.hex()[:16]
        for c in history.calls
        if c.outcome is Outcome.OK and c.tx_id in where and where[c.tx_id][0] != c.height
    ]
    applied_unknown = sum(1 for i in unknown_ids if i in where)
    return [
        Finding(
            "no-acknowledged-loss",
            not lost and not wrong_height,
            f"{len(ok_ids)} acknowledged, all in blocks at the height told"
            if not lost and not wrong_height
            else f"lost {lost[:3]}, wrong height {wrong_height[:3]}",
        ),
        Finding(
            "at-most-once",
            not twice and not reused,
            f"{sum(len(h) for h in where.values())} transactions, each id and "
            f"(sender, sequence) once"
            if not twice and not reused
            else f"twice: ids {twice[:3]}, sequences {reused[:3]}",
        ),
        Finding(
            "refused-never-applied",
            not phantom,
            f"{len(failed_ids)} refused, none applied; {applied_unknown} of "
            f"{len(unknown_ids)} unknown were applied"
            if not phantom
            else f"refused yet applied: {phantom[:3]}",
        ),
    ]


# --- journals: what keys signed ------------------------------------------------------------


@dataclass
class Signed:
    """Every validly signed vote and proposal found in the journals, by signer and slot."""

    votes: dict[tuple[bytes, int, int, VoteKind], set[bytes | None]] = field(
        default_factory=lambda: defaultdict(set)
    )
    proposals: dict[tuple[bytes, int, int], set[tuple[bytes, int]]] = field(
        default_factory=lambda: defaultdict(set)
    )
    own_prevotes: dict[tuple[bytes, int, int], set[bytes | None]] = field(
        default_factory=lambda: defaultdict(set)
    )
    headers: dict[bytes, Header] = field(default_factory=dict)  # proposed blocks seen
    invalid_proposed: Counter[str] = field(default_factory=Counter)  # byz-invalid kinds
    entries: int = 0
    unverified: int = 0


def read_journals(paths: Iterable[Path], chain_id: str) -> Signed:
    signed = Signed()
    for path in paths:
        if not path.exists():
            continue
        with path.open(encoding="ascii", errors="replace") as lines:
            for line in lines:
                _read_entry(signed, line.split(), chain_id)
    return signed


def _read_entry(signed: Signed, parts: list[str], chain_id: str) -> None:
    if len(parts) < 2:
        return
    tag = parts[0]
    try:
        if tag == "byz-invalid" and len(parts) == 4:
            signed.invalid_proposed[parts[2]] += 1
            return
        record = bytes.fromhex(parts[1])
        if tag in ("own-vote", "seen-vote", "byz-vote"):
            vote = Vote.decode(record)
            if not is_vote_signed(vote, chain_id):
                signed.unverified += 1
                return
            signed.entries += 1
            signed.votes[(vote.validator, vote.height, vote.round, vote.kind)].add(vote.block_hash)
            if tag == "own-vote" and vote.kind is VoteKind.PREVOTE:
                signed.own_prevotes[(vote.validator, vote.height, vote.round)].add(vote.block_hash)
        elif tag in ("own-proposal", "seen-proposal", "byz-proposal"):
            proposal = Proposal.decode(record)
            if not is_proposal_signed(proposal, chain_id):
                signed.unverified += 1
                return
            signed.entries += 1
            slot = (proposal.proposer, proposal.height, proposal.round)
            signed.proposals[slot].add((proposal.block_hash, proposal.valid_round))
            if len(parts) >= 3:
                header = Header.decode(bytes.fromhex(parts[2]))
                if header.hash() == proposal.block_hash:
                    signed.headers[proposal.block_hash] = header
    except (ValueError, DecodeError):
        signed.unverified += 1


def equivocations(signed: Signed, key: bytes) -> tuple[int, int]:
    """(vote slots, proposal slots) where ``key`` signed two different things."""
    votes = sum(1 for (k, *_), values in signed.votes.items() if k == key and len(values) > 1)
    proposals = sum(
        1 for (k, *_), values in signed.proposals.items() if k == key and len(values) > 1
    )
    return votes, proposals


def check_no_double_sign(signed: Signed, honest: Mapping[bytes, str]) -> Finding:
    """No honest key signed two different votes (or proposals) for one height, round, step."""
    bad = []
    for key, name in honest.items():
        votes, proposals = equivocations(signed, key)
        if votes or proposals:
            bad.append(f"{name}: {votes} vote and {proposals} proposal slots")
    vote_slots = sum(1 for (k, *_) in signed.votes if k in honest)
    return Finding(
        "no-honest-double-sign",
        not bad,
        "; ".join(bad)
        or f"{vote_slots} honest vote slots, {signed.entries} signed entries checked, "
        f"{signed.unverified} unverifiable ignored",
    )


def check_prevote_nil(
    signed: Signed, byzantine: bytes, honest: Mapping[bytes, str], chain: NodeChain
) -> list[Finding]:
    """The byzantine proposer's fresh blocks: honest prevotes nil on each, none is committed."""
    slots = [
        (h, rnd)
        for (k, h, rnd), values in signed.proposals.items()
        if k == byzantine and any(valid_round == NIL_ROUND for _, valid_round in values)
    ]
    non_nil, unvoted = [], []
    checked = 0
    for height, rnd in slots:
        cast_here = 0
        for key, name in honest.items():
            cast = signed.own_prevotes.get((key, height, rnd), set())
            cast_here += len(cast)
            if any(v is not None for v in cast):
                non_nil.append(f"{name}@{height}/{rnd}")
        checked += cast_here
        if cast_here == 0:
            unvoted.append(f"{height}/{rnd}")
    ok = bool(slots) and not non_nil and not unvoted
    committed = [row.height for row in chain.blocks if row.header.proposer == byzantine]
    return [
        Finding(
            "honest-prevote-nil",
            ok,
            f"{len(slots)} byzantine proposals, {checked} honest prevotes on them, all nil"
            if ok
            else f"non-nil prevotes {non_nil[:4]}; no honest prevote at {unvoted[:4]}; "
            f"{len(slots)} byzantine proposals seen",
        ),
        Finding(
            "invalid-never-committed",
            not committed,
            f"no committed block was proposed by the byzantine validator "
            f"(invalid kinds proposed: {dict(signed.invalid_proposed)})"
            if not committed
            else f"its blocks committed at heights {committed[:5]}",
        ),
    ]


# --- logs, evidence, audit -----------------------------------------------------------------

EVIDENCE_LINE = re.compile(r"evidence[: ].*?([0-9a-f]{16})")


def logged_evidence(log: Path, key: bytes) -> int:
    """Lines of ``node.log`` where the node reported evidence naming ``key``."""
    if not log.exists():
        return 0
    prefix = key.hex()[:16]
    count = 0
    with log.open(encoding="utf-8", errors="replace") as lines:
        for line in lines:
            match = EVIDENCE_LINE.search(line)
            if match and match.group(1) == prefix:
                count += 1
    return count


def ledger_evidence(chain: NodeChain, key: bytes) -> int:
    """Evidence records committed on the ledger against ``key``."""
    prefix = r.Prefix.EVIDENCE.value + key
    return sum(1 for k in chain.state if k.startswith(prefix))


def check_audit(index: int, home: Path, genesis: Genesis) -> Finding:
    """``relance-audit verify --data``: the whole history replayed from the genesis alone."""
    source = DataDirSource(home / config.DATA_DIR, genesis.genesis_hash)
    try:
        result = Auditor(genesis, source, source, workers=1).run()
    finally:
        source.close()
    failed = [c for c in reconcile(result.books) if not c.ok]
    ok = result.ok and not failed and result.stored_state_checked
    if result.divergence is not None:
        detail = result.divergence.describe().splitlines()[0]
    elif failed:
        detail = f"figures do not reconcile: {failed[0]}"
    else:
        detail = (
            f"{result.heights_checked} heights, {result.transactions} txs, "
            f"{result.signatures_verified} signatures in {result.seconds:.1f} s"
        )
    return Finding(f"audit[node{index}]", ok, detail)
