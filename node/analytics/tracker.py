"""The fold: committed transactions in, per-issuer analytics events out.

Every transaction in a finalised block was applied by the ledger, so the
fold trusts payloads and never re-checks rules. It keeps just enough state to
place each euro: the merchants' zones and categories, each campaign's issuer,
each (campaign, holder) pot with the holder zone recorded at allocation (a pot that was
only ever allocated is one integer: ``CampaignPots``), and
the merchants' balances as FIFO lots that remember the round they were
received in (1: paid by a holder; n + 1: transferred from a round-n lot),
and the lots each pending payout took.

A region's voucher spent at a commune's shop (``consent_zones``) is the
region's event, local to the region's territory, and also a ``RegionalSpent``
event in the commune's history, so that the commune sees the regional flows
at its shops.

Lots are a convention (first in, first out), not ledger state: merchant
units are fungible. Their totals always equal the merchants' balances, and
the pending payouts' lots the issuers' pending payouts. A payout the bank
returned (``return_payout``) gives its lots back to the merchant as they
were (campaign, round, time of receipt): the units never left, so they are
not redeemed (the report leaves out a returned payout's ``Redeemed``), and
when they are spent again they count from where they came from.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Final, assert_never

from node.ledger import parties
from node.ledger import tx as t
from node.protocol.errors import ViewInvariantBroken


@dataclass(frozen=True, slots=True)
class MerchantInfo:
    issuer: bytes
    zone: str
    category: str
    auto_redeem: bool


@dataclass(frozen=True, slots=True)
class Spent:
    """A holder paid a merchant (``pay`` or ``pay_authorized``)."""

    campaign: str
    holder: bytes
    holder_zone: str
    merchant: bytes
    merchant_zone: str
    category: str
    cents: int
    time_ms: int
    local: bool


@dataclass(frozen=True, slots=True)
class RegionalSpent:
    """A holder paid one of this commune's shops with a region's voucher (the units are
    the region's: its payout comes from the region's escrow)."""

    campaign: str
    holder: bytes
    merchant: bytes
    merchant_zone: str
    category: str
    cents: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Refunded:
    campaign: str
    holder: bytes
    merchant: bytes
    cents: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Piece:
    """Part of a lot taken by a transfer or a redemption."""

    campaign: str
    round: int
    cents: int
    age_ms: int


@dataclass(frozen=True, slots=True)
class Moved:
    """Merchant to merchant (``transfer``) in the issuer's units."""

    sender: bytes
    sender_category: str
    receiver: bytes
    receiver_category: str
    receiver_zone: str
    local: bool
    cents: int
    time_ms: int
    pieces: tuple[Piece, ...]


@dataclass(frozen=True, slots=True)
class Redeemed:
    """Units burnt into a payout (``redeem``, or a payment to an auto-redeeming merchant);
    ``payout`` is the payout's id (the transaction's)."""

    payout: bytes
    merchant: bytes
    cents: int
    time_ms: int
    pieces: tuple[Piece, ...]


@dataclass(frozen=True, slots=True)
class PayoutReturned:
    """The bank could not pay ``payout``: its units went back to the merchant."""

    payout: bytes
    merchant: bytes
    cents: int
    time_ms: int


@dataclass(frozen=True, slots=True)
class Returned:
    """Unspent holder balances returned to the budget when a campaign closed."""

    campaign: str
    cents: int
    time_ms: int


Event = Spent | RegionalSpent | Refunded | Moved | Redeemed | PayoutReturned | Returned


@dataclass(slots=True)
class Pot:
    """One holder's pot in one campaign."""

    zone: str
    allocated_ms: int
    allocated_cents: int = 0
    balance_cents: int = 0
    first_spend_ms: int | None = None
    moved_out: bool = False  # swept into an app wallet or reissued


GROUP_SPAN: Final = 1 << 32  # a fresh pot: allocated cents * GROUP_SPAN + its group


