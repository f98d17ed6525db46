"""Ledger records and transactions as API models (presentation only)."""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import assert_never

from node.api import models as m
from node.api.access import Role, Viewer
from node.api.spend import accepts  # the one definition of "accepted"
from node.consensus.types import Block, Certificate, Header
from node.ledger import parties
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.state import BlockState, View
from node.text import fmt


def present(value: object) -> object:
    """Bytes as hex, tuples as lists, dataclasses as objects."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (tuple, list)):
        return [present(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: present(getattr(value, f.name)) for f in fields(value)}
    return value


def record_fields(record: object) -> dict[str, object]:
    shown = present(record)
    return shown if isinstance(shown, dict) else {}


# --- accounts ----------------------------------------------------------------------------


def account(view: View, key: bytes) -> m.Account:
    if (signs_for := parties.signs_for(key, view.get)) is not None:
        found = account(view, signs_for)
        return replace(found, key=key.hex(), signs_for=signs_for.hex())
    hexkey = key.hex()
    if (raw := view.get(r.merchant_key(key))) is not None:
        merchant = r.Merchant.decode(raw)
        return m.Account(
            key=hexkey,
            role="merchant",
            sequence=merchant.sequence,
            name=merchant.name,
            balances=[m.Balance(cents=n, issuer=i.hex()) for i, n in merchant.balances],
            merchant=m.MerchantInfo(
                issuer=merchant.issuer.hex(),
                name=merchant.name,
                category=merchant.category,
                zone=merchant.zone,
                auto_redeem=merchant.auto_redeem,
                active=merchant.active,
                address=shop_address(merchant),
            ),
        )
    if (raw := view.get(r.issuer_key(key))) is not None:
        issuer = r.Issuer.decode(raw)
        return m.Account(
            key=hexkey,
            role="issuer",
            sequence=issuer.sequence,
            name=issuer.name,
            balances=[],
            issuer=m.IssuerInfo(
                name=issuer.name,
                territory=issuer.territory,
                zones=list(issuer.zones),
                escrow_cents=issuer.escrow_cents,
                pending_cents=issuer.pending_cents,
                redeemed_cents=issuer.redeemed_cents,
                settled_cents=issuer.settled_cents,
            ),
        )
    if (raw := view.get(r.bank_key(key))) is not None:
        bank = r.Bank.decode(raw)
        return m.Account(hexkey, "bank", bank.sequence, [], name=bank.name)
    if (raw := view.get(r.auditor_key(key))) is not None:
        return m.Account(hexkey, "auditor", 0, [], name=r.Auditor.decode(raw).name)
    raw = view.get(r.holder_key(key))
    holder = r.EMPTY_HOLDER if raw is None else r.Holder.decode(raw)
    return m.Account(
        key=hexkey,
        role="holder",
        sequence=holder.sequence,
        balances=[m.Balance(cents=n, campaign=c) for c, n in holder.balances],
        node_sequence=_node_sequence(view, key),
    )


def _node_sequence(view: View, key: bytes) -> int | None:
    """A node key's next governance or evidence sequence: for a validator, or a key that
    sent such transactions while it was one (None: neither)."""
    counter = view.get(r.node_key(key))
    if counter is not None:
        return r.Counter.decode(counter).value
    raw = view.get(r.validators_key())
    record = None if raw is None else r.Validators.decode(raw)
    if record is not None and any(v.public_key == key for v in (*record.current, *record.pending)):
        return 0
    return None


# --- campaigns, merchants, payouts ------------------------------------------------------------


def campaign(code: str, c: r.Campaign, now_ms: int) -> m.Campaign:
    return m.Campaign(
        code=code,
        issuer=c.issuer.hex(),
        name=c.name,
        zones=list(c.zones),
        categories=list(c.categories),
        valid_from_ms=c.valid_from_ms,
        valid_until_ms=c.valid_until_ms,
        max_per_holder_cents=c.max_per_holder_cents,
        closed=c.closed,
        active=c.is_active(now_ms),
        budget_cents=c.budget_cents,
        outstanding_cents=c.outstanding_cents,
        funded_cents=c.funded_cents,
        allocated_cents=c.allocated_cents,
        spent_cents=c.spent_cents,
        refunded_cents=c.refunded_cents,
        returned_cents=c.returned_cents,
        withdrawn_cents=c.withdrawn_cents,
        last_valid_day=fmt.last_valid_day(c.valid_until_ms).isoformat(),
    )


def directory_entry(
    view: View,
    key: bytes,
    merchant: r.Merchant,
    campaigns: list[tuple[str, r.Campaign]],
    now_ms: int,
) -> m.DirectoryEntry:
    accepted = [code for code, c in campaigns if c.is_active(now_ms) and accepts(view, c, merchant)]
    return m.DirectoryEntry(
        key=key.hex(),
        name=merchant.name,
        category=merchant.category,
        zone=merchant.zone,
        issuer=merchant.issuer.hex(),
        active=merchant.active,
        campaigns=accepted,
        address=shop_address(merchant),
    )


def shop_address(merchant: r.Merchant) -> m.ShopAddress | None:
    """The merchant's registered address for the API (None: none registered)."""
    where = merchant.address
    if where.is_empty():
        return None
    return m.ShopAddress(street=where.street, postcode=where.postcode, town=where.town)


