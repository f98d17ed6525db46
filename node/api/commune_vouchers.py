"""The commune's voucher status page (``/ui/commune/vouchers``) and its CSV export.

What the node knows per allocation of one of the commune's campaigns: the key,
what it received, what is left and its status (``node/api/voucher_status.py``),
with counts per status. Serials and delivery channels are in the commune's
sealed voucher book, not on the node: ``relance-wallet issuer vouchers`` joins
them. Only the issuing commune reads these pages (any other reader: 403, or the
campaign is not offered).
"""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

from node.api import dashboards
from node.api import voucher_status as vs
from node.api.access import Role, Viewer
from node.api.page_parts import PageParts
from node.api.problems import ApiError
from node.ledger import records as r
from node.protocol import limits
from node.text import fmt
from node.text.escape import csv_writer

CSV_COLUMNS: Final = ("holder", "allocated_cents", "balance_cents", "status", "replaced_by")
ISSUERS: Final = frozenset({Role.ISSUER})


def install(app: web.Application, api: PageParts) -> None:
    def bind(page: dashboards._Page) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await dashboards._guard_page(api, request, page, ISSUERS)

        return handle

    app.router.add_get("/ui/commune/vouchers", bind(vouchers_page))
    app.router.add_get("/ui/commune/vouchers.csv", bind(vouchers_csv))


def _own_campaigns(api: PageParts, issuer: bytes) -> dict[str, r.Campaign]:
    prefix = r.campaign_key("")
    found = {}
    for key, raw in api.ledger.store.iter_prefix(prefix):
        campaign = r.Campaign.decode(raw)
        if campaign.issuer == issuer:
            found[key[len(prefix) :].decode()] = campaign
    return found


def _chosen(api: PageParts, request: web.Request, viewer: Viewer) -> tuple[str, r.Campaign] | None:
    own = _own_campaigns(api, viewer.key)
    asked = request.query.get("campaign", "")
    if asked:
        return asked, vs.issuer_campaign(api, viewer, asked)
    return next(iter(sorted(own.items())), None)


async def vouchers_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    try:
        chosen = _chosen(api, request, viewer)
        wanted = vs.parse_status(request.query.get("status"))
        after = request.query.get("after") or None
        found = None if chosen is None else vs.report(api, chosen[0], chosen[1])
        page = (
            None
            if found is None or chosen is None
            else vs.page_of(found, chosen[0], wanted, after, limits.UI_VOUCHERS_PER_PAGE)
        )
    except ApiError as error:
        return dashboards.render(request, lang, "forbidden.html", error.status, viewer=viewer)
    return dashboards.render(
        request,
        lang,
        "commune_vouchers.html",
        viewer=viewer,
        campaigns=sorted(_own_campaigns(api, viewer.key)),
        chosen=None if chosen is None else chosen[0],
        wanted=wanted or "",
        page=page,
        statuses=vs.STATUSES,
        height=api.ledger.last_block().height,
    )


async def vouchers_csv(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    chosen = _chosen(api, request, viewer)
    if chosen is None:
        raise ApiError(404, "no campaign of yours to export", slug="not-your-campaign")
    wanted = vs.parse_status(request.query.get("status"))
    found = vs.report(api, chosen[0], chosen[1])
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    shown = [item for item in found.items if wanted is None or item.status == wanted]
    for item in shown[: limits.HTTP_CSV_ROWS_MAX]:
        writer.writerow(
            [
                item.holder,
                item.allocated_cents,
                item.balance_cents,
                item.status,
                item.replaced_by or "",
            ]
        )
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="relance-vouchers.csv"',
            "Cache-Control": "no-store",
        },
    )
