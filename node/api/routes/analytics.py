"""Analytics for communes over HTTP: one route per aggregate, exports, a dashboard page.

Routes (issuer token or cookie; an auditor names the issuer with ``?issuer=``):
``/v1/analytics/{zones,categories,hours,daily,flows,merchant-flows,multiplier,
timing,campaigns}``, ``/v1/analytics/export.csv`` and ``.parquet`` (every
published cell in long form), and the page ``/ui/commune/analytics``.

Every figure comes from ``node.analytics.report``: protected with k distinct
holders (``AnalyticsSettings``: 5 by default, per issuer on this node; a
reader may ask a stricter ``?k=``, never a looser one). Nothing at holder
level is served.

The index is a derived view the node runs (``node.views.analytics``): while
it is failed or rebuilding, every route here answers 503 naming it.
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq
from aiohttp import web

from node.analytics import privacy
from node.analytics import report as rep
from node.analytics.index import REPORTS_CACHED_MAX, AnalyticsIndex
from node.api import dashboards, inputs
from node.api.access import Role, Scope, Viewer, Viewers, require
from node.api.inputs import parse_key
from node.api.offload import Memo, offload_of, stream
from node.api.operation import HEX32, Operation, Param, Routes, pick
from node.api.problems import ApiError
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.consensus.types import Block
from node.ledger import records as r
from node.protocol import limits
from node.protocol.errors import ApiInvariantBroken
from node.protocol.genesis import Genesis
from node.store.blockstore import BlockStore
from node.text import fmt
from node.text.escape import csv_writer


@dataclass(frozen=True, slots=True)
class AnalyticsParts:
    """What the analytics routes and page read of the API."""

    ledger: LedgerApp
    viewers: Viewers
    gate: ViewGate


PARQUET_TYPE: Final = "application/vnd.apache.parquet"
INDEX_KEY: Final = web.AppKey("analytics", AnalyticsIndex)


@dataclass(frozen=True, slots=True)
class AnalyticsSettings:
    """Node-local: the k of each issuer (distinct holders a cell needs to be shown)."""

    k_default: int = privacy.K_DEFAULT
    k_by_issuer: Mapping[bytes, int] = field(default_factory=dict)

    def k_of(self, issuer: bytes) -> int:
        return self.k_by_issuer.get(bytes(issuer), self.k_default)


SETTINGS_KEY: Final = web.AppKey("analytics_settings", AnalyticsSettings)


# --- wiring -------------------------------------------------------------------------------


def install(
    app: web.Application, api: AnalyticsParts, settings: AnalyticsSettings | None = None
) -> None:
    """Add the page; the index is the node's (``api.gate.views.analytics``), run as a view."""
    app[INDEX_KEY] = api.gate.views.analytics
    app[SETTINGS_KEY] = settings or AnalyticsSettings()
    app[REPORTS_KEY] = Memo(REPORTS_CACHED_MAX)
    app[EXPORTS_KEY] = Memo(REPORTS_CACHED_MAX)
    app.router.add_get("/ui/commune/analytics", _page_handler(api))


# --- reading ---------------------------------------------------------------------------------


def issuer_of(api: AnalyticsParts, viewer: Viewer, asked: str | None) -> bytes:
    """The issuer whose analytics ``viewer`` may read: its own, or any for an auditor."""
    if viewer.scope is not Scope.ACCOUNT or viewer.role not in (Role.ISSUER, Role.AUDITOR):
        raise ApiError(403, "analytics are read by their commune and by auditors")
    if viewer.role is Role.ISSUER:
        if asked is not None and parse_key(asked, "issuer") != viewer.key:
            raise ApiError(403, "a commune reads its own analytics only")
        return viewer.key
    if asked is None:
        raise ApiError(400, "an auditor names the commune with ?issuer=", slug="issuer-required")
    issuer = parse_key(asked, "issuer")
    if api.ledger.store.get(r.issuer_key(issuer)) is None:
        raise ApiError(404, "no commune has this key")
    return issuer


