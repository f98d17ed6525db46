"""The state transition, one ``process_*`` function per transaction kind.

Each function reads like a spec: a column of single-condition checks, each
returning its result code, then the mutation. Nothing is staged before the
last check passes, so a rejected transaction changes nothing.

Policies worth knowing: a suspended merchant accepts no new payment but may
still refund, transfer and redeem what it holds; a refund gives back the
holder's own money, so the campaign's per-holder maximum does not apply to
it; one bank transfer reference may settle several payouts (a batch). The sender's
signature and sequence are checked by ``node.ledger.execute`` before these
run; these functions do not bump the sequence either. A payout ends settled
(paid) or returned (the bank's transfer was rejected; its units are back in
the merchant's balance), never both. A region's campaign is spent at a
commune's shop only while that commune consents (``consent_zones``) to the
region for the shop's zone; the shop's units are the region's (its escrow pays).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Final

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import BlockState
from node.protocol import limits
from node.protocol.crypto import Digest, Domain, PublicKey, verify
from node.protocol.genesis import VALIDATOR_ROLES
from node.protocol.statements import is_equivocation
from node.text.names import is_name

_CODE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


@dataclass(frozen=True, slots=True)
class TxContext:
    """What a transaction sees besides its payload: who signed it, its id, the block time."""

    sender: PublicKey
    tx_id: Digest
    time_ms: int
    height: int | None  # None where the caller does not know it (then height rules refuse)


# --- pure predicates ------------------------------------------------------------


def is_code(text: str) -> bool:
    return _CODE.fullmatch(text) is not None


def is_amount(cents: int, amount_max_cents: int) -> bool:
    return 0 < cents <= amount_max_cents


def is_in_category(category: str, prefixes: tuple[str, ...]) -> bool:
    return not prefixes or any(category.startswith(prefix) for prefix in prefixes)


def eligibility(campaign: r.Campaign, merchant: r.Merchant) -> Result:
    if not merchant.active:
        return Result.MERCHANT_SUSPENDED
    if merchant.zone not in campaign.zones:
        return Result.MERCHANT_NOT_ELIGIBLE
    if not is_in_category(merchant.category, campaign.categories):
        return Result.MERCHANT_NOT_ELIGIBLE
    return Result.OK


def consent_allows(consent: r.Consent | None, campaign: r.Campaign, merchant: r.Merchant) -> bool:
    """A shop registered by another issuer (a commune) than the campaign's (a region)
    takes the campaign only where that commune consents to the region, now:
    ``consent`` is the commune's consent to the campaign's issuer, if any."""
    if merchant.issuer == campaign.issuer:
        return True
    return consent is not None and merchant.zone in consent.zones


def is_consented(state: BlockState, campaign: r.Campaign, merchant: r.Merchant) -> bool:
    if merchant.issuer == campaign.issuer:  # the common case reads nothing more
        return True
    return consent_allows(state.consent(campaign.issuer, merchant.issuer), campaign, merchant)


def zone_check(state: BlockState, issuer_pk: PublicKey, issuer: r.Issuer, zone: str) -> Result:
    """A campaign's zone: the issuer's own, or a commune's zone consented to the issuer."""
    if zone in issuer.zones:
        return Result.OK
    owner = state.zone_owner(zone)
    if owner is None:
        return Result.INVALID_ZONE
    consent = state.consent(issuer_pk, owner.issuer)
    if consent is None or zone not in consent.zones:
        return Result.ZONE_NOT_CONSENTED
    return Result.OK


def reference_check(state: BlockState, reference: str) -> Result:
    """A bank reference must be given and never used before (fund and withdraw share them)."""
    if not reference.strip():
        return Result.INVALID_FIELD
    if state.counter(r.reference_key(reference)) != 0:
        return Result.DUPLICATE_REFERENCE
    return Result.OK


def has_row_for(holder: r.Holder, code: str) -> bool:
    """The holder has, or may open, a balance row for campaign ``code``."""
    return holder.balance(code) != 0 or len(holder.balances) < limits.BALANCE_ROWS_PER_ACCOUNT_MAX