def payout(payout_id: bytes, p: r.Payout) -> m.Payout:
    return m.Payout(
        payout_id=payout_id.hex(),
        merchant=p.merchant.hex(),
        issuer=p.issuer.hex(),
        amount_cents=p.amount_cents,
        created_ms=p.created_ms,
        settled=p.settled,
        bank_reference=p.bank_reference if p.settled else None,
        settled_ms=p.settled_ms if p.settled else None,
        returned_reason=p.returned_reason if p.returned else None,
    )


def may_read_payout(viewer: Viewer, p: r.Payout) -> bool:
    if viewer.role in (Role.AUDITOR, Role.BANK):
        return True
    return parties.reads_payout(viewer.key, p)


def party_name(view: View, key: bytes) -> str | None:
    """The name an account is known by (a merchant's, a commune's, the bank's, an
    auditor's), or None for a holder or voucher (they have keys only)."""
    for record_key, decode in (
        (r.merchant_key, r.Merchant.decode),
        (r.issuer_key, r.Issuer.decode),
        (r.bank_key, r.Bank.decode),
        (r.auditor_key, r.Auditor.decode),
    ):
        raw = view.get(record_key(key))
        if raw is not None:
            return decode(raw).name
    return None


# --- refusals -------------------------------------------------------------------------------


def shortfall(state: BlockState, signed: t.SignedTx) -> tuple[str, int] | None:
    """Why a transaction was refused INSUFFICIENT_FUNDS, for people: how much its sender
    has left of what it spends (after the transactions already admitted) and, for a shop
    whose payments turn into payouts at once (auto-redeem), that this is why it holds
    nothing. With the cents left; None when the kind does not spend a balance."""
    payload, sender = signed.tx.payload, signed.tx.sender
    if isinstance(payload, (t.Pay, t.PayAuthorized)):
        holder, code = (
            (sender, payload.campaign)
            if isinstance(payload, t.Pay)
            else (payload.authorization.holder, payload.authorization.campaign)
        )
        found = state.holder(holder)
        left = 0 if found is None else found.balance(code)
        return f"the balance is too low: {fmt.money(left)} left on {code}", left
    if isinstance(payload, (t.Refund, t.Transfer, t.Redeem)):
        merchant = state.merchant(sender)
        if merchant is None:
            return None
        if isinstance(payload, t.Refund):
            campaign = state.campaign(payload.campaign)
            issuer = None if campaign is None else campaign.issuer
        else:
            issuer = payload.issuer
        left = 0 if issuer is None else merchant.balance(issuer)
        detail = f"the balance is too low: {fmt.money(left)} left in units of this commune"
        if merchant.auto_redeem:
            detail += (
                " — this shop has auto-redeem on: every payment it receives becomes a payout "
                "to its bank at once, so it keeps no units to refund or pay a supplier with; "
                "turn it off (relance-wallet merchant auto-redeem off) to keep them"
            )
        return detail, left
    return None


# --- blocks ---------------------------------------------------------------------------------


def header(h: Header, txs: int) -> m.BlockHeader:
    return m.BlockHeader(
        height=h.height,
        hash=h.hash().hex(),
        time_ms=h.time_ms,
        previous_block_hash=h.previous_block_hash.hex(),
        tx_root=h.tx_root.hex(),
        state_root=h.state_root.hex(),
        validators_hash=h.validators_hash.hex(),
        next_validators_hash=h.next_validators_hash.hex(),
        proposer=h.proposer.hex(),
        txs=txs,
    )


def certificate(c: Certificate) -> m.CertificateView:
    return m.CertificateView(
        height=c.height,
        round=c.round,
        block_hash=c.block_hash.hex(),
        signatures=[m.Signature(k.hex(), s.hex()) for k, s in c.signatures],
    )