def k_for(request: web.Request, floor: int) -> int:
    text = request.query.get("k")
    if text is None:
        return floor
    detail = f"k is {floor} (this commune's setting) to {privacy.K_MAX}"
    return inputs.parse_uint(text, floor, privacy.K_MAX, detail, "bad-k")


REPORTS_KEY: Final = web.AppKey("analytics_reports", Memo[tuple[bytes, int], rep.Report])


async def current_report(api: AnalyticsParts, request: web.Request, viewer: Viewer) -> rep.Report:
    """The report at the store's height (or a few blocks before: ``Memo``), computed in
    a worker process from the blocks (the node's own index is the loop's)."""
    issuer = issuer_of(api, viewer, request.query.get("issuer"))
    index, settings = api.gate.analytics, request.app[SETTINGS_KEY]
    k = k_for(request, settings.k_of(issuer))
    if not index.knows_issuer(issuer):
        raise ApiError(404, "no commune has this key")
    offload = offload_of(request)

    async def compute() -> rep.Report:
        async with offload.slot():
            _, blocks = await offload.read(_gather_blocks, api.ledger.store)
            return await offload.compute(report_in_worker, api.ledger.genesis, blocks, issuer, k)

    reports = request.app[REPORTS_KEY]
    return await reports.get((bytes(issuer), k), api.ledger.store.height(), compute)


_worker_indexes: dict[bytes, AnalyticsIndex] = {}  # in a worker process, kept between jobs


def report_in_worker(
    genesis: Genesis, blocks: Sequence[bytes], issuer: bytes, k: int
) -> rep.Report:
    """In a worker process: ``issuer``'s report over ``blocks`` (every block's bytes from
    height 1). The worker keeps its own index between jobs (blocks are final: the first
    ones are the same in every job) and folds only the blocks it has not seen yet."""
    index = _worker_indexes.get(genesis.genesis_hash)
    if index is None or index.height() > len(blocks):
        index = _worker_indexes[genesis.genesis_hash] = AnalyticsIndex(genesis)
    index.catch_up(Block.decode(raw) for raw in blocks[index.height() :])
    if not index.knows_issuer(issuer):
        raise ValueError("no commune has this key")
    return index.report(issuer, k)


def _gather_blocks(store: BlockStore) -> tuple[int, tuple[bytes, ...]]:
    """In a reading thread: the height and every block, from one snapshot of the store."""
    snapshot = store.read_snapshot()
    try:
        top = snapshot.height()
        blocks = tuple(snapshot.blocks(1, top))  # LevelDB's iterator: no Python code a block
    finally:
        snapshot.close()
    if sum(map(len, blocks)) > limits.OFFLOAD_SNAPSHOT_BYTES_MAX:
        raise ApiError(
            503, "the history is more than analytics read at once", slug="history-too-large"
        )
    if len(blocks) != top:
        raise ApiInvariantBroken(f"blocks are missing below {top}")
    return top, blocks


def _reader(
    pick: Callable[[rep.Report], object],
) -> Callable[[AnalyticsParts, web.Request], Awaitable[object]]:
    async def handle(api: AnalyticsParts, request: web.Request) -> object:
        return pick(await current_report(api, request, require(api.viewers.of(request))))

    return handle


EXPORTS_KEY: Final = web.AppKey("analytics_exports", Memo[tuple[str, bytes, int, int], bytes])


async def _rendered(
    api: AnalyticsParts, request: web.Request, render: Callable[[rep.Report], bytes]
) -> bytes:
    """``render`` of the current report in a worker process, once per report."""
    report = await current_report(api, request, require(api.viewers.of(request)))
    offload = offload_of(request)

    async def make() -> bytes:
        async with offload.slot():
            return await offload.compute(render, report)

    key = (render.__name__, bytes.fromhex(report.issuer), report.k, report.height)
    return await request.app[EXPORTS_KEY].get(key, report.height, make)


