"""A small Belgian town, as a seeded plan of signed-to-be transactions with their times.

Zones (the issuer's own), merchants by NACE category in those zones (most
shops auto-redeem; some keep their units to buy from suppliers), households
with a home zone and a pot, and rhythms: opening hours per category (bakeries
early, restaurants at noon and in the evening, shops in the afternoon),
Saturdays busy, Sundays quiet and most shops closed. Households shop mostly in
their own zone and in the first zone (the centre); one in ten never spends.
Each Monday at dawn the restaurants and grocers buy from the wholesaler, which
then buys from the local brewery; each Saturday at dawn merchants redeem half
of what they keep.

Pure and deterministic: the same seed gives the same plan. Times are block
times (Unix ms); the driver turns them into blocks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final
from zoneinfo import ZoneInfo

from node.ledger import tx as t
from node.protocol.crypto import PublicKey, Signer, digest

BRUSSELS: Final = ZoneInfo("Europe/Brussels")
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
ALLOCATIONS_PER_TX: Final = 500

# name, NACE, opening hours weights (hour -> weight), basket range in cents, keeps units
SHOP_KINDS: Final = (
    (
        "Boulangerie",
        "10.71",
        {7: 3, 8: 4, 9: 3, 10: 2, 11: 2, 12: 2, 16: 2, 17: 3, 18: 2},
        (250, 1_200),
        False,
    ),
    (
        "Épicerie",
        "47.11",
        {9: 1, 10: 2, 11: 3, 14: 2, 15: 2, 16: 3, 17: 4, 18: 4, 19: 2},
        (1_000, 4_500),
        True,
    ),
    ("Brasserie", "56.10", {12: 5, 13: 4, 19: 4, 20: 5, 21: 2}, (1_800, 6_000), True),
    ("Librairie", "47.61", {10: 2, 11: 2, 14: 3, 15: 3, 16: 3, 17: 2}, (900, 3_000), False),
    ("Coiffure", "96.02", {9: 2, 10: 3, 11: 3, 14: 3, 15: 3, 16: 3, 17: 2}, (1_800, 4_500), False),
    ("Boutique", "47.71", {10: 1, 11: 2, 14: 3, 15: 4, 16: 4, 17: 3, 18: 2}, (2_000, 5_000), False),
)
WHOLESALER: Final = ("Grossiste Alimentaire", "46.39")
BREWERY: Final = ("Brasserie Artisanale", "11.05")
WEEKDAY_WEIGHT: Final = (0.7, 0.9, 1.0, 0.9, 1.2, 1.8, 0.3)  # Monday .. Sunday
SUNDAY_OPEN: Final = frozenset({"10.71", "56.10"})
# Where the shops are: the postcode and town of a devnet zone (node.devnet.network.COMMUNES), else
# of the zone's rank; streets that every Walloon town has, numbered at random.
ZONE_PLACES: Final = {
    "NAM-CENTRE": ("5000", "Namur"),
    "NAM-JAMBES": ("5100", "Jambes"),
    "NAM-BOUGE": ("5004", "Bouge"),
    "LGE-CENTRE": ("4000", "Liège"),
    "LGE-OUTREMEUSE": ("4020", "Liège"),
    "MON-CENTRE": ("7000", "Mons"),
    "MON-NIMY": ("7020", "Nimy"),
    "CRL-CENTRE": ("6000", "Charleroi"),
    "CRL-GILLY": ("6060", "Gilly"),
    "TRN-CENTRE": ("7500", "Tournai"),
    "ARL-CENTRE": ("6700", "Arlon"),
    "WAL-REGION": ("5000", "Namur"),
}
OTHER_PLACES: Final = (
    ("5000", "Namur"),
    ("5100", "Jambes"),
    ("5020", "Champion"),
    ("5101", "Erpent"),
    ("5002", "Saint-Servais"),
)
STREETS: Final = (
    "Rue de Fer",
    "Rue de l'Ange",
    "Place d'Armes",
    "Rue des Carmes",
    "Rue Haute",
    "Chaussée de Louvain",
    "Rue de la Station",
    "Avenue de la Gare",
    "Rue du Commerce",
    "Rue Saint-Jean",
    "Rue Neuve",
    "Rue de Bruxelles",
    "Rue des Brasseurs",
    "Quai de Meuse",
    "Rue Émile Cuvelier",
    "Place du Marché",
)


@dataclass(frozen=True, slots=True)
class Step:
    time_ms: int
    signer: Signer
    payload: t.Payload


@dataclass(frozen=True, slots=True)
class Shop:
    signer: Signer
    name: str
    category: str
    zone: str
    hours: dict[int, int]
    basket: tuple[int, int]
    keeps_units: bool
    address: t.Address = t.NO_ADDRESS


@dataclass
class Town:
    """The town's people and shops, made from a seed (see the module docstring)."""

    seed: int
    zones: tuple[str, ...]
    households: int = 150
    pot_cents: int = 5_000
    shops: list[Shop] = field(default_factory=list)
    homes: list[tuple[Signer, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        rng = random.Random(self.seed)
        for zone_index, zone in enumerate(self.zones):
            kinds = SHOP_KINDS if zone_index == 0 else SHOP_KINDS[: 3 + zone_index % 3]
            for name, category, hours, basket, keeps in kinds:
                self.shops.append(
                    Shop(
                        self.key(f"shop:{zone}:{category}"),
                        f"{name} {zone}",
                        category,
                        zone,
                        hours,
                        basket,
                        keeps,
                        self.address(f"shop:{zone}:{category}", zone),
                    )
                )
        for n in range(self.households):
            weights = [3 if i == 0 else 2 for i in range(len(self.zones))]
            self.homes.append((self.key(f"home:{n}"), rng.choices(self.zones, weights)[0]))

    def key(self, name: str) -> Signer:
        return Signer(digest(f"relance-sim:{self.seed}:{name}".encode()))

    def address(self, name: str, zone: str) -> t.Address:
        """A real-looking Belgian address for the shop ``name`` in ``zone`` (its own
        random draw: the rest of the plan does not depend on addresses)."""
        rng = random.Random(f"relance-sim:{self.seed}:address:{name}")
        rank = self.zones.index(zone) if zone in self.zones else 0
        postcode, town = ZONE_PLACES.get(zone, OTHER_PLACES[rank % len(OTHER_PLACES)])
        return t.Address(f"{rng.choice(STREETS)} {rng.randint(1, 180)}", postcode, town)

    @property
    def wholesaler(self) -> Signer:
        return self.key("wholesaler")

    @property
    def brewery(self) -> Signer:
        return self.key("brewery")


def setup(
    town: Town, issuer: Signer, bank: Signer, campaign: str, start_ms: int, days: int
) -> list[Step]:
    """Merchants, the campaign, its funding and the allocations, all at ``start_ms``."""
    steps = [
        Step(
            start_ms,
            issuer,
            t.RegisterMerchant(
                s.signer.public_key,
                s.name,
                s.category,
                s.zone,
                digest(s.name.encode()),
                not s.keeps_units,
                s.address,
            ),
        )
        for s in town.shops
    ]
    for signer, (name, category) in ((town.wholesaler, WHOLESALER), (town.brewery, BREWERY)):
        steps.append(
            Step(
                start_ms,
                issuer,
                t.RegisterMerchant(
                    signer.public_key,
                    name,
                    category,
                    town.zones[0],
                    digest(name.encode()),
                    False,
                    town.address(name, town.zones[0]),
                ),
            )
        )
    end_ms = start_ms + (days + 30) * DAY_MS
    steps.append(
        Step(
            start_ms,
            issuer,
            t.CreateCampaign(
                campaign,
                f"Chèques relance {campaign}",
                (),
                ("10", "47", "56", "96"),
                start_ms,
                end_ms,
                town.pot_cents,
            ),
        )
    )
    total = town.pot_cents * len(town.homes)
    steps.append(Step(start_ms, bank, t.Fund(campaign, total, f"DEP-{campaign}")))
    allocations = [t.Allocation(s.public_key, town.pot_cents, z) for s, z in town.homes]
    for i in range(0, len(allocations), ALLOCATIONS_PER_TX):
        chunk = tuple(allocations[i : i + ALLOCATIONS_PER_TX])
        steps.append(Step(start_ms, issuer, t.Allocate(campaign, chunk)))
    return steps


def local_hour_ms(day_start_ms: int, hour: int) -> int:
    """Unix ms of ``hour`` o'clock, Brussels time, on the local day holding ``day_start_ms``."""
    day = datetime.fromtimestamp(day_start_ms / 1000, UTC).astimezone(BRUSSELS).date()
    local = datetime(day.year, day.month, day.day, hour, tzinfo=BRUSSELS)
    return int(local.timestamp() * 1000)


def activity(town: Town, issuer: Signer, campaign: str, start_ms: int, days: int) -> list[Step]:
    """Payments, purchases from suppliers and redemptions over ``days`` days."""
    rng = random.Random(town.seed * 7919 + 1)
    issuer_key = issuer.public_key
    balances = {signer.public_key: town.pot_cents for signer, _ in town.homes}
    never = {signer.public_key for signer, _ in town.homes if rng.random() < 0.1}
    kept: dict[bytes, int] = {}
    steps: list[Step] = []
    for day in range(1, days + 1):
        day_ms = start_ms + day * DAY_MS
        weekday = datetime.fromtimestamp(day_ms / 1000, UTC).astimezone(BRUSSELS).weekday()
        # Before any shop that keeps units opens (9 h): yesterday's takings are settled.
        if weekday == 0:  # Monday: buy from the wholesaler, which buys from the brewery
            steps += _suppliers(town, issuer_key, kept, local_hour_ms(day_ms, 6))
        if weekday == 5:  # Saturday morning: redeem half of what is kept
            steps += _redemptions(town, issuer_key, kept, local_hour_ms(day_ms, 5))
        for signer, zone in town.homes:
            pk = signer.public_key
            if pk in never or balances[pk] <= 0 or rng.random() > 0.12 * WEEKDAY_WEIGHT[weekday]:
                continue
            shops = [s for s in town.shops if weekday != 6 or s.category in SUNDAY_OPEN]
            near = [s for s in shops if s.zone in (zone, town.zones[0])]
            shop = rng.choice(near if near and rng.random() < 0.8 else shops)
            hours = list(shop.hours)
            hour = rng.choices(hours, [shop.hours[h] for h in hours])[0]
            cents = min(balances[pk], rng.randint(*shop.basket))
            balances[pk] -= cents
            when = local_hour_ms(day_ms, hour) + rng.randrange(HOUR_MS // 1000) * 1000
            steps.append(Step(when, signer, t.Pay(campaign, shop.signer.public_key, cents, "")))
            if shop.keeps_units:
                kept[shop.signer.public_key] = kept.get(shop.signer.public_key, 0) + cents
    steps.sort(key=lambda s: s.time_ms)
    return steps


def _suppliers(town: Town, issuer: PublicKey, kept: dict[bytes, int], when_ms: int) -> list[Step]:
    steps = []
    wholesaler, brewery = town.wholesaler.public_key, town.brewery.public_key
    for shop in town.shops:
        cents = kept.get(shop.signer.public_key, 0) * 4 // 10
        if cents > 0:
            kept[shop.signer.public_key] -= cents
            kept[wholesaler] = kept.get(wholesaler, 0) + cents
            steps.append(Step(when_ms, shop.signer, t.Transfer(wholesaler, issuer, cents, "")))
    cents = kept.get(wholesaler, 0) * 3 // 10
    if cents > 0:
        kept[wholesaler] -= cents
        kept[brewery] = kept.get(brewery, 0) + cents
        steps.append(
            Step(when_ms + HOUR_MS, town.wholesaler, t.Transfer(brewery, issuer, cents, "bière"))
        )
    return steps


def _redemptions(town: Town, issuer: PublicKey, kept: dict[bytes, int], when_ms: int) -> list[Step]:
    signers: dict[bytes, Signer] = {s.signer.public_key: s.signer for s in town.shops}
    signers[town.wholesaler.public_key] = town.wholesaler
    signers[town.brewery.public_key] = town.brewery
    steps = []
    for key, cents in sorted(kept.items()):
        half = cents // 2
        if half > 0:
            kept[key] -= half
            steps.append(Step(when_ms, signers[key], t.Redeem(issuer, half)))
    return steps


def plan(
    town: Town, issuer: Signer, bank: Signer, campaign: str, start_ms: int, days: int
) -> list[Step]:
    """The whole history: set-up at ``start_ms``, then ``days`` days of town life."""
    return setup(town, issuer, bank, campaign, start_ms, days) + activity(
        town, issuer, campaign, start_ms, days
    )


def sign(
    steps: list[Step], chain_id: str, sequences: dict[bytes, int]
) -> list[tuple[int, t.SignedTx]]:
    """Sign each step with its signer's next sequence (``sequences`` is updated)."""
    out = []
    for step in steps:
        pk = step.signer.public_key
        sequence = sequences.get(pk, 0)
        sequences[pk] = sequence + 1
        out.append((step.time_ms, t.Tx(chain_id, pk, sequence, step.payload).sign(step.signer)))
    return out
