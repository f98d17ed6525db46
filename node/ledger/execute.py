"""Executing transactions and blocks: decode, verify, sequence, rules.

``BlockExecutor`` applies transactions one by one above a committed view and
collects the block's writes. A rejected transaction changes nothing, so the
same executor serves the proposer (which drops rejected transactions), the
validators (for which one rejection makes the block invalid) and the mempool
(which only asks for the code).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from node.ledger import records as r
from node.ledger import rules
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.rules import TxContext
from node.ledger.state import BlockState, RecordCache, View
from node.protocol.crypto import Digest, PublicKey

HOLDER_KINDS: Final = frozenset({t.Kind.PAY, t.Kind.SWEEP})
BANK_KINDS: Final = frozenset({t.Kind.FUND, t.Kind.SETTLE, t.Kind.WITHDRAW, t.Kind.RETURN_PAYOUT})
MERCHANT_KINDS: Final = frozenset(
    {t.Kind.PAY_AUTHORIZED, t.Kind.REFUND, t.Kind.TRANSFER, t.Kind.REDEEM}
)
VALIDATOR_KINDS: Final = frozenset(
    {t.Kind.EVIDENCE, t.Kind.ADMIT_ISSUER, t.Kind.CHANGE_VALIDATORS, t.Kind.SCHEDULE_UPGRADE}
)


@dataclass(frozen=True, slots=True)
class TxOutcome:
    result: Result
    tx_id: Digest | None
    kind: t.Kind | None
    sender: PublicKey | None


@dataclass(frozen=True, slots=True)
class BlockOutcome:
    outcomes: tuple[TxOutcome, ...]
    writes: dict[bytes, bytes | None]

    @property
    def all_ok(self) -> bool:
        return all(o.result == Result.OK for o in self.outcomes)


class BlockExecutor:
    """Applies transactions of block ``height`` at ``time_ms`` above ``view``.

    ``height`` starts a scheduled validator change and dates evidence and
    governance; callers that do not know it (some tests) pass None, and then
    those kinds are refused. ``records`` is the committed state's record cache,
    when ``view`` is the committed state (the node's store).
    """

    def __init__(
        self,
        view: View,
        time_ms: int,
        height: int | None = None,
        records: RecordCache | None = None,
    ) -> None:
        self._state = BlockState(view, records)
        self._time_ms = time_ms
        self._height = height
        self._chain_id = self._state.params().chain_id
        if height is not None:
            rules.begin_block(self._state, height)

    def state(self) -> BlockState:
        """The state as of the transactions applied so far: to read, never to write."""
        return self._state

    def sequence_of(self, kind: t.Kind, sender: PublicKey) -> int | Result:
        """The sender's next sequence as of the transactions applied so far."""
        return sequence_of(self._state, kind, sender)

    def validators_at(self, height: int) -> tuple[r.Validator, ...]:
        """The validator set in force at ``height``, given this block's changes."""
        return self._state.validators().at(height)

    @property
    def chain_id(self) -> str:
        return self._chain_id

    def execute(self, data: bytes, signature_checked: bool = False) -> TxOutcome:
        """Apply one transaction's wire bytes; on rejection nothing changes."""
        return self.execute_decoded(t.decode_tx(data, self._chain_id), signature_checked)

    def execute_decoded(
        self, decoded: t.SignedTx | Result, signature_checked: bool = False
    ) -> TxOutcome:
        """Apply a transaction decoded by ``tx.decode_tx`` (for this chain).

        ``signature_checked`` is for callers that verified the signature already
        (the node verifies on several cores before executing).
        """
        if isinstance(decoded, Result):
            return TxOutcome(decoded, None, None, None)
        tx = decoded.tx
        kind = tx.payload.KIND
        result = self._apply(decoded, signature_checked)
        return TxOutcome(result, decoded.tx_id, kind, tx.sender)

    def writes(self) -> dict[bytes, bytes | None]:
        return self._state.writes()

    def changes(self) -> dict[bytes, r.Record | None]:
        """The changed records, for the ``RecordCache`` once the block is committed."""
        return self._state.changes()

    def _apply(self, signed: t.SignedTx, signature_checked: bool) -> Result:
        if not signature_checked and not signed.signature_ok():
            return Result.BAD_SIGNATURE
        tx = signed.tx
        expected = sequence_of(self._state, tx.payload.KIND, tx.sender)
        if isinstance(expected, Result):
            return expected
        if tx.sequence != expected:
            return Result.BAD_SEQUENCE
        ctx = TxContext(tx.sender, signed.tx_id, self._time_ms, self._height)
        result = _PROCESSORS[tx.payload.KIND](self._state, ctx, tx.payload)
        if result == Result.OK:
            bump_sequence(self._state, tx.payload.KIND, tx.sender)
        return result


def execute_block(
    view: View, time_ms: int, txs: Sequence[bytes], height: int | None = None
) -> BlockOutcome:
    """Apply every transaction of a block; the block is valid when ``all_ok``."""
    executor = BlockExecutor(view, time_ms, height)
    outcomes = tuple(executor.execute(data) for data in txs)
    return BlockOutcome(outcomes, executor.writes())


# --- sequences, by the sender's role ------------------------------------------------


def sequence_of(state: BlockState, kind: t.Kind, sender: PublicKey) -> int | Result:
    """The sender's next sequence for a transaction of ``kind``, or why it may not send one."""
    if kind in HOLDER_KINDS:
        holder = state.holder(sender)
        if holder is not None:
            return holder.sequence
        return Result.NOT_AUTHORIZED if state.has_role(sender) else 0
    if kind in BANK_KINDS:
        bank = state.bank(sender)
        return Result.NOT_AUTHORIZED if bank is None else bank.sequence
    if kind in MERCHANT_KINDS:
        merchant = state.merchant(sender)
        return Result.NOT_AUTHORIZED if merchant is None else merchant.sequence
    if kind in VALIDATOR_KINDS:
        return state.counter(r.node_key(sender))
    issuer = state.issuer(sender)
    if issuer is not None:
        return issuer.sequence
    merchant = state.merchant(sender)
    if kind == t.Kind.UPDATE_MERCHANT and merchant is not None:
        return merchant.sequence
    return Result.NOT_AUTHORIZED


def bump_sequence(state: BlockState, kind: t.Kind, sender: PublicKey) -> None:
    if kind in HOLDER_KINDS:
        holder = state.holder(sender) or r.EMPTY_HOLDER
        state.store(r.holder_key(sender), holder.next_sequence())
        return
    if kind in BANK_KINDS:
        bank = state.bank(sender)
        if bank is None:
            raise RuntimeError("bank vanished")
        state.store(r.bank_key(sender), replace(bank, sequence=bank.sequence + 1))
        return
    if kind in VALIDATOR_KINDS:
        key = r.node_key(sender)
        state.store(key, r.Counter(state.counter(key) + 1))
        return
    issuer = state.issuer(sender)
    if issuer is not None and kind not in MERCHANT_KINDS:
        state.store(r.issuer_key(sender), issuer.next_sequence())
        return
    merchant = state.merchant(sender)
    if merchant is None:
        raise RuntimeError("sender vanished")
    state.store(r.merchant_key(sender), merchant.next_sequence())


_Processor = Callable[[BlockState, TxContext, t.Payload], Result]

_PROCESSORS: Final[dict[t.Kind, _Processor]] = {
    t.Kind.REGISTER_MERCHANT: rules.process_register_merchant,  # type: ignore[dict-item]
    t.Kind.UPDATE_MERCHANT: rules.process_update_merchant,  # type: ignore[dict-item]
    t.Kind.SUSPEND_MERCHANT: rules.process_suspend_merchant,  # type: ignore[dict-item]
    t.Kind.CREATE_CAMPAIGN: rules.process_create_campaign,  # type: ignore[dict-item]
    t.Kind.FUND: rules.process_fund,  # type: ignore[dict-item]
    t.Kind.ALLOCATE: rules.process_allocate,  # type: ignore[dict-item]
    t.Kind.PAY: rules.process_pay,  # type: ignore[dict-item]
    t.Kind.PAY_AUTHORIZED: rules.process_pay_authorized,  # type: ignore[dict-item]
    t.Kind.SWEEP: rules.process_sweep,  # type: ignore[dict-item]
    t.Kind.REFUND: rules.process_refund,  # type: ignore[dict-item]
    t.Kind.REISSUE: rules.process_reissue,  # type: ignore[dict-item]
    t.Kind.TRANSFER: rules.process_transfer,  # type: ignore[dict-item]
    t.Kind.REDEEM: rules.process_redeem,  # type: ignore[dict-item]
    t.Kind.SETTLE: rules.process_settle,  # type: ignore[dict-item]
    t.Kind.CLOSE_CAMPAIGN: rules.process_close_campaign,  # type: ignore[dict-item]
    t.Kind.WITHDRAW: rules.process_withdraw,  # type: ignore[dict-item]
    t.Kind.EVIDENCE: rules.process_evidence,  # type: ignore[dict-item]
    t.Kind.ADMIT_ISSUER: rules.process_admit_issuer,  # type: ignore[dict-item]
    t.Kind.CHANGE_VALIDATORS: rules.process_change_validators,  # type: ignore[dict-item]
    t.Kind.SCHEDULE_UPGRADE: rules.process_schedule_upgrade,  # type: ignore[dict-item]
    t.Kind.RETURN_PAYOUT: rules.process_return_payout,  # type: ignore[dict-item]
    t.Kind.CONSENT_ZONES: rules.process_consent_zones,  # type: ignore[dict-item]
}
# Each processor takes the payload type of its kind; the table is checked
# against PAYLOAD_TYPES at import so a kind can never reach the wrong one.
if set(_PROCESSORS) != set(t.PAYLOAD_TYPES):
    raise RuntimeError("every transaction kind needs exactly one processor")