def csv_bytes(report: rep.Report) -> bytes:
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(rep.LONG_COLUMNS)
    for row in rep.long_rows(report):
        writer.writerow(
            ["" if v is None else str(v).lower() if isinstance(v, bool) else v for v in row]
        )
    return out.getvalue().encode()


async def export_csv(api: AnalyticsParts, request: web.Request) -> object:
    body = await _rendered(api, request, csv_bytes)
    return await stream(
        request,
        body,
        "text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="relance-analytics.csv"'},
    )


def parquet_bytes(report: rep.Report) -> bytes:
    rows = rep.long_rows(report)
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in rep.LONG_COLUMNS]
    types = (pa.string(), pa.string(), pa.string(), pa.string(), pa.int64(), pa.int64(), pa.bool_())
    table = pa.table(
        [pa.array(list(values), type=tp) for values, tp in zip(columns, types, strict=True)],
        names=list(rep.LONG_COLUMNS),
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


async def export_parquet(api: AnalyticsParts, request: web.Request) -> object:
    body = await _rendered(api, request, parquet_bytes)
    return await stream(
        request,
        body,
        PARQUET_TYPE,
        headers={"Content-Disposition": 'attachment; filename="relance-analytics.parquet"'},
    )


# --- the table -----------------------------------------------------------------------------------

_PARAMS: Final = (
    Param("issuer", "query", HEX32, "the commune (auditors only; a commune reads its own)"),
    Param(
        "k",
        "query",
        {"type": "integer", "minimum": 2, "maximum": privacy.K_MAX},
        "a stricter k than the commune's setting (never a looser one)",
    ),
)
_ERRORS: Final = (400, 401, 403, 404, 503)  # 503: the analytics view is not serving


def _op(
    path: str, pick: Callable[[rep.Report], object], name: str, summary: str, ok: type
) -> Operation[AnalyticsParts]:
    handler = _reader(pick)
    handler.__name__ = name
    return Operation(
        "GET",
        f"/v1/analytics/{path}",
        handler,
        summary,
        "analytics",
        ok,
        params=_PARAMS,
        errors=_ERRORS,
        auth="required",
        description="Cells with fewer than k distinct holders are null, and enough others "
        "are null too that no hidden cell can be recomputed from totals (docs/privacy.md).",
    )


ANALYTICS_OPERATIONS: Final[tuple[Operation[AnalyticsParts], ...]] = (
    _op(
        "zones",
        lambda x: x.merchant_zones,
        "analytics_zones",
        "Spending by merchant zone",
        rep.Series,
    ),
    _op(
        "holder-zones",
        lambda x: x.holder_zones,
        "analytics_holder_zones",
        "Spending by holder zone (recorded at allocation)",
        rep.Series,
    ),
    _op(
        "categories",
        lambda x: x.categories,
        "analytics_categories",
        "Spending by NACE division",
        rep.Series,
    ),
    _op(
        "hours",
        lambda x: x.hours,
        "analytics_hours",
        "Spending by day of week and hour (Brussels time)",
        rep.Matrix,
    ),
    _op("daily", lambda x: x.daily, "analytics_daily", "Spending per day", rep.Series),
    _op(
        "flows",
        lambda x: x.flows,
        "analytics_flows",
        "Flows from holder zones to merchant zones",
        rep.Matrix,
    ),
    _op(
        "merchant-flows",
        lambda x: x.merchant_flows,
        "analytics_merchant_flows",
        "Merchant-to-merchant flows by NACE division",
        rep.Matrix,
    ),
    _op(
        "multiplier",
        lambda x: x.multiplier,
        "analytics_multiplier",
        "Local multiplier (LM3) and hops before redemption",
        rep.Multiplier,
    ),
    _op(
        "timing",
        lambda x: x.timing,
        "analytics_timing",
        "Delays: allocation to first spend, receipt to redemption",
        rep.Timing,
    ),
    _op(
        "campaigns",
        lambda x: x.campaigns,
        "analytics_campaigns",
        "Campaigns compared: spending, unspent and never-used vouchers, multiplier",
        rep.Campaigns,
    ),
    _op(
        "regional",
        lambda x: x.regional,
        "analytics_regional",
        "Regions' vouchers spent at the commune's shops, by campaign and zone",
        rep.Matrix,
    ),
    _op("report", lambda x: x, "analytics_report", "Every aggregate at once", rep.Report),
    Operation(
        "GET",
        "/v1/analytics/export.csv",
        export_csv,
        "Every published cell as CSV",
        "analytics",
        None,
        params=_PARAMS,
        errors=_ERRORS,
        auth="required",
        content_type="text/csv",
        description="Columns: " + ", ".join(rep.LONG_COLUMNS) + ". Suppressed cells are empty.",
    ),
    Operation(
        "GET",
        "/v1/analytics/export.parquet",
        export_parquet,
        "Every published cell as Parquet",
        "analytics",
        None,
        params=_PARAMS,
        errors=_ERRORS,
        auth="required",
        content_type=PARQUET_TYPE,
    ),
)


# --- the page ------------------------------------------------------------------------------

MESSAGES: Final[dict[str, tuple[str, str]]] = {
    "title": ("Analyse des flux commerciaux", "Commercial flow analytics"),
    "intro": (
        "Où et quand les chèques sont dépensés, et combien de fois un euro circule "
        "localement. Les cases de moins de {k} bénéficiaires distincts sont masquées (—).",
        "Where and when vouchers are spent, and how many times a euro circulates locally. "
        "Cells with fewer than {k} distinct holders are hidden (—).",
    ),
    "heatmap": ("Dépenses par jour et par heure", "Spending by day and hour"),
    "flows": (
        "Des quartiers des bénéficiaires aux quartiers des commerces",
        "From holders' zones to merchants' zones",
    ),
    "holder_zone": ("Quartier du bénéficiaire", "Holder zone"),
    "merchant_zone": ("Quartier du commerce", "Merchant zone"),
    "multiplier": ("Multiplicateur local (LM3)", "Local multiplier (LM3)"),
    "per_euro": ("par euro attribué", "per euro allocated"),
    "round": ("Tour", "Round"),
    "lm3": ("LM3", "LM3"),
    "leaked": ("Sorti du territoire", "Left the territory"),
    "hops": ("Étapes avant conversion", "Hops before redemption"),
    "zones": ("Dépenses par quartier", "Spending by zone"),
    "categories": ("Dépenses par secteur (NACE)", "Spending by sector (NACE)"),
    "merchant_flows": ("Achats entre commerçants", "Merchant-to-merchant purchases"),
    "regional": (
        "Chèques régionaux dépensés dans la commune",
        "Regional vouchers spent in the commune",
    ),
    "campaigns": ("Comparaison des campagnes", "Campaigns compared"),
    "timing": ("Délais", "Delays"),
    "first_spend": ("De l'attribution au premier achat", "From allocation to first purchase"),
    "redemption": ("De la réception à la conversion", "From receipt to redemption"),
    "holders": ("Bénéficiaires", "Holders"),
    "never_used": ("Jamais utilisés", "Never used"),
    "total": ("Total", "Total"),
    "hidden": ("masqué", "hidden"),
    "export_csv": ("Exporter (CSV)", "Export (CSV)"),
    "export_parquet": ("Exporter (Parquet)", "Export (Parquet)"),
    "lt1h": ("< 1 h", "< 1 h"),
    "1h-1d": ("1 h \u2013 1 j", "1 h \u2013 1 d"),
    "1d-7d": ("1 \u2013 7 j", "1 \u2013 7 d"),
    "7d-30d": ("7 \u2013 30 j", "7 \u2013 30 d"),
    "30d+": ("30 j et plus", "30 d and more"),
    "at-once": ("Immédiat", "At once"),
    "lt1d": ("< 1 j", "< 1 d"),
    "mon": ("lun", "Mon"),
    "tue": ("mar", "Tue"),
    "wed": ("mer", "Wed"),
    "thu": ("jeu", "Thu"),
    "fri": ("ven", "Fri"),
    "sat": ("sam", "Sat"),
    "sun": ("dim", "Sun"),
    "privacy": ("Protection de la vie privée", "Privacy"),
}

HEAT_LOW: Final = (241, 245, 249)
HEAT_HIGH: Final = (29, 78, 216)
HIDDEN_FILL: Final = "url(#hidden)"


@dataclass(frozen=True, slots=True)
class Square:
    x: int
    y: int
    size: int
    fill: str
    title: str
    testid: str


def heat_fill(value: int, top: int) -> str:
    share = 0.0 if top <= 0 else value / top
    rgb = [round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True)]
    return "#{:02x}{:02x}{:02x}".format(*rgb)


