"""What the API answers and accepts: frozen dataclasses, also the OpenAPI schemas.

Keys, ids and hashes are lowercase hex; amounts integer euro cents; times
Unix milliseconds (block time). Lists are pages: ``items`` newest or
smallest first, and ``next_cursor`` to pass back as ``?cursor=`` (null at the end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Final, Literal

HEX_KEY: Final = {"pattern": "^[0-9a-f]{64}$"}

Role = Literal["holder", "merchant", "issuer", "bank", "auditor"]
TxStatus = Literal["committed", "pending"]


@dataclass(frozen=True, slots=True)
class Problem:
    """An error (RFC 9457). ``code`` and ``result`` carry the ledger's result code
    when a transaction was rejected."""

    OPEN: ClassVar[bool] = True
    type: str
    title: str
    status: int
    detail: str
    code: int | None = None
    result: str | None = None
    tx_id: str | None = None
    available_cents: int | None = field(
        default=None,
        metadata={"description": "INSUFFICIENT_FUNDS: what the sender has left to spend"},
    )


ViewStateName = Literal["serving", "lagging", "rebuilding", "failed"]


@dataclass(frozen=True, slots=True)
class ViewHealth:
    """One derived view of the node (history index, analytics, event feed, ...)."""

    name: str
    state: ViewStateName
    height: int = field(metadata={"description": "the last block it folded in"})
    lag: int = field(metadata={"description": "blocks behind the chain"})
    failures: int = field(metadata={"description": "times it failed since the node started"})
    error: str | None = field(
        default=None, metadata={"description": "the last failure: block, transaction, message"}
    )


@dataclass(frozen=True, slots=True)
class Health:
    """``ok``: the node answers (consensus does not depend on its views). ``status`` is
    "degraded" while a view is failed, rebuilding or lagging; ``degraded`` names them."""

    ok: bool
    status: Literal["ok", "degraded"] = "ok"
    degraded: list[str] = field(default_factory=list)
    views: list[ViewHealth] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ValidatorView:
    name: str
    public_key: str
    power: int


@dataclass(frozen=True, slots=True)
class ScheduledUpgrade:
    """The last protocol upgrade governance scheduled (``schedule_upgrade``)."""

    protocol: str
    software: str = field(metadata={"description": "the release that knows the protocol"})
    height: int = field(metadata={"description": "the first height under the protocol"})
    known: bool = field(
        metadata={
            "description": "this node's release knows the protocol (false: it stops "
            "after the block before the height; install the software named)"
        }
    )


@dataclass(frozen=True, slots=True)
class Status:
    chain_id: str
    genesis_hash: str
    node_key: str = field(metadata={"description": "binds API tokens to this node"})
    moniker: str
    validator: bool
    height: int
    block_hash: str
    block_time_ms: int
    state_root: str
    consensus_height: int
    mempool_txs: int
    mempool_bytes: int
    peers: int
    validators: list[ValidatorView]
    software_version: str = field(metadata={"description": "the relance package's version"})
    protocol_version: str = field(
        metadata={
            "description": "encodings spoken, tx<N>.block<M>: the transaction format N and "
            "the consensus record format M (equal strings: same protocol)"
        }
    )
    upgrade: ScheduledUpgrade | None = None


# --- submitting -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """One signed transaction (``tx``) or a batch (``txs``), as hex of the wire bytes."""

    tx: str | None = None
    txs: list[str] | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """``accepted`` is true when the transaction is in the mempool or already in a
    block (idempotent by id); ``height`` is set once it is in a block."""

    accepted: bool
    tx_id: str | None
    result: str
    code: int
    height: int | None
    message: str | None = field(
        default=None, metadata={"description": "why it was refused, for people"}
    )
    available_cents: int | None = field(
        default=None,
        metadata={"description": "INSUFFICIENT_FUNDS: what the sender has left to spend"},
    )


@dataclass(frozen=True, slots=True)
class SubmitBatch:
    results: list[SubmitResult]


# --- accounts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Balance:
    """A holder's balance in one campaign, or a merchant's units of one issuer."""

    cents: int
    campaign: str | None = None
    issuer: str | None = None


@dataclass(frozen=True, slots=True)
class MerchantInfo:
    issuer: str
    name: str
    category: str
    zone: str
    auto_redeem: bool
    active: bool


@dataclass(frozen=True, slots=True)
class IssuerInfo:
    name: str
    territory: str
    zones: list[str]
    escrow_cents: int
    pending_cents: int
    redeemed_cents: int
    settled_cents: int


@dataclass(frozen=True, slots=True)
class Account:
    """An account's current state (public: the keys are pseudonymous). Its history is not."""

    key: str
    role: Role
    sequence: int
    balances: list[Balance]
    name: str | None = None
    merchant: MerchantInfo | None = None
    issuer: IssuerInfo | None = None
    node_sequence: int | None = field(
        default=None,
        metadata={
            "description": "for a validator's node key: the next sequence of the governance "
            "and evidence transactions it signs (a counter of their own)"
        },
    )


