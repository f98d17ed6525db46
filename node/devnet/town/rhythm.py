"""The town live, one simulated hour at a time: what the devnet demo plays.

The same town as ``model`` (zones, merchants by NACE category, households,
opening hours, busy Saturdays and quiet Sundays), but as a stream rather than
a plan: the caller asks for the moves of a simulated hour, submits them, and
tells the rhythm which were accepted, so balances follow the ledger even when
some moves are refused.

- The town opens with the centre's shops and the suppliers; the shops of the
  other zones join one by one, at ``JOIN_HOURS``.
- Households spend at the shops open that hour (weighted by their opening
  hours), mostly in their own zone and in the centre; one in ten never spends.
- Every morning at 6 h the shops that keep units buy from the wholesaler; on
  Mondays and Thursdays at 7 h the wholesaler buys from the brewery.
- On Wednesdays and Saturdays at 5 h merchants redeem half of what they keep.
- On Mondays at 5 h the bank funds, and the commune tops up, the households
  that have spent their whole pot.

Pure: randomness is the seeded ``rng`` given at creation; time is an argument.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Final

from node.devnet.town.model import (
    ALLOCATIONS_PER_TX,
    BREWERY,
    SUNDAY_OPEN,
    WEEKDAY_WEIGHT,
    WHOLESALER,
    Shop,
    Town,
)
from node.ledger import tx as t
from node.protocol.crypto import PublicKey, Signer, digest

JOIN_HOURS: Final = (9, 14)
RESTOCK_HOUR: Final = 6
BREWERY_DAYS: Final = (0, 3)  # Monday, Thursday
REDEEM_DAYS: Final = (2, 5)  # Wednesday, Saturday
DAWN_HOUR: Final = 5
CATEGORIES: Final = ("10", "47", "56", "96")


@dataclass(frozen=True, slots=True)
class SimHour:
    """One simulated hour: ``weekday`` 0 is Monday, ``hour`` 0..23."""

    weekday: int
    hour: int

    def next(self) -> SimHour:
        if self.hour < 23:
            return SimHour(self.weekday, self.hour + 1)
        return SimHour((self.weekday + 1) % 7, 0)


@dataclass(frozen=True, slots=True)
class Move:
    signer: Signer
    payload: t.Payload


@dataclass
class Rhythm:
    """One commune's town, live (see the module docstring)."""

    town: Town
    issuer: Signer
    bank: Signer
    campaign: str
    rng: random.Random
    daily_spend: float = 0.3  # chance a household shops on an ordinary day
    joined: list[Shop] = field(default_factory=list)
    pending: list[Shop] = field(default_factory=list)
    balances: dict[bytes, int] = field(default_factory=dict)
    kept: dict[bytes, int] = field(default_factory=dict)
    never: frozenset[bytes] = frozenset()

    def __post_init__(self) -> None:
        centre = self.town.zones[0]
        self.pending = [s for s in self.town.shops if s.zone != centre]
        homes = [signer.public_key for signer, _ in self.town.homes]
        self.never = frozenset(k for k in homes if self.rng.random() < 0.1)

    @property
    def issuer_key(self) -> PublicKey:
        return self.issuer.public_key

    def opening(self, valid_from_ms: int, valid_until_ms: int) -> list[Move]:
        """The centre's shops, the suppliers, the campaign, its funding and the allocations."""
        centre = self.town.zones[0]
        moves = [self._register(s) for s in self.town.shops if s.zone == centre]
        for signer, (name, category) in (
            (self.town.wholesaler, WHOLESALER),
            (self.town.brewery, BREWERY),
        ):
            p = t.RegisterMerchant(
                signer.public_key,
                f"{name} {centre}",
                category,
                centre,
                digest(f"{self.campaign}:{name}".encode()),
                False,
                self.town.address(name, centre),
            )
            moves.append(Move(self.issuer, p))
        name = f"Chèques relance {self.campaign}"
        moves.append(
            Move(
                self.issuer,
                t.CreateCampaign(
                    self.campaign,
                    name,
                    (),
                    CATEGORIES,
                    valid_from_ms,
                    valid_until_ms,
                    self.town.pot_cents,
                ),
            )
        )
        return moves + self._allocate([s for s, _ in self.town.homes])

    def hour(self, now: SimHour) -> list[Move]:
        """The moves of one simulated hour, in the order they should be submitted."""
        moves: list[Move] = []
        if now.hour == DAWN_HOUR and now.weekday == 0:
            moves += self._top_ups()
        if now.hour == DAWN_HOUR and now.weekday in REDEEM_DAYS:
            moves += self._redemptions()
        if now.hour == RESTOCK_HOUR:
            moves += self._restock()
        if now.hour == RESTOCK_HOUR + 1 and now.weekday in BREWERY_DAYS:
            moves += self._brewery()
        if now.hour in JOIN_HOURS and self.pending:
            moves.append(self._register(self.pending[0]))
        return moves + self._payments(now)

    def record(self, move: Move, accepted: bool) -> None:
        """What the ledger did with ``move``: only accepted moves change the town."""
        p, who = move.payload, move.signer.public_key
        if not accepted:
            if isinstance(p, t.RegisterMerchant):  # try the others first; this one again later
                self.pending.sort(key=lambda s: s.signer.public_key == p.merchant)
            return
        if isinstance(p, t.RegisterMerchant):
            for shop in self.town.shops:
                if shop.signer.public_key == p.merchant and shop not in self.joined:
                    self.joined.append(shop)
            self.pending = [s for s in self.pending if s.signer.public_key != p.merchant]
        elif isinstance(p, t.Allocate):
            for a in p.allocations:
                self.balances[a.holder] = self.balances.get(a.holder, 0) + a.amount_cents
        elif isinstance(p, t.Pay):
            self.balances[who] = self.balances.get(who, 0) - p.amount_cents
            if any(s.keeps_units and s.signer.public_key == p.merchant for s in self.joined):
                self.kept[p.merchant] = self.kept.get(p.merchant, 0) + p.amount_cents
        elif isinstance(p, t.Transfer):
            self.kept[who] = self.kept.get(who, 0) - p.amount_cents
            self.kept[p.to] = self.kept.get(p.to, 0) + p.amount_cents
        elif isinstance(p, t.Redeem):
            self.kept[who] = self.kept.get(who, 0) - p.amount_cents

    def opens_payout(self, move: Move) -> bool:
        """True when an accepted ``move`` leaves the bank a payout to settle."""
        p = move.payload
        if isinstance(p, t.Redeem):
            return True
        if isinstance(p, t.Pay):
            return any(not s.keeps_units and s.signer.public_key == p.merchant for s in self.joined)
        return False

    # --- the hour's parts ----------------------------------------------------------------

    def _register(self, shop: Shop) -> Move:
        ref = digest(f"{self.campaign}:{shop.name}".encode())
        return Move(
            self.issuer,
            t.RegisterMerchant(
                shop.signer.public_key,
                shop.name,
                shop.category,
                shop.zone,
                ref,
                not shop.keeps_units,
                shop.address,
            ),
        )

    def _allocate(self, households: list[Signer]) -> list[Move]:
        if not households:
            return []
        pot = self.town.pot_cents
        reference = f"DEP-{self.campaign}-{self.rng.randrange(10**9)}"
        moves = [Move(self.bank, t.Fund(self.campaign, pot * len(households), reference))]
        zones = dict((s.public_key, z) for s, z in self.town.homes)
        allocations = [t.Allocation(s.public_key, pot, zones[s.public_key]) for s in households]
        for i in range(0, len(allocations), ALLOCATIONS_PER_TX):
            chunk = tuple(allocations[i : i + ALLOCATIONS_PER_TX])
            moves.append(Move(self.issuer, t.Allocate(self.campaign, chunk)))
        return moves

    def _top_ups(self) -> list[Move]:
        homes = [s for s, _ in self.town.homes if s.public_key not in self.never]
        spent = [s for s in homes if self.balances.get(s.public_key, 0) == 0]
        return self._allocate(spent)

    def _restock(self) -> list[Move]:
        wholesaler = self.town.wholesaler.public_key
        moves = []
        for shop in self.joined:
            cents = self.kept.get(shop.signer.public_key, 0) * 4 // 10
            if shop.keeps_units and cents > 0:
                moves.append(
                    Move(shop.signer, t.Transfer(wholesaler, self.issuer_key, cents, "réassort"))
                )
        return moves

    def _brewery(self) -> list[Move]:
        cents = self.kept.get(self.town.wholesaler.public_key, 0) * 3 // 10
        if cents <= 0:
            return []
        p = t.Transfer(self.town.brewery.public_key, self.issuer_key, cents, "bière")
        return [Move(self.town.wholesaler, p)]

    def _redemptions(self) -> list[Move]:
        signers: dict[bytes, Signer] = {s.signer.public_key: s.signer for s in self.joined}
        signers[self.town.wholesaler.public_key] = self.town.wholesaler
        signers[self.town.brewery.public_key] = self.town.brewery
        moves = []
        for key, cents in sorted(self.kept.items()):
            if cents // 2 > 0 and key in signers:
                moves.append(Move(signers[key], t.Redeem(self.issuer_key, cents // 2)))
        return moves

    def _payments(self, now: SimHour) -> list[Move]:
        shops = [s for s in self.joined if now.weekday != 6 or s.category in SUNDAY_OPEN]
        day_weight = sum(sum(s.hours.values()) for s in shops)
        open_now = [s for s in shops if now.hour in s.hours]
        if not open_now or day_weight == 0:
            return []
        share = sum(s.hours[now.hour] for s in open_now) / day_weight
        chance = self.daily_spend * WEEKDAY_WEIGHT[now.weekday] * share
        centre = self.town.zones[0]
        moves = []
        for signer, zone in self.town.homes:
            balance = self.balances.get(signer.public_key, 0)
            if signer.public_key in self.never or balance <= 0 or self.rng.random() >= chance:
                continue
            near = [s for s in open_now if s.zone in (zone, centre)]
            pool = near if near and self.rng.random() < 0.8 else open_now
            shop = self.rng.choices(pool, [s.hours[now.hour] for s in pool])[0]
            cents = min(balance, self.rng.randint(*shop.basket))
            moves.append(Move(signer, t.Pay(self.campaign, shop.signer.public_key, cents, "")))
        return moves