def heatmap(m: rep.Matrix, label: Callable[[str], str]) -> list[Square]:
    top = max((c.value or 0 for row in m.cells for c in row), default=0)
    out = []
    for i, (row, cells) in enumerate(zip(m.rows, m.cells, strict=True)):
        for j, (column, c) in enumerate(zip(m.columns, cells, strict=True)):
            fill = HIDDEN_FILL if c.suppressed else heat_fill(c.value or 0, top)
            text = "—" if c.value is None else fmt.money(c.value)
            title = f"{label(row)} {column} h: {text}"
            out.append(Square(48 + 26 * j, 22 + 24 * i, 22, fill, title, f"heat-{row}-{column}"))
    return out


def flow_squares(m: rep.Matrix) -> list[Square]:
    top = max((c.value or 0 for row in m.cells for c in row), default=0)
    out = []
    for i, (row, cells) in enumerate(zip(m.rows, m.cells, strict=True)):
        for j, (column, c) in enumerate(zip(m.columns, cells, strict=True)):
            size = (
                36
                if c.suppressed or top == 0
                else max(4, round(36 * ((c.value or 0) / top) ** 0.5))
            )
            fill = HIDDEN_FILL if c.suppressed else "#1d4ed8"
            text = "—" if c.value is None else fmt.money(c.value)
            offset = (40 - size) // 2
            out.append(
                Square(
                    110 + 44 * j + offset,
                    30 + 44 * i + offset,
                    size,
                    fill,
                    f"{row} → {column}: {text}",
                    f"flow-{row}-{column}",
                )
            )
    return out