def merchant_can_receive(merchant: r.Merchant, issuer: bytes, cents: int) -> Result:
    """Within the balance cap and the merchant's row limit."""
    if merchant.balance(issuer) + cents > limits.BALANCE_MAX_CENTS:
        return Result.LIMIT_EXCEEDED
    if merchant.balance(issuer) == 0 and len(merchant.balances) >= (
        limits.BALANCE_ROWS_PER_ACCOUNT_MAX
    ):
        return Result.LIMIT_EXCEEDED
    return Result.OK


# --- merchants --------------------------------------------------------------------


def process_register_merchant(state: BlockState, ctx: TxContext, p: t.RegisterMerchant) -> Result:
    issuer = state.issuer(ctx.sender)
    if issuer is None:
        return Result.NOT_AUTHORIZED
    if state.has_role(p.merchant) or state.holder(p.merchant) is not None:
        return Result.ACCOUNT_EXISTS
    if not is_name(p.name):
        return Result.INVALID_NAME
    if not is_code(p.category):
        return Result.INVALID_FIELD
    if p.zone not in issuer.zones:
        return Result.INVALID_ZONE
    merchant = r.Merchant(
        issuer=ctx.sender,
        name=p.name,
        category=p.category,
        zone=p.zone,
        payout_ref_hash=p.payout_ref_hash,
        auto_redeem=p.auto_redeem,
        active=True,
        sequence=0,
        balances=(),
    )
    state.store(r.merchant_key(p.merchant), merchant)
    return Result.OK


def process_update_merchant(state: BlockState, ctx: TxContext, p: t.UpdateMerchant) -> Result:
    merchant = state.merchant(p.merchant)
    if merchant is None:
        return Result.UNKNOWN_MERCHANT
    if ctx.sender not in (merchant.issuer, p.merchant):
        return Result.NOT_AUTHORIZED
    profile_changed = (p.name, p.category, p.zone) != (
        merchant.name,
        merchant.category,
        merchant.zone,
    )
    if ctx.sender == p.merchant and profile_changed:
        return Result.NOT_AUTHORIZED
    if not is_name(p.name):
        return Result.INVALID_NAME
    if not is_code(p.category):
        return Result.INVALID_FIELD
    issuer = state.issuer(merchant.issuer)
    if issuer is None or p.zone not in issuer.zones:
        return Result.INVALID_ZONE
    state.store(
        r.merchant_key(p.merchant),
        replace(
            merchant,
            name=p.name,
            category=p.category,
            zone=p.zone,
            payout_ref_hash=p.payout_ref_hash,
            auto_redeem=p.auto_redeem,
        ),
    )
    return Result.OK


def process_suspend_merchant(state: BlockState, ctx: TxContext, p: t.SuspendMerchant) -> Result:
    merchant = state.merchant(p.merchant)
    if merchant is None:
        return Result.UNKNOWN_MERCHANT
    if ctx.sender != merchant.issuer:
        return Result.NOT_AUTHORIZED
    state.store(r.merchant_key(p.merchant), replace(merchant, active=not p.suspended))
    return Result.OK


# --- campaigns ----------------------------------------------------------------------


