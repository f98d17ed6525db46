"""Who is party to each kind of transaction, and who may read which of its items.

The privacy rule of the design, in one place for every reader: the history index
and the event stream (which accounts a transaction shows up for), the transaction
view and its proof (which items of a list transaction a reader may see).

"Party" is the sender, the accounts whose balances the transaction moves, and the
issuer of every campaign and merchant it touches (an issuer reads its campaigns and
its merchants). Auditors and the bank read everything. A list transaction
(``allocate``, ``settle``: ``tx.DETACHED_FIELDS``) shows a party that is not its
sender only its own items: a holder its allocations, a merchant or commune the
settlements of its payouts.

Who a transaction acts for is here too (``signs_for``, ``as_account``): a key governance
moved an account's signing authority to (``rotate_key``) acts for that account, for ever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import assert_never

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.execute import ACCOUNT_KINDS
from node.ledger.state import BlockState
from node.protocol.crypto import PublicKey


def parties(signed: t.SignedTx, state: BlockState) -> frozenset[PublicKey]:
    """Every account that may read ``signed`` besides auditors and the bank.

    ``state`` reads the state after the transaction's block (records never vanish:
    campaigns, merchants and payouts are kept for ever).
    """
    tx, p = signed.tx, signed.tx.payload
    found: set[bytes] = {tx.sender}
    campaign: str | None = None
    merchants: list[bytes] = []
    match p:
        case t.RegisterMerchant() | t.UpdateMerchant() | t.SuspendMerchant():
            merchants.append(p.merchant)
        case t.CreateCampaign() | t.Fund() | t.CloseCampaign() | t.Withdraw():
            campaign = p.campaign
        case t.Allocate():
            campaign = p.campaign
            found.update(a.holder for a in p.allocations)
        case t.Pay():
            campaign = p.campaign
            merchants.append(p.merchant)
        case t.PayAuthorized():
            campaign = p.authorization.campaign
            found.add(p.authorization.holder)
            merchants.append(tx.sender)
        case t.Sweep():
            campaign = p.campaign
            found.add(p.to)
        case t.Refund():
            campaign = p.campaign
            found.add(p.holder)
            merchants.append(tx.sender)
        case t.Reissue():
            campaign = p.campaign
            found.update((p.lost, p.replacement))
        case t.Transfer():
            merchants += (tx.sender, p.to)
            found.add(p.issuer)
        case t.Redeem():
            merchants.append(tx.sender)
            found.add(p.issuer)
        case t.Settle():
            for settlement in p.settlements:
                payout = state.payout(settlement.payout_id)
                if payout is not None:
                    found.update((payout.merchant, payout.issuer))
        case t.ReturnPayout():
            payout = state.payout(p.payout_id)
            if payout is not None:
                found.update((payout.merchant, payout.issuer))
        case t.ConsentZones():
            found.add(p.region)  # the region sees the communes' consents in its history
        case t.RotateKey():
            found.update((p.account, p.new_key))  # the account sees its key move
        case t.Evidence() | t.AdmitIssuer() | t.ChangeValidators() | t.ScheduleUpgrade():
            pass  # the sender only: governance and evidence move no one's money
        case _:
            assert_never(p)  # a new kind: say who is party to it
    if campaign is not None:
        record = state.campaign(campaign)
        if record is not None:
            found.add(record.issuer)
    for merchant in merchants:
        found.add(merchant)
        shop = state.merchant(merchant)
        if shop is not None:
            found.add(shop.issuer)
    return frozenset(PublicKey(key) for key in found)


def signs_for(key: bytes, get: Callable[[bytes], bytes | None]) -> PublicKey | None:
    """The account ``key`` signs for if governance moved that account's signing authority
    to it (``rotate_key``), else None. The source is the key's ``records.Delegate``
    (read by ``get``), which is never removed and never names another account: a state
    at any later height answers for every block since the rotation, and the key signs
    nothing before its rotation is committed."""
    raw = get(r.delegate_key(key))
    return None if raw is None else r.Delegate.decode(raw).account


def as_account(signed: t.SignedTx, delegate: Callable[[bytes], bytes | None]) -> t.SignedTx:
    """``signed`` as the account it acts for: a bank's or issuer's transaction
    (``execute.ACCOUNT_KINDS``) signed by a moved-to key is the account's (its ``sender``
    the account; body, signature and id unchanged). ``delegate`` answers the account a
    key signs for, or None (``signs_for`` over a state, or a fold's own record of the
    rotations)."""
    if signed.tx.payload.KIND not in ACCOUNT_KINDS:
        return signed
    account = delegate(signed.tx.sender)
    if account is None:
        return signed
    return replace(signed, tx=replace(signed.tx, sender=PublicKey(account)))


def delegation(p: t.RotateKey) -> tuple[bytes, PublicKey]:
    """The ``records.Delegate`` a committed ``rotate_key`` leaves: (moved-to key, account)."""
    return bytes(p.new_key), PublicKey(p.account)


def reads_payout(reader: bytes, payout: r.Payout) -> bool:
    """Whether ``reader`` (neither an auditor nor the bank) may read ``payout``."""
    return reader in (payout.merchant, payout.issuer)


def visible_items(
    signed: t.SignedTx,
    reader: bytes | None,
    reads_all: bool,
    payout: Callable[[bytes], r.Payout | None],
) -> list[int] | None:
    """The positions of the list items ``reader`` may see, or None when it may see the
    whole transaction: a kind without such a list, its sender, or a reader who
    ``reads_all`` (auditors, the bank). ``reader`` None is the public: no item.
    ``payout`` reads a payout record by id (the state after the block)."""
    p = signed.tx.payload
    if not isinstance(p, t.Allocate | t.Settle):
        return None
    if reads_all or (reader is not None and reader == signed.tx.sender):
        return None
    if reader is None:
        return []
    if isinstance(p, t.Allocate):
        return [n for n, a in enumerate(p.allocations) if a.holder == reader]
    out = []
    for n, s in enumerate(p.settlements):
        found = payout(s.payout_id)
        if found is not None and reads_payout(reader, found):
            out.append(n)
    return out