def _page_handler(api: AnalyticsParts) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handle(request: web.Request) -> web.StreamResponse:
        lang = dashboards.language(request)
        try:
            viewer = api.viewers.of(request)
        except ApiError as error:
            return dashboards.render(
                request, lang, "login.html", 401, error=error.detail, viewer=None
            )
        if viewer is None:
            return dashboards.render(request, lang, "login.html", 200, error=None, viewer=None)
        if viewer.role is not Role.ISSUER or viewer.scope is not Scope.ACCOUNT:
            return dashboards.render(request, lang, "forbidden.html", 403, viewer=viewer)
        report = await current_report(api, request, viewer)

        def at(key: str) -> str:
            pair = MESSAGES.get(key)
            return key if pair is None else pair[0] if lang == "fr" else pair[1]

        raw_issuer = api.ledger.store.get(r.issuer_key(viewer.key))
        issuer = None if raw_issuer is None else r.Issuer.decode(raw_issuer)
        return dashboards.render(
            request,
            lang,
            "analytics.html",
            viewer=viewer,
            issuer=issuer,
            report=report,
            at=at,
            heat=heatmap(report.hours, at),
            flows=flow_squares(report.flows),
            height=api.ledger.last_block().height,
            zip=zip,
        )

    return handle


ROUTES: Final = Routes(pick(AnalyticsParts), ANALYTICS_OPERATIONS)