def block(b: Block, c: Certificate) -> m.Block:
    h = header(b.header, len(b.txs))
    return m.Block(
        height=h.height,
        hash=h.hash,
        time_ms=h.time_ms,
        previous_block_hash=h.previous_block_hash,
        tx_root=h.tx_root,
        state_root=h.state_root,
        validators_hash=h.validators_hash,
        next_validators_hash=h.next_validators_hash,
        proposer=h.proposer,
        txs=h.txs,
        certificate=certificate(c),
        header_bytes=b.header.encode().hex(),
        certificate_bytes=c.encode().hex(),
    )


# --- transactions -------------------------------------------------------------------------


def visible_items(signed: t.SignedTx, viewer: Viewer | None, view: View) -> list[int] | None:
    """The items of a list transaction ``viewer`` may see (``node.ledger.parties``): the
    one rule for the transaction view and its proof."""
    return parties.visible_items(
        signed,
        None if viewer is None else viewer.key,
        viewer is not None and viewer.role in (Role.AUDITOR, Role.BANK),
        lambda payout_id: _payout(view, payout_id),
    )


def _payout(view: View, payout_id: bytes) -> r.Payout | None:
    raw = view.get(r.payout_key(payout_id))
    return None if raw is None else r.Payout.decode(raw)


@dataclass(slots=True)
class _Shown:
    """What a transaction's line names besides its fields: campaign, holder, shop, amount."""

    campaign: str | None
    amount: int | None
    holder: bytes | None = None
    merchant: bytes | None = None


def transaction(
    signed: t.SignedTx,
    height: int,
    index: int,
    time_ms: int,
    viewer: Viewer | None,
    view: View,
) -> m.Transaction:
    """``signed`` as ``viewer`` may see it (lists of other people's entries are cut)."""
    tx, p = signed.tx, signed.tx.payload
    lines = record_fields(p)
    shown = _shown(signed, visible_items(signed, viewer, view), view, lines)
    return m.Transaction(
        tx_id=signed.tx_id.hex(),
        height=height,
        index=index,
        time_ms=time_ms,
        kind=p.KIND.name.lower(),
        sender=tx.sender.hex(),
        sequence=tx.sequence,
        fields=lines,
        campaign=shown.campaign,
        holder=None if shown.holder is None else shown.holder.hex(),
        merchant=None if shown.merchant is None else shown.merchant.hex(),
        amount_cents=shown.amount,
        memo=getattr(p, "memo", None),
    )


def _shown(
    signed: t.SignedTx, seen: list[int] | None, view: View, lines: dict[str, object]
) -> _Shown:
    """Per kind: who the line names and its amount; a list cut to ``seen`` in ``lines``."""
    tx, p = signed.tx, signed.tx.payload
    out = _Shown(getattr(p, "campaign", None), getattr(p, "amount_cents", None))
    match p:
        case t.Pay():
            out.holder, out.merchant = tx.sender, p.merchant
        case t.PayAuthorized():
            out.holder, out.merchant = p.authorization.holder, tx.sender
            out.campaign = p.authorization.campaign
        case t.Refund():
            out.holder, out.merchant = p.holder, tx.sender
        case t.Sweep():
            out.holder = tx.sender
        case t.Transfer():
            out.merchant = p.to
        case t.Redeem():
            out.merchant = tx.sender
        case t.RegisterMerchant() | t.UpdateMerchant() | t.SuspendMerchant():
            out.merchant = p.merchant
        case t.Allocate():
            out.amount = sum(a.amount_cents for a in p.allocations)
            if seen is not None:
                mine = [p.allocations[n] for n in seen]
                lines["allocations"] = present(mine)
                out.amount = sum(a.amount_cents for a in mine)
                out.holder = mine[0].holder if mine else None
        case t.Settle():
            kept = list(p.settlements) if seen is None else [p.settlements[n] for n in seen]
            found = [_payout(view, s.payout_id) for s in kept]
            lines["settlements"] = present(kept)
            out.amount = sum(0 if f is None else f.amount_cents for f in found)
        case t.ReturnPayout():
            raw = view.get(r.payout_key(p.payout_id))
            if raw is not None:
                returned = r.Payout.decode(raw)
                out.merchant, out.amount = returned.merchant, returned.amount_cents
        case (
            t.CreateCampaign()
            | t.Fund()
            | t.Reissue()
            | t.CloseCampaign()
            | t.Withdraw()
            | t.Evidence()
            | t.AdmitIssuer()
            | t.ChangeValidators()
            | t.ConsentZones()
            | t.ScheduleUpgrade()
            | t.RotateKey()
        ):
            pass  # their fields say it all
        case _:
            assert_never(p)  # a new kind: say how it is shown
    return out