@dataclass(slots=True)
class CampaignPots:
    """One campaign's pots, kept small: a million holders are allocated before anyone pays.

    A pot that was only ever allocated (it never paid, moved, or received anything else, and
    was allocated while the campaign was open) is *fresh*: its balance is what it was
    allocated until the campaign closes (then 0), and it is one integer, its allocated cents
    times ``GROUP_SPAN`` plus the index of its (zone, time of first allocation) in
    ``groups``. The first time anything else touches it, it becomes a ``Pot`` in ``held``.
    The reports read the fresh pots through ``fresh_cents`` and ``len(fresh)`` only."""

    allocated_cents: int = 0  # every allocation of the campaign
    fresh_cents: int = 0  # what the fresh pots were allocated
    closed: bool = False
    fresh: dict[bytes, int] = field(default_factory=dict)
    held: dict[bytes, Pot] = field(default_factory=dict)
    groups: list[tuple[str, int]] = field(default_factory=list)
    group_ids: dict[tuple[str, int], int] = field(default_factory=dict)

    def allocate(self, holder: bytes, zone: str, cents: int, time_ms: int) -> None:
        self.allocated_cents += cents
        if not self.closed and cents > 0 and holder not in self.held:
            packed = self.fresh.get(holder)  # a top-up keeps the first zone and time
            base = self._group(zone, time_ms) if packed is None else packed
            self.fresh[holder] = base + cents * GROUP_SPAN
            self.fresh_cents += cents
            return
        pot = self.pot(holder) or self.held.setdefault(holder, Pot(zone, time_ms))
        pot.allocated_cents += cents
        pot.balance_cents += cents

    def _group(self, zone: str, time_ms: int) -> int:
        key = (zone, time_ms)
        found = self.group_ids.get(key)
        if found is None:
            if len(self.groups) >= GROUP_SPAN:
                raise ViewInvariantBroken("more (zone, time) groups than a fresh pot can name")
            found = self.group_ids[key] = len(self.groups)
            self.groups.append(key)
        return found

    def _unpack(self, packed: int) -> Pot:
        cents, group = divmod(packed, GROUP_SPAN)
        zone, allocated_ms = self.groups[group]
        return Pot(zone, allocated_ms, cents, 0 if self.closed else cents)

    def pot(self, holder: bytes) -> Pot | None:
        """The holder's pot as a ``Pot`` (a fresh one becomes one), or None."""
        held = self.held.get(holder)
        if held is not None:
            return held
        packed = self.fresh.pop(holder, None)
        if packed is None:
            return None
        pot = self.held[holder] = self._unpack(packed)
        self.fresh_cents -= pot.allocated_cents
        return pot

    def must(self, holder: bytes) -> Pot:
        pot = self.pot(holder)
        if pot is None:
            raise ViewInvariantBroken("a pot the fold never saw allocated nor moved to")
        return pot

    def spend(self, holder: bytes, cents: int, time_ms: int) -> Pot:
        """The holder paid ``cents`` from its pot (its first payment's time kept)."""
        pot = self.must(holder)
        pot.balance_cents -= cents
        if pot.first_spend_ms is None:
            pot.first_spend_ms = time_ms
        return pot

    def move(self, source: bytes, target: bytes) -> None:
        """The source's whole balance to the target (``sweep``, ``reissue``); a new target
        pot takes the source's zone and allocation time."""
        pot = self.must(source)
        moved, pot.balance_cents, pot.moved_out = pot.balance_cents, 0, True
        receiver = self.pot(target) or self.held.setdefault(target, Pot(pot.zone, pot.allocated_ms))
        receiver.balance_cents += moved

    def close(self) -> int:
        """Every balance to 0 (the campaign closed); what they held."""
        returned = self.unspent_cents()
        for pot in self.held.values():
            pot.balance_cents = 0
        self.closed = True
        return returned

    def unspent_cents(self) -> int:
        fresh = 0 if self.closed else self.fresh_cents
        return fresh + sum(pot.balance_cents for pot in self.held.values())

    def items(self) -> Iterator[tuple[bytes, Pot]]:
        """Every pot as a ``Pot`` (fresh ones copied out, not changed)."""
        yield from self.held.items()
        for holder, packed in self.fresh.items():
            yield holder, self._unpack(packed)


@dataclass(slots=True)
class Lot:
    campaign: str
    round: int
    cents: int
    received_ms: int


@dataclass(frozen=True, slots=True)
class Pending:
    """A payout not yet settled nor returned, and the lots it took."""

    merchant: bytes
    issuer: bytes
    cents: int
    lots: tuple[Lot, ...]


@dataclass(slots=True)
class IssuerHistory:
    """What one issuer's analytics are computed from."""

    zones: tuple[str, ...]
    campaigns: dict[str, str] = field(default_factory=dict)  # code -> name
    events: list[Event] = field(default_factory=list)
    pots: dict[str, CampaignPots] = field(default_factory=dict)  # campaign code ->


