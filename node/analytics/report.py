"""The published aggregates of one issuer: computed from its events, then protected.

Every figure here is an aggregate; nothing at holder level leaves this
module. Conventions:

- spending cells count gross payments (``pay`` and ``pay_authorized``);
  refunds are reported per campaign;
- local time is Europe/Brussels, from block time; weekdays run Monday (0)
  to Sunday (6);
- categories are NACE divisions (the first two digits of the merchant's code);
- a cell's contributors are the distinct holders whose payments make it, or
  the distinct merchants for tables made only of merchants' operations
  (merchant-to-merchant flows, hops and delays before redemption);
- the local multiplier (LM3-style) follows each allocated euro: round 1 is
  what holders paid to merchants in the issuer's territory, rounds 2 and 3
  what merchants then transferred, from round-1 then round-2 money, to
  merchants in the territory, before redemption. Per euro allocated, in
  thousandths; LM3 = (round 1 + round 2 + round 3) / round 1, in thousandths;
- a payout the bank returned was not a redemption (its units went back to
  the merchant): hops and delays before redemption count only the others,
  and the returned units count when they are redeemed again, by the round
  and time of receipt they had;
- a region's voucher spent at a consenting commune's shop is the region's
  spending (local to the region) and, in the commune's report, a cell of
  ``regional`` (the region's campaign by the shop's zone, holders counted).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar
from zoneinfo import ZoneInfo

from node.analytics import privacy
from node.analytics.privacy import Cell, RawCell
from node.analytics.tracker import (
    CampaignPots,
    IssuerHistory,
    Moved,
    PayoutReturned,
    Redeemed,
    Refunded,
    RegionalSpent,
    Returned,
    Spent,
)
from node.analytics.tracker import Event as TrackerEvent

BRUSSELS: Final = ZoneInfo("Europe/Brussels")
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS: Final = tuple(f"{h:02d}" for h in range(24))
HOPS: Final = ("1", "2", "3", "4+")
HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
FIRST_SPEND_BUCKETS: Final = (
    ("lt1h", HOUR_MS),
    ("1h-1d", DAY_MS),
    ("1d-7d", 7 * DAY_MS),
    ("7d-30d", 30 * DAY_MS),
    ("30d+", None),
)
REDEMPTION_BUCKETS: Final = (
    ("at-once", 1),
    ("lt1d", DAY_MS),
    ("1d-7d", 7 * DAY_MS),
    ("7d-30d", 30 * DAY_MS),
    ("30d+", None),
)
DAILY_DAYS_MAX: Final = 1_000  # the daily series shows at most this many latest days

E = TypeVar("E")


# --- what is published ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Series:
    """A one-way table with its total. ``unit`` is cents, pots or holders; ``counted``
    says who the contributors are (holders or merchants)."""

    name: str
    unit: str
    counted: str
    labels: list[str]
    cells: list[Cell]
    total: Cell


@dataclass(frozen=True, slots=True)
class Matrix:
    """A two-way table with row totals, column totals and the grand total."""

    name: str
    unit: str
    counted: str
    rows: list[str]
    columns: list[str]
    cells: list[list[Cell]]
    row_totals: list[Cell]
    column_totals: list[Cell]
    total: Cell


@dataclass(frozen=True, slots=True)
class Multiplier:
    """How far each allocated euro circulates locally before redemption (see the module)."""

    suppressed: bool
    allocated_cents: int | None
    round1_cents: int | None
    round2_cents: int | None
    round3_cents: int | None
    leaked_cents: int | None  # transferred to merchants outside the territory
    round1_per_euro_milli: int | None
    round2_per_euro_milli: int | None
    round3_per_euro_milli: int | None
    lm3_milli: int | None
    hops: Series  # redeemed cents by rounds travelled before redemption


@dataclass(frozen=True, slots=True)
class Timing:
    first_spend: Series  # pots by delay from allocation to first payment
    redemption: Series  # cents by delay from receipt to redemption


@dataclass(frozen=True, slots=True)
class CampaignRow:
    code: str
    name: str
    suppressed: bool
    holders: int | None
    allocated_cents: int | None
    spent_cents: int | None
    refunded_cents: int | None
    unspent_cents: int | None
    returned_cents: int | None
    never_used_holders: int | None
    never_used_cents: int | None
    round1_cents: int | None
    round2_cents: int | None
    round3_cents: int | None
    lm3_milli: int | None


@dataclass(frozen=True, slots=True)
class Campaigns:
    items: list[CampaignRow]


@dataclass(frozen=True, slots=True)
class Report:
    """Everything published for one issuer at one height with one k."""

    issuer: str
    k: int
    height: int
    merchant_zones: Series
    holder_zones: Series
    categories: Series
    hours: Matrix
    daily: Series
    flows: Matrix
    merchant_flows: Matrix
    multiplier: Multiplier
    timing: Timing
    campaigns: Campaigns
    regional: Matrix  # regions' vouchers spent at this commune's shops: campaign x zone


# --- raw aggregation (pure) --------------------------------------------------------------------


@dataclass(slots=True)
class _Acc:
    value: int = 0
    who: set[bytes] = field(default_factory=set)

    def add(self, value: int, who: bytes) -> None:
        self.value += value
        self.who.add(who)

    def raw(self) -> RawCell:
        return RawCell(self.value, len(self.who))


def local_time(time_ms: int) -> datetime:
    return datetime.fromtimestamp(time_ms / 1000, UTC).astimezone(BRUSSELS)


def division(category: str) -> str:
    return category.replace(".", "")[:2] or "?"


def raw_series(
    items: Iterable[tuple[str, int, bytes]], labels: Sequence[str]
) -> tuple[list[RawCell], RawCell]:
    """(label, value, who) items into cells in ``labels`` order and their total."""
    cells = {label: _Acc() for label in labels}
    total = _Acc()
    for label, value, who in items:
        cells[label].add(value, who)
        total.add(value, who)
    return [cells[label].raw() for label in labels], total.raw()


@dataclass(frozen=True, slots=True)
class RawMatrix:
    cells: list[list[RawCell]]
    row_totals: list[RawCell]
    column_totals: list[RawCell]
    total: RawCell


def raw_matrix(
    items: Iterable[tuple[str, str, int, bytes]], rows: Sequence[str], columns: Sequence[str]
) -> RawMatrix:
    cells = {(r, c): _Acc() for r in rows for c in columns}
    row_acc, col_acc, total = {r: _Acc() for r in rows}, {c: _Acc() for c in columns}, _Acc()
    for r, c, value, who in items:
        for acc in (cells[(r, c)], row_acc[r], col_acc[c], total):
            acc.add(value, who)
    return RawMatrix(
        [[cells[(r, c)].raw() for c in columns] for r in rows],
        [row_acc[r].raw() for r in rows],
        [col_acc[c].raw() for c in columns],
        total.raw(),
    )


def of_type(events: Iterable[TrackerEvent], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def _sorted_labels(values: Iterable[Hashable]) -> list[str]:
    return sorted({str(v) for v in values})


def zone_labels(history: IssuerHistory) -> tuple[list[str], list[str]]:
    spent = of_type(history.events, Spent)
    rows = _sorted_labels([*history.zones, *(e.holder_zone for e in spent)])
    columns = _sorted_labels([*history.zones, *(e.merchant_zone for e in spent)])
    return rows, columns


def flows_raw(history: IssuerHistory) -> tuple[RawMatrix, list[str], list[str]]:
    rows, columns = zone_labels(history)
    spent = of_type(history.events, Spent)
    items = ((e.holder_zone, e.merchant_zone, e.cents, e.holder) for e in spent)
    return raw_matrix(items, rows, columns), rows, columns


def regional_raw(history: IssuerHistory) -> tuple[RawMatrix, list[str], list[str]]:
    """Regions' campaigns (rows) spent at this commune's shops, by shop zone (columns)."""
    spent = of_type(history.events, RegionalSpent)
    rows = _sorted_labels(e.campaign for e in spent)
    columns = _sorted_labels(e.merchant_zone for e in spent)
    items = ((e.campaign, e.merchant_zone, e.cents, e.holder) for e in spent)
    return raw_matrix(items, rows, columns), rows, columns


def categories_raw(history: IssuerHistory) -> tuple[list[RawCell], RawCell, list[str]]:
    spent = of_type(history.events, Spent)
    labels = _sorted_labels(division(e.category) for e in spent)
    cells, total = raw_series(((division(e.category), e.cents, e.holder) for e in spent), labels)
    return cells, total, labels


def hours_raw(history: IssuerHistory) -> RawMatrix:
    items = []
    for e in of_type(history.events, Spent):
        when = local_time(e.time_ms)
        items.append((WEEKDAYS[when.weekday()], f"{when.hour:02d}", e.cents, e.holder))
    return raw_matrix(items, WEEKDAYS, HOURS)


def daily_raw(history: IssuerHistory) -> tuple[list[RawCell], RawCell, list[str]]:
    spent = of_type(history.events, Spent)
    days = [local_time(e.time_ms).date() for e in spent]
    labels: list[str] = []
    if days:
        first = max(min(days), max(days) - timedelta(days=DAILY_DAYS_MAX - 1))
        labels = [
            (first + timedelta(days=n)).isoformat() for n in range((max(days) - first).days + 1)
        ]
    shown = set(labels)
    items = [
        (d.isoformat(), e.cents, e.holder)
        for d, e in zip(days, spent, strict=True)
        if d.isoformat() in shown
    ]
    cells, total = raw_series(items, labels)
    return cells, total, labels


def merchant_flows_raw(history: IssuerHistory) -> tuple[RawMatrix, list[str], list[str]]:
    moved = of_type(history.events, Moved)
    rows = _sorted_labels(division(e.sender_category) for e in moved)
    columns = _sorted_labels(division(e.receiver_category) for e in moved)
    items = (
        (division(e.sender_category), division(e.receiver_category), e.cents, e.sender)
        for e in moved
    )
    return raw_matrix(items, rows, columns), rows, columns


@dataclass(frozen=True, slots=True)
class Rounds:
    allocated: int
    round1: int
    round2: int
    round3: int
    leaked: int
    spenders: int


def rounds_raw(history: IssuerHistory, campaign: str | None = None) -> Rounds:
    def mine(code: str) -> bool:
        return campaign is None or code == campaign

    allocated = sum(pots.allocated_cents for code, pots in history.pots.items() if mine(code))
    spent = [e for e in of_type(history.events, Spent) if mine(e.campaign)]
    round1 = sum(e.cents for e in spent if e.local)
    by_round = {2: 0, 3: 0}
    leaked = 0
    for e in of_type(history.events, Moved):
        for piece in e.pieces:
            if not mine(piece.campaign):
                continue
            if not e.local:
                leaked += piece.cents
            elif piece.round + 1 in by_round:
                by_round[piece.round + 1] += piece.cents
    spenders = len({e.holder for e in spent})
    return Rounds(allocated, round1, by_round[2], by_round[3], leaked, spenders)


def redemptions(events: Sequence[TrackerEvent]) -> list[Redeemed]:
    """The redemptions whose payout the bank did not return."""
    returned = {e.payout for e in of_type(events, PayoutReturned)}
    return [e for e in of_type(events, Redeemed) if e.payout not in returned]


def hops_raw(history: IssuerHistory) -> tuple[list[RawCell], RawCell]:
    items = []
    for e in redemptions(history.events):
        for piece in e.pieces:
            items.append((HOPS[min(piece.round, 4) - 1], piece.cents, e.merchant))
    return raw_series(items, HOPS)


def bucket(delay_ms: int, buckets: Sequence[tuple[str, int | None]]) -> str:
    for label, below in buckets:
        if below is None or delay_ms < below:
            return label
    raise ValueError("the last bucket is open")


def first_spend_raw(history: IssuerHistory) -> tuple[list[RawCell], RawCell]:
    items = [  # a fresh pot (``CampaignPots``) never paid: only the held ones count
        (bucket(pot.first_spend_ms - pot.allocated_ms, FIRST_SPEND_BUCKETS), 1, holder)
        for pots in history.pots.values()
        for holder, pot in pots.held.items()
        if pot.first_spend_ms is not None and pot.allocated_cents > 0
    ]
    return raw_series(items, [label for label, _ in FIRST_SPEND_BUCKETS])


def redemption_raw(history: IssuerHistory) -> tuple[list[RawCell], RawCell]:
    items = [
        (bucket(piece.age_ms, REDEMPTION_BUCKETS), piece.cents, e.merchant)
        for e in redemptions(history.events)
        for piece in e.pieces
    ]
    return raw_series(items, [label for label, _ in REDEMPTION_BUCKETS])


@dataclass(frozen=True, slots=True)
class CampaignRaw:
    code: str
    name: str
    holders: int
    allocated: int
    spent: int
    refunded: int
    unspent: int
    returned: int
    never_used_holders: int
    never_used_cents: int
    rounds: Rounds


def campaigns_raw(history: IssuerHistory) -> list[CampaignRaw]:
    out = []
    for code, name in sorted(history.campaigns.items()):
        pots = history.pots.get(code, CampaignPots())
        # Every fresh pot was allocated and never used; the held ones are looked at.
        allocated = [p for p in pots.held.values() if p.allocated_cents > 0]
        never = [p for p in allocated if p.first_spend_ms is None and not p.moved_out]
        events = history.events
        out.append(
            CampaignRaw(
                code=code,
                name=name,
                holders=len(pots.fresh) + len(allocated),
                allocated=pots.allocated_cents,
                spent=sum(e.cents for e in of_type(events, Spent) if e.campaign == code),
                refunded=sum(e.cents for e in _refunds(events) if e.campaign == code),
                unspent=pots.unspent_cents(),
                returned=sum(e.cents for e in _returns(events) if e.campaign == code),
                never_used_holders=len(pots.fresh) + len(never),
                never_used_cents=pots.fresh_cents + sum(p.allocated_cents for p in never),
                rounds=rounds_raw(history, code),
            )
        )
    return out


def _refunds(events: Iterable[TrackerEvent]) -> list[Refunded]:
    return of_type(events, Refunded)


def _returns(events: Iterable[TrackerEvent]) -> list[Returned]:
    return of_type(events, Returned)


# --- protection and assembly ------------------------------------------------------------------


def _series(
    name: str,
    unit: str,
    counted: str,
    labels: Sequence[str],
    cells: Sequence[RawCell],
    total: RawCell,
    k: int,
) -> Series:
    published, published_total = privacy.protect_series(cells, total, k)
    return Series(name, unit, counted, list(labels), published, published_total)


def _matrix(
    name: str,
    unit: str,
    counted: str,
    rows: Sequence[str],
    columns: Sequence[str],
    raw: RawMatrix,
    k: int,
) -> Matrix:
    m = privacy.protect_matrix(raw.cells, raw.row_totals, raw.column_totals, raw.total, k)
    return Matrix(
        name,
        unit,
        counted,
        list(rows),
        list(columns),
        m.cells,
        m.row_totals,
        m.column_totals,
        m.total,
    )


def _per_milli(part: int, whole: int) -> int | None:
    return None if whole == 0 else part * 1000 // whole


def lm3_milli(r: Rounds) -> int | None:
    return _per_milli(r.round1 + r.round2 + r.round3, r.round1)


def multiplier(history: IssuerHistory, k: int) -> Multiplier:
    r = rounds_raw(history)
    hop_cells, hop_total = hops_raw(history)
    hops = _series("hops", "cents", "merchants", HOPS, hop_cells, hop_total, k)
    if 0 < r.spenders < k:
        return Multiplier(
            suppressed=True,
            allocated_cents=None,
            round1_cents=None,
            round2_cents=None,
            round3_cents=None,
            leaked_cents=None,
            round1_per_euro_milli=None,
            round2_per_euro_milli=None,
            round3_per_euro_milli=None,
            lm3_milli=None,
            hops=hops,
        )
    return Multiplier(
        False,
        r.allocated,
        r.round1,
        r.round2,
        r.round3,
        r.leaked,
        _per_milli(r.round1, r.allocated),
        _per_milli(r.round2, r.allocated),
        _per_milli(r.round3, r.allocated),
        lm3_milli(r),
        hops,
    )


def campaign_rows(history: IssuerHistory, k: int) -> list[CampaignRow]:
    raws = campaigns_raw(history)
    cells = [RawCell(c.holders, c.holders) for c in raws]
    total = RawCell(sum(c.holders for c in raws), sum(c.holders for c in raws))
    published, _ = privacy.protect_series(cells, total, k)
    out = []
    for c, cell in zip(raws, published, strict=True):
        if cell.suppressed:
            out.append(CampaignRow(c.code, c.name, True, *([None] * 12)))
            continue
        never_hidden = privacy.is_sensitive(RawCell(0, c.never_used_holders), k)
        out.append(
            CampaignRow(
                c.code,
                c.name,
                False,
                c.holders,
                c.allocated,
                c.spent,
                c.refunded,
                c.unspent,
                c.returned,
                None if never_hidden else c.never_used_holders,
                None if never_hidden else c.never_used_cents,
                c.rounds.round1,
                c.rounds.round2,
                c.rounds.round3,
                lm3_milli(c.rounds),
            )
        )
    return out


def build(history: IssuerHistory, issuer: bytes, k: int, height: int) -> Report:
    """The protected report of one issuer (pure: same history, same report)."""
    flows, zone_rows, zone_columns = flows_raw(history)
    protected_flows = _matrix("flows", "cents", "holders", zone_rows, zone_columns, flows, k)
    cat_cells, cat_total, cat_labels = categories_raw(history)
    day_cells, day_total, day_labels = daily_raw(history)
    mflows, m_rows, m_columns = merchant_flows_raw(history)
    first_cells, first_total = first_spend_raw(history)
    red_cells, red_total = redemption_raw(history)
    regional, reg_rows, reg_columns = regional_raw(history)
    return Report(
        issuer=issuer.hex(),
        k=k,
        height=height,
        merchant_zones=_margin(
            "merchant_zones", zone_columns, protected_flows.column_totals, protected_flows.total
        ),
        holder_zones=_margin(
            "holder_zones", zone_rows, protected_flows.row_totals, protected_flows.total
        ),
        categories=_series("categories", "cents", "holders", cat_labels, cat_cells, cat_total, k),
        hours=_matrix("hours", "cents", "holders", WEEKDAYS, HOURS, hours_raw(history), k),
        daily=_series("daily", "cents", "holders", day_labels, day_cells, day_total, k),
        flows=protected_flows,
        merchant_flows=_matrix(
            "merchant_flows", "cents", "merchants", m_rows, m_columns, mflows, k
        ),
        multiplier=multiplier(history, k),
        timing=Timing(
            _series(
                "first_spend",
                "pots",
                "holders",
                [b for b, _ in FIRST_SPEND_BUCKETS],
                first_cells,
                first_total,
                k,
            ),
            _series(
                "redemption",
                "cents",
                "merchants",
                [b for b, _ in REDEMPTION_BUCKETS],
                red_cells,
                red_total,
                k,
            ),
        ),
        campaigns=Campaigns(campaign_rows(history, k)),
        regional=_matrix("regional", "cents", "holders", reg_rows, reg_columns, regional, k),
    )


def _margin(name: str, labels: Sequence[str], cells: Sequence[Cell], total: Cell) -> Series:
    """A series published as the margin of a protected matrix (so both always agree)."""
    return Series(name, "cents", "holders", list(labels), list(cells), total)


# --- long form (CSV, Parquet) -------------------------------------------------------------------

LONG_COLUMNS: Final = ("aggregate", "row", "column", "unit", "value", "contributors", "suppressed")
LongRow = tuple[str, str, str, str, int | None, int | None, bool]


def long_rows(report: Report) -> list[LongRow]:
    """Every published cell as one row; suppressed cells have empty values."""
    out: list[LongRow] = []

    def cell(aggregate: str, row: str, column: str, unit: str, c: Cell) -> None:
        out.append((aggregate, row, column, unit, c.value, c.contributors, c.suppressed))

    for s in (
        report.merchant_zones,
        report.holder_zones,
        report.categories,
        report.daily,
        report.multiplier.hops,
        report.timing.first_spend,
        report.timing.redemption,
    ):
        for label, c in zip(s.labels, s.cells, strict=True):
            cell(s.name, label, "", s.unit, c)
        cell(s.name, "total", "", s.unit, s.total)
    for m in (report.hours, report.flows, report.merchant_flows, report.regional):
        for row, cells, row_total in zip(m.rows, m.cells, m.row_totals, strict=True):
            for column, c in zip(m.columns, cells, strict=True):
                cell(m.name, row, column, m.unit, c)
            cell(m.name, row, "total", m.unit, row_total)
        for column, c in zip(m.columns, m.column_totals, strict=True):
            cell(m.name, "total", column, m.unit, c)
        cell(m.name, "total", "total", m.unit, m.total)
    mult = report.multiplier
    for field_name in (
        "allocated_cents",
        "round1_cents",
        "round2_cents",
        "round3_cents",
        "leaked_cents",
        "round1_per_euro_milli",
        "round2_per_euro_milli",
        "round3_per_euro_milli",
        "lm3_milli",
    ):
        value = getattr(mult, field_name)
        out.append(("multiplier", field_name, "", "", value, None, mult.suppressed))
    for campaign in report.campaigns.items:
        for field_name in (
            "holders",
            "allocated_cents",
            "spent_cents",
            "refunded_cents",
            "unspent_cents",
            "returned_cents",
            "never_used_holders",
            "never_used_cents",
            "round1_cents",
            "round2_cents",
            "round3_cents",
            "lm3_milli",
        ):
            value = getattr(campaign, field_name)
            out.append(("campaigns", campaign.code, field_name, "", value, None, value is None))
    return out