@dataclass(frozen=True, slots=True)
class Session:
    """Who a token speaks for."""

    account: str
    role: Role
    scope: Literal["account", "balance"]


# --- campaigns and merchants ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Campaign:
    """Rules and running totals. ``budget_cents`` is funded but unallocated;
    ``outstanding_cents`` is held by holders (unspent)."""

    code: str
    issuer: str
    name: str
    zones: list[str]
    categories: list[str]
    valid_from_ms: int
    valid_until_ms: int
    max_per_holder_cents: int
    closed: bool
    active: bool
    budget_cents: int
    outstanding_cents: int
    funded_cents: int
    allocated_cents: int
    spent_cents: int
    refunded_cents: int
    returned_cents: int
    withdrawn_cents: int
    last_valid_day: str = field(
        default="",
        metadata={
            "description": "the last Brussels day the vouchers work all day (YYYY-MM-DD): "
            "what letters, wallets and dashboards print"
        },
    )


@dataclass(frozen=True, slots=True)
class CampaignPage:
    items: list[Campaign]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class DirectoryEntry:
    """Where vouchers can be spent: a merchant and the open campaigns it accepts."""

    key: str
    name: str
    category: str
    zone: str
    issuer: str
    active: bool
    campaigns: list[str]


@dataclass(frozen=True, slots=True)
class DirectoryPage:
    items: list[DirectoryEntry]
    next_cursor: str | None


# --- payouts ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Payout:
    payout_id: str
    merchant: str
    issuer: str
    amount_cents: int
    created_ms: int
    settled: bool
    bank_reference: str | None
    settled_ms: int | None
    returned_reason: str | None  # the bank's ISO 20022 return reason when it returned the payout


@dataclass(frozen=True, slots=True)
class PayoutPage:
    items: list[Payout]
    next_cursor: str | None


# --- blocks and transactions --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BlockHeader:
    height: int
    hash: str
    time_ms: int
    previous_block_hash: str
    tx_root: str
    state_root: str
    validators_hash: str
    next_validators_hash: str
    proposer: str
    txs: int


@dataclass(frozen=True, slots=True)
class Signature:
    validator: str
    signature: str


@dataclass(frozen=True, slots=True)
class CertificateView:
    """2f + 1 precommits for the block: check them with the genesis validator set."""

    height: int
    round: int
    block_hash: str
    signatures: list[Signature]


@dataclass(frozen=True, slots=True)
class Block:
    """A block's header (hash, roots) and commit certificate; transactions stay private."""

    height: int
    hash: str
    time_ms: int
    previous_block_hash: str
    tx_root: str
    state_root: str
    validators_hash: str
    next_validators_hash: str
    proposer: str
    txs: int
    certificate: CertificateView
    header_bytes: str = field(metadata={"description": "canonical header bytes, hex"})
    certificate_bytes: str = field(metadata={"description": "canonical certificate, hex"})


@dataclass(frozen=True, slots=True)
class CertifiedBlock:
    """A block's exact bytes (header and every transaction) and its certificate's, hex:
    what an audit replays. Only auditors and the bank may read whole blocks."""

    height: int
    block: str
    certificate: str


@dataclass(frozen=True, slots=True)
class CertifiedBlockRange:
    """Consecutive certified blocks from a height, oldest first; ``next_from`` is the
    height to ask next (None: this was the last committed block)."""

    items: list[CertifiedBlock]
    next_from: int | None