class Tracker:
    """The fold's state. One writer: the index (see ``node.analytics.index``)."""

    def __init__(self, issuers: Iterable[tuple[bytes, tuple[str, ...]]]) -> None:
        self.histories: dict[bytes, IssuerHistory] = {
            bytes(key): IssuerHistory(tuple(zones)) for key, zones in issuers
        }
        self.merchants: dict[bytes, MerchantInfo] = {}
        self.campaign_issuer: dict[str, bytes] = {}
        self.lots: dict[tuple[bytes, bytes], deque[Lot]] = {}
        self.pending: dict[bytes, Pending] = {}  # payout id -> its lots, until settled or returned
        # The fold's copy of the ledger's ``Delegate`` records, from the rotations it folded
        # (exact without state: ``parties.signs_for``), for blocks fed as stored (``add_block``).
        self.delegates: dict[bytes, bytes] = {}

    # --- the fold ---------------------------------------------------------------------

    def apply(self, signed: t.SignedTx, time_ms: int) -> None:
        """Fold one committed transaction at its block time."""
        signed = parties.as_account(signed, self.delegates.get)
        sender, p, tx_id = bytes(signed.tx.sender), signed.tx.payload, bytes(signed.tx_id)
        match p:
            case t.RegisterMerchant() | t.UpdateMerchant():
                known = self.merchants.get(p.merchant)
                issuer = known.issuer if known is not None else sender
                self.merchants[p.merchant] = MerchantInfo(issuer, p.zone, p.category, p.auto_redeem)
            case t.CreateCampaign():
                self.campaign_issuer[p.campaign] = sender
                self._history(sender).campaigns[p.campaign] = p.name
            case t.Allocate():
                self._allocate(p, time_ms)
            case t.Pay():
                self._pay(tx_id, p.campaign, sender, p.merchant, p.amount_cents, time_ms)
            case t.PayAuthorized():
                auth = p.authorization
                self._pay(tx_id, auth.campaign, auth.holder, sender, p.amount_cents, time_ms)
            case t.Sweep():
                self._pots(p.campaign).move(sender, p.to)
            case t.Reissue():
                self._pots(p.campaign).move(p.lost, p.replacement)
            case t.Refund():
                self._refund(p, sender, time_ms)
            case t.Transfer():
                self._transfer(p, sender, time_ms)
            case t.Redeem():
                lots = self._take(sender, p.issuer, p.amount_cents)
                self._redeem(tx_id, sender, bytes(p.issuer), p.amount_cents, time_ms, lots)
            case t.Settle():
                for settlement in p.settlements:
                    self.pending.pop(bytes(settlement.payout_id), None)
            case t.ReturnPayout():
                self._return(bytes(p.payout_id), time_ms)
            case t.CloseCampaign():
                self._close(p.campaign, time_ms)
            case t.AdmitIssuer():
                self.histories.setdefault(p.issuer, IssuerHistory(tuple(p.zones)))
            case t.RotateKey():
                key, account = parties.delegation(p)
                self.delegates[key] = account
            case (
                t.SuspendMerchant()
                | t.Fund()
                | t.Withdraw()
                | t.Evidence()
                | t.ChangeValidators()
                | t.ConsentZones()
                | t.ScheduleUpgrade()
            ):
                pass  # no euro moves between holders, merchants and payouts
            case _:
                assert_never(p)

    def _history(self, issuer: bytes) -> IssuerHistory:
        return self.histories.setdefault(bytes(issuer), IssuerHistory(()))

    def _pots(self, campaign: str) -> CampaignPots:
        history = self._history(self.campaign_issuer[campaign])
        return history.pots.setdefault(campaign, CampaignPots())

    def _allocate(self, p: t.Allocate, time_ms: int) -> None:
        pots = self._pots(p.campaign)
        for a in p.allocations:
            pots.allocate(a.holder, a.zone, a.amount_cents, time_ms)

    def _pay(
        self, tx_id: bytes, campaign: str, holder: bytes, merchant: bytes, cents: int, time_ms: int
    ) -> None:
        issuer = self.campaign_issuer[campaign]
        history = self._history(issuer)
        info = self.merchants[merchant]
        pot = self._pots(campaign).spend(holder, cents, time_ms)
        regional = info.issuer != issuer  # a region's voucher at a consenting commune's shop
        local = regional or info.zone in history.zones
        history.events.append(
            Spent(
                campaign,
                holder,
                pot.zone,
                merchant,
                info.zone,
                info.category,
                cents,
                time_ms,
                local,
            )
        )
        if regional:
            self._history(info.issuer).events.append(
                RegionalSpent(campaign, holder, merchant, info.zone, info.category, cents, time_ms)
            )
        lot = Lot(campaign, 1, cents, time_ms)
        if info.auto_redeem:
            self._redeem(tx_id, merchant, issuer, cents, time_ms, (lot,))
        else:
            self.lots.setdefault((merchant, issuer), deque()).append(lot)

    def _refund(self, p: t.Refund, merchant: bytes, time_ms: int) -> None:
        issuer = self.campaign_issuer[p.campaign]
        history = self._history(issuer)
        self._take(merchant, issuer, p.amount_cents)
        self._pots(p.campaign).must(p.holder).balance_cents += p.amount_cents
        history.events.append(Refunded(p.campaign, p.holder, merchant, p.amount_cents, time_ms))

    def _transfer(self, p: t.Transfer, sender: bytes, time_ms: int) -> None:
        history = self._history(p.issuer)
        taken = self._take(sender, p.issuer, p.amount_cents)
        pieces = _pieces(taken, time_ms)
        lots = self.lots.setdefault((p.to, p.issuer), deque())
        for lot in taken:
            lots.append(Lot(lot.campaign, lot.round + 1, lot.cents, time_ms))
        source, target = self.merchants[sender], self.merchants[p.to]
        history.events.append(
            Moved(
                sender,
                source.category,
                p.to,
                target.category,
                target.zone,
                target.zone in history.zones,
                p.amount_cents,
                time_ms,
                pieces,
            )
        )

    def _take(self, merchant: bytes, issuer: bytes, cents: int) -> tuple[Lot, ...]:
        """Consume ``cents`` of the merchant's lots of ``issuer``, oldest first; the parts
        taken, as lots (campaign, round and time of receipt kept)."""
        lots = self.lots.get((bytes(merchant), bytes(issuer)))
        taken: list[Lot] = []
        left = cents
        while left > 0:
            if not lots:
                raise ViewInvariantBroken("a merchant spent more than its lots: the fold is broken")
            lot = lots[0]
            part = min(left, lot.cents)
            taken.append(Lot(lot.campaign, lot.round, part, lot.received_ms))
            lot.cents -= part
            left -= part
            if lot.cents == 0:
                lots.popleft()
        return tuple(taken)

    def _redeem(
        self,
        payout: bytes,
        merchant: bytes,
        issuer: bytes,
        cents: int,
        time_ms: int,
        lots: tuple[Lot, ...],
    ) -> None:
        """A payout opened (named by its transaction's id) from ``lots``."""
        self.pending[payout] = Pending(merchant, issuer, cents, lots)
        self._history(issuer).events.append(
            Redeemed(payout, merchant, cents, time_ms, _pieces(lots, time_ms))
        )

    def _return(self, payout: bytes, time_ms: int) -> None:
        """The bank returned ``payout``: its lots go back to the merchant as they were."""
        pending = self.pending.pop(payout, None)
        if pending is None:
            raise ViewInvariantBroken("a payout returned that the fold never saw opened")
        key = (pending.merchant, pending.issuer)
        back = [Lot(lot.campaign, lot.round, lot.cents, lot.received_ms) for lot in pending.lots]
        # Oldest first, as if they had never left (a stable sort keeps equal times in order).
        merged = sorted([*self.lots.get(key, ()), *back], key=lambda lot: lot.received_ms)
        self.lots[key] = deque(merged)
        self._history(pending.issuer).events.append(
            PayoutReturned(payout, pending.merchant, pending.cents, time_ms)
        )

    def _close(self, campaign: str, time_ms: int) -> None:
        returned = self._pots(campaign).close()
        self._history(self.campaign_issuer[campaign]).events.append(
            Returned(campaign, returned, time_ms)
        )

    # --- checks -------------------------------------------------------------------------

    def lot_cents(self, merchant: bytes, issuer: bytes) -> int:
        return sum(lot.cents for lot in self.lots.get((merchant, issuer), ()))

    def pending_cents(self, issuer: bytes) -> int:
        """What the issuer's payouts not yet settled nor returned hold."""
        return sum(p.cents for p in self.pending.values() if p.issuer == bytes(issuer))


def _pieces(lots: tuple[Lot, ...], time_ms: int) -> tuple[Piece, ...]:
    """The parts of lots taken at ``time_ms``, with their ages."""
    return tuple(
        Piece(lot.campaign, lot.round, lot.cents, time_ms - lot.received_ms) for lot in lots
    )