def process_create_campaign(state: BlockState, ctx: TxContext, p: t.CreateCampaign) -> Result:
    issuer = state.issuer(ctx.sender)
    if issuer is None:
        return Result.NOT_AUTHORIZED
    if not is_code(p.campaign):
        return Result.INVALID_FIELD
    if not is_name(p.name):
        return Result.INVALID_NAME
    if state.campaign(p.campaign) is not None:
        return Result.CAMPAIGN_EXISTS
    if len(set(p.zones)) != len(p.zones) or len(set(p.categories)) != len(p.categories):
        return Result.DUPLICATE_ENTRY
    for zone in p.zones:
        zone_ok = zone_check(state, ctx.sender, issuer, zone)
        if zone_ok != Result.OK:
            return zone_ok
    if len(p.categories) > limits.CATEGORIES_PER_CAMPAIGN_MAX:
        return Result.LIMIT_EXCEEDED
    if not all(is_code(category) for category in p.categories):
        return Result.INVALID_FIELD
    if p.valid_from_ms >= p.valid_until_ms:
        return Result.INVALID_FIELD
    if not is_amount(p.max_per_holder_cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    campaign = r.Campaign(
        issuer=ctx.sender,
        name=p.name,
        zones=tuple(sorted(p.zones)) if p.zones else issuer.zones,
        categories=tuple(sorted(p.categories)),
        valid_from_ms=p.valid_from_ms,
        valid_until_ms=p.valid_until_ms,
        max_per_holder_cents=p.max_per_holder_cents,
        closed=False,
        budget_cents=0,
        outstanding_cents=0,
        funded_cents=0,
        allocated_cents=0,
        spent_cents=0,
        refunded_cents=0,
        returned_cents=0,
        withdrawn_cents=0,
    )
    state.store(r.campaign_key(p.campaign), campaign)
    return Result.OK


def _bank_budget_move(
    state: BlockState, ctx: TxContext, code: str, cents: int, reference: str
) -> r.Campaign | Result:
    """What fund and withdraw check first: the bank sends, a sane amount, a fresh
    reference, a known campaign (in this order: the codes are protocol)."""
    if ctx.sender != state.params().bank:
        return Result.NOT_AUTHORIZED
    if not is_amount(cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    checked = reference_check(state, reference)
    if checked != Result.OK:
        return checked
    campaign = state.campaign(code)
    return Result.UNKNOWN_CAMPAIGN if campaign is None else campaign


def process_fund(state: BlockState, ctx: TxContext, p: t.Fund) -> Result:
    campaign = _bank_budget_move(state, ctx, p.campaign, p.amount_cents, p.bank_reference)
    if isinstance(campaign, Result):
        return campaign
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    issuer = state.issuer(campaign.issuer)
    if issuer is None:
        raise RuntimeError("campaign without issuer")
    if issuer.escrow_cents + p.amount_cents > limits.BALANCE_MAX_CENTS:
        return Result.LIMIT_EXCEEDED
    state.store(r.reference_key(p.bank_reference), r.Counter(p.amount_cents))
    state.store(
        r.campaign_key(p.campaign),
        replace(
            campaign,
            budget_cents=campaign.budget_cents + p.amount_cents,
            funded_cents=campaign.funded_cents + p.amount_cents,
        ),
    )
    state.store(
        r.issuer_key(campaign.issuer),
        replace(issuer, escrow_cents=issuer.escrow_cents + p.amount_cents),
    )
    return Result.OK


def process_allocate(state: BlockState, ctx: TxContext, p: t.Allocate) -> Result:
    issuer = state.issuer(ctx.sender)
    if issuer is None:
        return Result.NOT_AUTHORIZED
    campaign = state.campaign(p.campaign)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.issuer != ctx.sender:
        return Result.NOT_AUTHORIZED
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    if ctx.time_ms >= campaign.valid_until_ms:
        return Result.CAMPAIGN_NOT_ACTIVE
    if not p.allocations:
        return Result.INVALID_FIELD
    amount_max = state.params().amount_max_cents
    if any(not is_amount(a.amount_cents, amount_max) for a in p.allocations):
        return Result.BAD_AMOUNT
    if len({a.holder for a in p.allocations}) != len(p.allocations):
        return Result.DUPLICATE_ENTRY
    if any(a.zone not in issuer.zones and a.zone not in campaign.zones for a in p.allocations):
        return Result.INVALID_ZONE
    total = sum(a.amount_cents for a in p.allocations)
    if total > campaign.budget_cents:
        return Result.INSUFFICIENT_BUDGET
    for allocation in p.allocations:
        if state.has_role(allocation.holder):
            return Result.NOT_A_HOLDER
        holder = state.holder(allocation.holder) or r.EMPTY_HOLDER
        result = _receive_check(holder, campaign, p.campaign, allocation.amount_cents)
        if result != Result.OK:
            return result
    for allocation in p.allocations:
        _credit_holder(state, allocation.holder, p.campaign, allocation.amount_cents)
    state.store(
        r.campaign_key(p.campaign),
        replace(
            campaign,
            budget_cents=campaign.budget_cents - total,
            outstanding_cents=campaign.outstanding_cents + total,
            allocated_cents=campaign.allocated_cents + total,
        ),
    )
    return Result.OK


def process_close_campaign(state: BlockState, ctx: TxContext, p: t.CloseCampaign) -> Result:
    campaign = state.campaign(p.campaign)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.issuer != ctx.sender:
        return Result.NOT_AUTHORIZED
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    if ctx.time_ms < campaign.valid_until_ms:
        return Result.CAMPAIGN_STILL_RUNNING
    returned = 0
    for key in state.keys_with_prefix(r.campaign_holders_prefix(p.campaign)):
        pk = key[-32:]
        holder = state.holder(pk) or r.EMPTY_HOLDER
        returned += holder.balance(p.campaign)
        state.store(r.holder_key(pk), holder.with_balance(p.campaign, 0))
        state.store(key, None)
    if returned != campaign.outstanding_cents:
        raise RuntimeError("campaign outstanding total does not match holder balances")
    state.store(
        r.campaign_key(p.campaign),
        replace(
            campaign,
            closed=True,
            outstanding_cents=0,
            budget_cents=campaign.budget_cents + returned,
            returned_cents=campaign.returned_cents + returned,
        ),
    )
    return Result.OK


def process_withdraw(state: BlockState, ctx: TxContext, p: t.Withdraw) -> Result:
    campaign = _bank_budget_move(state, ctx, p.campaign, p.amount_cents, p.bank_reference)
    if isinstance(campaign, Result):
        return campaign
    if p.amount_cents > campaign.budget_cents:
        return Result.INSUFFICIENT_BUDGET
    issuer = state.issuer(campaign.issuer)
    if issuer is None:
        raise RuntimeError("campaign without issuer")
    state.store(r.reference_key(p.bank_reference), r.Counter(p.amount_cents))
    state.store(
        r.campaign_key(p.campaign),
        replace(
            campaign,
            budget_cents=campaign.budget_cents - p.amount_cents,
            withdrawn_cents=campaign.withdrawn_cents + p.amount_cents,
        ),
    )
    state.store(
        r.issuer_key(campaign.issuer),
        replace(issuer, escrow_cents=issuer.escrow_cents - p.amount_cents),
    )
    return Result.OK


# --- holders ---------------------------------------------------------------------------


def process_pay(state: BlockState, ctx: TxContext, p: t.Pay) -> Result:
    return _pay(state, ctx, ctx.sender, p.campaign, p.merchant, p.amount_cents)


def process_pay_authorized(state: BlockState, ctx: TxContext, p: t.PayAuthorized) -> Result:
    auth = p.authorization
    if auth.merchant and auth.merchant != ctx.sender:
        return Result.BAD_AUTHORIZATION
    if state.merchant(ctx.sender) is None:
        return Result.NOT_AUTHORIZED
    if ctx.time_ms > auth.expires_ms:
        return Result.AUTHORIZATION_EXPIRED
    if p.amount_cents > auth.max_cents:
        return Result.AUTHORIZATION_EXCEEDED
    if state.counter(r.authorization_key(auth.authorization_id)) != 0:
        return Result.AUTHORIZATION_USED
    if not auth.verify(state.params().chain_id, p.holder_signature):
        return Result.BAD_AUTHORIZATION
    result = _pay(state, ctx, auth.holder, auth.campaign, ctx.sender, p.amount_cents)
    if result == Result.OK:
        state.store(r.authorization_key(auth.authorization_id), r.Counter(max(ctx.time_ms, 1)))
    return result


def _pay(
    state: BlockState,
    ctx: TxContext,
    payer: PublicKey,
    code: str,
    merchant_pk: PublicKey,
    cents: int,
) -> Result:
    """Holder to merchant; with auto-redeem the payment opens a payout named by the tx id."""
    if not is_amount(cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    holder = state.holder(payer)
    if holder is None:
        return Result.NOT_AUTHORIZED if state.has_role(payer) else Result.INSUFFICIENT_FUNDS
    campaign = state.campaign(code)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    if not campaign.is_active(ctx.time_ms):
        return Result.CAMPAIGN_NOT_ACTIVE
    merchant = state.merchant(merchant_pk)
    if merchant is None:
        return Result.UNKNOWN_MERCHANT
    eligible = eligibility(campaign, merchant)
    if eligible != Result.OK:
        return eligible
    if not is_consented(state, campaign, merchant):
        return Result.ZONE_NOT_CONSENTED
    balance = holder.balance(code)
    if cents > balance:
        return Result.INSUFFICIENT_FUNDS
    state.store(r.holder_key(payer), holder.with_balance(code, balance - cents))
    spent_key = r.spent_at_key(payer, merchant_pk, code)
    state.store(spent_key, r.Counter(state.counter(spent_key) + cents))
    state.store(r.campaign_key(code), campaign.after_payment(cents))
    if merchant.auto_redeem:
        _open_payout(state, ctx.tx_id, merchant_pk, campaign.issuer, cents, ctx.time_ms)
    else:
        state.store(
            r.merchant_key(merchant_pk),
            merchant.with_balance(campaign.issuer, merchant.balance(campaign.issuer) + cents),
        )
    return Result.OK


def process_sweep(state: BlockState, ctx: TxContext, p: t.Sweep) -> Result:
    return _move_holder_balance(state, p.campaign, ctx.sender, p.to)


def _move_holder_balance(
    state: BlockState, code: str, source: PublicKey, target: PublicKey
) -> Result:
    if source == target:
        return Result.SELF_TRANSFER
    if state.has_role(target):
        return Result.NOT_A_HOLDER
    campaign = state.campaign(code)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    holder = state.holder(source)
    cents = 0 if holder is None else holder.balance(code)
    if holder is None or cents == 0:
        return Result.NOTHING_TO_MOVE
    receiver = state.holder(target) or r.EMPTY_HOLDER
    result = _receive_check(receiver, campaign, code, cents)
    if result != Result.OK:
        return result
    state.store(r.holder_key(source), holder.with_balance(code, 0))
    _credit_holder(state, target, code, cents)
    return Result.OK


def _receive_check(holder: r.Holder, campaign: r.Campaign, code: str, cents: int) -> Result:
    after = holder.balance(code) + cents
    if after > campaign.max_per_holder_cents:
        return Result.HOLDER_CAP_EXCEEDED
    return Result.OK if has_row_for(holder, code) else Result.LIMIT_EXCEEDED


def _credit_holder(state: BlockState, pk: PublicKey, code: str, cents: int) -> None:
    current = state.holder(pk) or r.EMPTY_HOLDER
    state.store(r.holder_key(pk), current.with_balance(code, current.balance(code) + cents))
    state.store(r.campaign_holder_key(code, pk), r.Counter(1))


# --- issuers on holders' behalf -----------------------------------------------------------


def process_reissue(state: BlockState, ctx: TxContext, p: t.Reissue) -> Result:
    campaign = state.campaign(p.campaign)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.issuer != ctx.sender:
        return Result.NOT_AUTHORIZED
    return _move_holder_balance(state, p.campaign, p.lost, p.replacement)


# --- merchants' money -----------------------------------------------------------------------


def process_refund(state: BlockState, ctx: TxContext, p: t.Refund) -> Result:
    merchant = state.merchant(ctx.sender)
    if merchant is None:
        return Result.NOT_AUTHORIZED
    if not is_amount(p.amount_cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    campaign = state.campaign(p.campaign)
    if campaign is None:
        return Result.UNKNOWN_CAMPAIGN
    if campaign.closed:
        return Result.CAMPAIGN_CLOSED
    spent_key = r.spent_at_key(p.holder, ctx.sender, p.campaign)
    paid = state.counter(spent_key)
    if p.amount_cents > paid:
        return Result.REFUND_EXCEEDS_PAYMENTS
    available = merchant.balance(campaign.issuer)
    if p.amount_cents > available:
        return Result.INSUFFICIENT_FUNDS
    if not has_row_for(state.holder(p.holder) or r.EMPTY_HOLDER, p.campaign):
        return Result.LIMIT_EXCEEDED
    state.store(
        r.merchant_key(ctx.sender),
        merchant.with_balance(campaign.issuer, available - p.amount_cents),
    )
    state.store(spent_key, None if paid == p.amount_cents else r.Counter(paid - p.amount_cents))
    _credit_holder(state, p.holder, p.campaign, p.amount_cents)
    state.store(
        r.campaign_key(p.campaign),
        replace(
            campaign,
            outstanding_cents=campaign.outstanding_cents + p.amount_cents,
            refunded_cents=campaign.refunded_cents + p.amount_cents,
        ),
    )
    return Result.OK


def process_transfer(state: BlockState, ctx: TxContext, p: t.Transfer) -> Result:
    merchant = state.merchant(ctx.sender)
    if merchant is None:
        return Result.NOT_AUTHORIZED
    if not is_amount(p.amount_cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    if p.to == ctx.sender:
        return Result.SELF_TRANSFER
    supplier = state.merchant(p.to)
    if supplier is None:
        return Result.UNKNOWN_MERCHANT
    if not supplier.active:
        return Result.MERCHANT_SUSPENDED
    available = merchant.balance(p.issuer)
    if p.amount_cents > available:
        return Result.INSUFFICIENT_FUNDS
    receivable = merchant_can_receive(supplier, p.issuer, p.amount_cents)
    if receivable != Result.OK:
        return receivable
    received = supplier.balance(p.issuer) + p.amount_cents
    state.store(
        r.merchant_key(ctx.sender), merchant.with_balance(p.issuer, available - p.amount_cents)
    )
    supplier = state.merchant(p.to) or supplier
    state.store(r.merchant_key(p.to), supplier.with_balance(p.issuer, received))
    return Result.OK


def process_redeem(state: BlockState, ctx: TxContext, p: t.Redeem) -> Result:
    merchant = state.merchant(ctx.sender)
    if merchant is None:
        return Result.NOT_AUTHORIZED
    if not is_amount(p.amount_cents, state.params().amount_max_cents):
        return Result.BAD_AMOUNT
    available = merchant.balance(p.issuer)
    if p.amount_cents > available:
        return Result.INSUFFICIENT_FUNDS
    state.store(
        r.merchant_key(ctx.sender), merchant.with_balance(p.issuer, available - p.amount_cents)
    )
    _open_payout(state, ctx.tx_id, ctx.sender, p.issuer, p.amount_cents, ctx.time_ms)
    return Result.OK


def _open_payout(
    state: BlockState,
    payout_id: Digest,
    merchant: PublicKey,
    issuer_pk: PublicKey,
    cents: int,
    time_ms: int,
) -> None:
    issuer = state.issuer(issuer_pk)
    if issuer is None:
        raise RuntimeError("units of an unknown issuer")
    payout = r.Payout(merchant, issuer_pk, cents, time_ms, "", 0, "")
    state.store(r.payout_key(payout_id), payout)
    state.store(r.issuer_key(issuer_pk), issuer.after_redeem(cents))


# --- the bank ------------------------------------------------------------------------------


def process_settle(state: BlockState, ctx: TxContext, p: t.Settle) -> Result:
    if ctx.sender != state.params().bank:
        return Result.NOT_AUTHORIZED
    if not p.settlements:
        return Result.INVALID_FIELD
    if len({s.payout_id for s in p.settlements}) != len(p.settlements):
        return Result.DUPLICATE_ENTRY
    payouts: list[tuple[t.Settlement, r.Payout]] = []
    for settlement in p.settlements:
        if not settlement.bank_reference.strip():
            return Result.INVALID_FIELD
        payout = state.payout(settlement.payout_id)
        if payout is None:
            return Result.UNKNOWN_PAYOUT
        if payout.settled:
            return Result.PAYOUT_ALREADY_SETTLED
        if payout.returned:
            return Result.PAYOUT_RETURNED
        payouts.append((settlement, payout))
    for settlement, payout in payouts:
        state.store(
            r.payout_key(settlement.payout_id),
            replace(payout, bank_reference=settlement.bank_reference, settled_ms=ctx.time_ms),
        )
        issuer = state.issuer(payout.issuer)
        if issuer is None:
            raise RuntimeError("payout of an unknown issuer")
        state.store(
            r.issuer_key(payout.issuer),
            replace(
                issuer,
                escrow_cents=issuer.escrow_cents - payout.amount_cents,
                pending_cents=issuer.pending_cents - payout.amount_cents,
                settled_cents=issuer.settled_cents + payout.amount_cents,
            ),
        )
    return Result.OK


def process_return_payout(state: BlockState, ctx: TxContext, p: t.ReturnPayout) -> Result:
    """A transfer the bank could not make: the payout's units go back to the merchant."""
    if ctx.sender != state.params().bank:
        return Result.NOT_AUTHORIZED
    if not is_code(p.reason):
        return Result.INVALID_FIELD
    if not p.bank_reference.strip():
        return Result.INVALID_FIELD
    payout = state.payout(p.payout_id)
    if payout is None:
        return Result.UNKNOWN_PAYOUT
    if payout.settled:
        return Result.PAYOUT_ALREADY_SETTLED
    if payout.returned:
        return Result.PAYOUT_RETURNED
    merchant = state.merchant(payout.merchant)
    if merchant is None:
        raise RuntimeError("payout of an unknown merchant")
    receivable = merchant_can_receive(merchant, payout.issuer, payout.amount_cents)
    if receivable != Result.OK:
        return receivable
    issuer = state.issuer(payout.issuer)
    if issuer is None:
        raise RuntimeError("payout of an unknown issuer")
    state.store(r.payout_key(p.payout_id), replace(payout, returned_reason=p.reason))
    received = merchant.balance(payout.issuer) + payout.amount_cents
    state.store(r.merchant_key(payout.merchant), merchant.with_balance(payout.issuer, received))
    state.store(
        r.issuer_key(payout.issuer),
        replace(
            issuer,
            pending_cents=issuer.pending_cents - payout.amount_cents,
            redeemed_cents=issuer.redeemed_cents - payout.amount_cents,
        ),
    )
    return Result.OK


# --- regions ----------------------------------------------------------------------------


def process_consent_zones(state: BlockState, ctx: TxContext, p: t.ConsentZones) -> Result:
    """A commune opens (or, with no zones, closes) its shops to a region's campaigns."""
    issuer = state.issuer(ctx.sender)
    if issuer is None:
        return Result.NOT_AUTHORIZED
    if p.region == ctx.sender:
        return Result.SELF_TRANSFER
    if state.issuer(p.region) is None:
        return Result.UNKNOWN_ISSUER
    if len(set(p.zones)) != len(p.zones):
        return Result.DUPLICATE_ENTRY
    if any(zone not in issuer.zones for zone in p.zones):
        return Result.INVALID_ZONE
    key = r.consent_key(p.region, ctx.sender)
    state.store(key, r.Consent(tuple(sorted(p.zones))) if p.zones else None)
    return Result.OK


# --- validators: evidence and governance -----------------------------------------------


def process_evidence(state: BlockState, ctx: TxContext, p: t.Evidence) -> Result:
    if ctx.height is None:
        return Result.INVALID_HEIGHT
    if not _is_validator(state, ctx.sender, ctx.height):
        return Result.NOT_AUTHORIZED
    chain_id = state.params().chain_id
    first = is_equivocation(chain_id, p.first, p.first_signature, p.second, p.second_signature)
    if first is None:
        return Result.EVIDENCE_INVALID
    if first.height > ctx.height:
        return Result.INVALID_HEIGHT
    if ctx.height - first.height > limits.EVIDENCE_AGE_MAX_BLOCKS:
        return Result.EVIDENCE_TOO_OLD
    if not any(v.public_key == first.signer for v in validators_in_era(state, first.height)):
        return Result.EVIDENCE_INVALID
    key = r.evidence_key(first.signer, first.height, first.round, int(first.step))
    if state.counter(key) != 0:
        return Result.EVIDENCE_KNOWN
    state.store(key, r.Counter(ctx.height))
    return Result.OK


def process_admit_issuer(state: BlockState, ctx: TxContext, p: t.AdmitIssuer) -> Result:
    if ctx.height is None:
        return Result.INVALID_HEIGHT
    if not _is_validator(state, ctx.sender, ctx.height):
        return Result.NOT_AUTHORIZED
    if not is_name(p.name) or not is_name(p.territory):
        return Result.INVALID_NAME
    if not p.zones or len(p.zones) > limits.ZONES_PER_ISSUER_MAX:
        return Result.INVALID_FIELD
    if not all(is_code(zone) for zone in p.zones):
        return Result.INVALID_FIELD
    if len(set(p.zones)) != len(p.zones):
        return Result.DUPLICATE_ENTRY
    if state.has_role(p.issuer) or state.holder(p.issuer) is not None:
        return Result.ACCOUNT_EXISTS
    if any(state.zone_owner(zone) is not None for zone in p.zones):
        return Result.INVALID_ZONE
    approved = _approved(state, ctx.height, p.approval_body(), p.approvals)
    if approved != Result.OK:
        return approved
    zones = tuple(sorted(p.zones))
    issuer = r.Issuer(p.name, p.territory, zones, 0, 0, 0, 0, 0)
    state.store(r.issuer_key(p.issuer), issuer)
    for zone in zones:
        state.store(r.zone_key(zone), r.ZoneOwner(p.issuer))
    return Result.OK


def process_change_validators(state: BlockState, ctx: TxContext, p: t.ChangeValidators) -> Result:
    if ctx.height is None:
        return Result.INVALID_HEIGHT
    if not _is_validator(state, ctx.sender, ctx.height):
        return Result.NOT_AUTHORIZED
    if not is_validator_set(p.validators):
        return Result.INVALID_VALIDATOR_SET
    delay = p.effective_height - ctx.height
    if not limits.GOVERNANCE_DELAY_MIN_BLOCKS <= delay <= limits.GOVERNANCE_DELAY_MAX_BLOCKS:
        return Result.INVALID_HEIGHT
    record = state.validators()
    if record.pending_height:
        return Result.VALIDATOR_CHANGE_PENDING
    approved = _approved(state, ctx.height, p.approval_body(), p.approvals)
    if approved != Result.OK:
        return approved
    pending = tuple(r.Validator(v.public_key, v.power, v.name, v.role) for v in p.validators)
    state.store(r.validators_key(), r.Validators(record.current, pending, p.effective_height))
    return Result.OK


def process_schedule_upgrade(state: BlockState, ctx: TxContext, p: t.ScheduleUpgrade) -> Result:
    if ctx.height is None:
        return Result.INVALID_HEIGHT
    if not _is_validator(state, ctx.sender, ctx.height):
        return Result.NOT_AUTHORIZED
    if not is_code(p.protocol) or not is_code(p.software):
        return Result.INVALID_FIELD
    delay = p.height - ctx.height
    if not limits.GOVERNANCE_DELAY_MIN_BLOCKS <= delay <= limits.GOVERNANCE_DELAY_MAX_BLOCKS:
        return Result.INVALID_HEIGHT
    scheduled = upgrade(state)
    if scheduled is not None and not scheduled.in_force(ctx.height):
        return Result.UPGRADE_PENDING
    approved = _approved(state, ctx.height, p.approval_body(), p.approvals)
    if approved != Result.OK:
        return approved
    state.store(r.upgrade_key(), r.Upgrade(p.protocol, p.software, p.height))
    return Result.OK


def upgrade(state: BlockState) -> r.Upgrade | None:
    """The last protocol upgrade governance scheduled (pending or in force), if any."""
    return state.load(r.upgrade_key(), r.Upgrade.decode)


def is_validator_set(entries: tuple[t.ValidatorEntry, ...]) -> bool:
    if not 1 <= len(entries) <= limits.VALIDATORS_MAX:
        return False
    if len({v.public_key for v in entries}) != len(entries):
        return False
    return all(
        1 <= v.power <= limits.VALIDATOR_POWER_MAX and is_name(v.name) and v.role in VALIDATOR_ROLES
        for v in entries
    )


def begin_block(state: BlockState, height: int) -> None:
    """What a block does before its transactions: a scheduled validator change starts."""
    record = state.validators()
    if record.pending_height and record.pending_height <= height:
        state.store(r.validators_key(), r.Validators(record.pending, (), 0))
        state.store(r.validator_history_key(height), r.ValidatorEra(record.pending))


def validators_in_era(state: BlockState, height: int) -> tuple[r.Validator, ...]:
    """The validator set that was in force at a past (or the current) ``height``."""
    first_heights = [
        int.from_bytes(key[1:], "big")
        for key in state.keys_with_prefix(r.validator_history_prefix())
    ]
    eligible = [h for h in first_heights if h <= height]
    if not eligible:
        return ()
    era = state.load(r.validator_history_key(max(eligible)), r.ValidatorEra.decode)
    return () if era is None else era.validators


def _is_validator(state: BlockState, key: bytes, height: int) -> bool:
    return any(v.public_key == key for v in state.validators().at(height))


def _approved(
    state: BlockState, height: int, body: bytes, approvals: tuple[t.Approval, ...]
) -> Result:
    """More than 2/3 of the voting power in force at ``height`` signed ``body``."""
    validators = {v.public_key: v.power for v in state.validators().at(height)}
    if len({a.validator for a in approvals}) != len(approvals):
        return Result.DUPLICATE_ENTRY
    chain_id = state.params().chain_id
    power = 0
    for approval in approvals:
        if approval.validator not in validators:
            return Result.INSUFFICIENT_APPROVALS
        if not verify(Domain.GOVERNANCE, chain_id, body, approval.validator, approval.signature):
            return Result.INSUFFICIENT_APPROVALS
        power += validators[approval.validator]
    if 3 * power <= 2 * sum(validators.values()):
        return Result.INSUFFICIENT_APPROVALS
    return Result.OK