@dataclass(frozen=True, slots=True)
class BlockPage:
    items: list[BlockHeader]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Transaction:
    """A committed transaction as its reader may see it (allocation and settlement
    lists are cut to the reader's own entries unless it is the issuer, bank or an auditor)."""

    tx_id: str
    height: int
    index: int
    time_ms: int
    kind: str
    sender: str
    sequence: int
    fields: dict[str, object]
    campaign: str | None = None
    holder: str | None = None
    merchant: str | None = None
    amount_cents: int | None = None
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionPage:
    items: list[Transaction]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Receipt:
    """Where a transaction is (public); ``transaction`` only for a reader who may see it."""

    tx_id: str
    status: TxStatus
    height: int | None
    index: int | None
    transaction: Transaction | None = None


@dataclass(frozen=True, slots=True)
class Handover:
    """The certified header of the last block before a validator set took office:
    its ``next_validators_hash`` names that set."""

    height: int
    header_bytes: str = field(metadata={"description": "canonical header bytes, hex"})
    certificate_bytes: str = field(metadata={"description": "canonical certificate, hex"})


@dataclass(frozen=True, slots=True)
class ValidatorEra:
    """A validator set of the chain's history, in force from ``first_height`` until the
    next one's. ``handover`` is absent for the genesis set (height 1)."""

    first_height: int
    validators: list[ValidatorView]
    validator_set_bytes: str = field(metadata={"description": "canonical validator set, hex"})
    handover: Handover | None = None


@dataclass(frozen=True, slots=True)
class ValidatorEraPage:
    items: list[ValidatorEra]
    next_cursor: str | None


# --- proofs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Anchor:
    """What a proof is checked against: a header, its commit certificate, and the
    validator set (compare its hash with the header's and with the genesis)."""

    height: int
    block_hash: str
    state_root: str
    tx_root: str
    header_bytes: str
    certificate_bytes: str
    validator_set_bytes: str


@dataclass(frozen=True, slots=True)
class StateProof:
    """A key's value (or absence) under the anchor's ``state_root``.
    ``proof`` is ``node.protocol.state_tree.encode_proof`` in hex; ``record`` the value decoded."""

    key: str
    value: str | None
    record: dict[str, object] | None
    proof: str
    anchor: Anchor


@dataclass(frozen=True, slots=True)
class ItemProof:
    """One item of a list transaction (``allocate``, ``settle``) under the body's items
    root: ``item`` its canonical bytes, ``siblings`` from the leaf up (RFC 6962 shape)."""

    index: int
    item: str
    siblings: list[str]


@dataclass(frozen=True, slots=True)
class InclusionProof:
    """A transaction's inclusion in the anchor's ``tx_root`` (RFC 6962 shape: the leaf
    is ``node.protocol.merkle.tx_leaf`` of the transaction's wire bytes, ``leaf_hash`` its hash,
    ``siblings`` from the leaf up). ``tx`` (the wire bytes) only for a reader who may see
    the whole transaction. A party who may see only some items of a list transaction
    gets instead ``body`` (the signed, committed body), ``signature``, ``items_digest``
    (SHA-256 of the encoded item list, bound by the leaf), ``item_count`` and ``items``:
    its own items with their paths; the others only as hashes inside those paths."""

    tx_id: str
    index: int
    size: int
    leaf_hash: str
    siblings: list[str]
    anchor: Anchor
    tx: str | None = None
    body: str | None = None
    signature: str | None = None
    items_digest: str | None = None
    item_count: int | None = None
    items: list[ItemProof] | None = None


# --- voucher status (the issuing commune only) --------------------------------------------


@dataclass(frozen=True, slots=True)
class VoucherState:
    """One key a commune allocated to in a campaign (node/api/voucher_status.py)."""

    holder: str
    allocated_cents: int
    balance_cents: int
    status: str  # untouched | partly_used | used | reissued | expired
    replaced_by: str | None = None  # the replacement key, for a reissued voucher


@dataclass(frozen=True, slots=True)
class VoucherStatusPage:
    campaign: str
    counts: dict[str, int]  # per status, over the whole campaign
    complete: bool  # false: a cap was reached (node/protocol/limits.py), some keys are missing
    items: list[VoucherState]
    next_cursor: str | None
