"""Dashboards served by the node: server-rendered (jinja2), a little JavaScript.

Pages, each for one role (the role is read from the ledger, as for the API):
commune (``/ui/commune``: campaigns and totals, a chart, transactions with
filters, merchants, CSV export), merchant (``/ui/merchant``), holder
(``/ui/holder``; a paper voucher reaches it through ``/b/<balance code>``),
auditor (``/ui/auditor``; the bank sees it too), bank (``/ui/bank``, in
``node.api.bank_page``: the bank's login lands there). ``/ui/login`` exchanges a
login link (or a pasted API token) once for a random session id, kept in an
HttpOnly, SameSite=Strict cookie (Secure over TLS); ``node.api.logins``.
``static/live.js`` listens to the event stream and refreshes the page's live
region after each visible commit.

The chart is a small SVG drawn here on the server (no chart library to pin
or ship); the same numbers are in the table next to it.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import jinja2
from aiohttp import web

from node.api import citizen, inputs, tokens, views
from node.api import models as m
from node.api.access import (
    BALANCE_COOKIE,
    OLD_TOKEN_COOKIE,
    SESSION_COOKIE,
    Role,
    Scope,
    Viewer,
    role_of,
)
from node.api.inputs import parse_kinds
from node.api.logins import Refusal as LoginRefusal
from node.api.offload import Memo, offload_of, stream
from node.api.page_parts import PageParts
from node.api.problems import ApiError
from node.api.ratelimit import served_over_tls
from node.consensus.types import Block
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import DictView, View
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES
from node.protocol.errors import ApiInvariantBroken
from node.store.blockstore import BlockStore
from node.text import fmt
from node.text.escape import csv_writer
from node.views.history_index import HistoryIndex, parse_history

STATIC_DIR: Final = Path(__file__).parent / "static"
STATIC_PREFIX: Final = "/ui/static/"  # the style sheet and scripts, the same for every reader
LANG_COOKIE: Final = "relance_lang"
HOME_OF: Final = {
    Role.HOLDER: "/ui/holder",
    Role.MERCHANT: "/ui/merchant",
    Role.ISSUER: "/ui/commune",
    Role.AUDITOR: "/ui/auditor",
    Role.BANK: "/ui/bank",  # node.api.bank_page
}
PAGE_ITEMS: Final = 50
MERCHANTS_SHOWN: Final = limits.UI_MERCHANTS_PER_PAGE
PAYOUT_OPENERS: Final = frozenset({t.Kind.REDEEM, t.Kind.PAY, t.Kind.PAY_AUTHORIZED})
PAYOUT_READERS: Final = frozenset({int(t.Kind.SETTLE), int(t.Kind.RETURN_PAYOUT)})  # show payouts

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("node.api", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
)
_env.filters["money"] = fmt.money
_env.filters["group"] = fmt.group
_env.filters["date"] = fmt.date
_env.filters["last_day"] = fmt.last_day
_env.filters["datetime"] = fmt.datetime_text
_env.filters["short"] = fmt.short_key
_env.filters["iso"] = fmt.iso

_Page = Callable[[PageParts, web.Request, Viewer, fmt.Lang], Awaitable[web.StreamResponse]]


EXPORTS_KEY: Final = web.AppKey(
    "history_exports", Memo[tuple[Viewer, frozenset[t.Kind], str | None, bytes], bytes]
)
EXPORTS_KEPT: Final = 4  # transactions CSVs kept (up to ~25 MiB each), until the history grows


def add_routes(app: web.Application, api: PageParts) -> None:
    app[EXPORTS_KEY] = Memo(EXPORTS_KEPT)

    def bind(
        page: _Page, roles: frozenset[Role]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        return guarded(api, page, roles)

    def with_api(
        fn: Callable[[PageParts, web.Request], Awaitable[web.StreamResponse]],
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await fn(api, request)

        return handle

    app.router.add_get("/", _to_ui)
    app.router.add_get("/ui", with_api(_home))
    app.router.add_get("/ui/login", with_api(login))
    app.router.add_post("/ui/login", with_api(login))
    app.router.add_get("/ui/logout", with_api(logout))
    app.router.add_get("/b/{code}", with_api(balance_code))
    app.router.add_get("/ui/holder", bind(holder_page, frozenset(Role)))
    app.router.add_get("/ui/merchant", bind(merchant_page, frozenset({Role.MERCHANT})))
    app.router.add_get("/ui/commune", bind(commune_page, frozenset({Role.ISSUER})))
    app.router.add_get("/ui/commune/transactions.csv", bind(commune_csv, frozenset({Role.ISSUER})))
    app.router.add_get("/ui/auditor", bind(auditor_page, frozenset({Role.AUDITOR, Role.BANK})))
    app.router.add_static(STATIC_PREFIX.rstrip("/"), STATIC_DIR, show_index=False)


def language(request: web.Request) -> fmt.Lang:
    asked = request.query.get("lang") or request.cookies.get(LANG_COOKIE)
    if asked in fmt.LANGS:
        return "en" if asked == "en" else "fr"
    accept = request.headers.get("Accept-Language", "fr").lower()
    return "en" if accept.startswith("en") else "fr"


def render(
    request: web.Request, lang: fmt.Lang, template: str, status: int = 200, **context: object
) -> web.Response:
    def t(key: str) -> str:
        return fmt.translate(lang, key)

    html = _env.get_template(template).render(
        t=t, lang=lang, other_lang="en" if lang == "fr" else "fr", path=request.path, **context
    )
    response = web.Response(text=html, content_type="text/html", status=status)
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "frame-ancestors 'none'"
    )
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    if "lang" in request.query and request.query["lang"] in fmt.LANGS:
        response.set_cookie(LANG_COOKIE, lang, samesite="Strict", max_age=365 * 86_400)
    return response


def redirect(location: str) -> web.Response:
    headers = {"Location": location, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}
    return web.Response(status=303, headers=headers)


async def _to_ui(request: web.Request) -> web.StreamResponse:
    return redirect("/ui")


async def _home(api: PageParts, request: web.Request) -> web.StreamResponse:
    try:
        viewer = api.viewers.of(request)
    except ApiError:
        viewer = None
    if viewer is None:
        return redirect("/ui/login")
    return redirect(HOME_OF[viewer.role] if viewer.scope is Scope.ACCOUNT else "/ui/holder")


def guarded(
    api: PageParts, page: _Page, roles: frozenset[Role]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A handler serving ``page`` to logged-in viewers of ``roles`` (for pages in other modules)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        return await _guard_page(api, request, page, roles)

    return handle


async def _guard_page(
    api: PageParts, request: web.Request, page: _Page, roles: frozenset[Role]
) -> web.StreamResponse:
    lang = language(request)
    try:
        viewer = api.viewers.of(request)
    except ApiError as error:
        return _login_form(request, lang, error.detail, 401)
    if viewer is None:
        return _login_form(request, lang, None, 200)
    if viewer.role not in roles or (viewer.scope is Scope.BALANCE and page is not holder_page):
        return render(request, lang, "forbidden.html", 403, viewer=viewer)
    return await page(api, request, viewer, lang)


guard_page: Final = _guard_page  # for the pages of other modules (node.api.bank_page)


# --- logging in -----------------------------------------------------------------------------


def _login_form(
    request: web.Request, lang: fmt.Lang, error: str | None, status: int
) -> web.Response:
    return render(request, lang, "login.html", status, error=error, viewer=None)


async def login(api: PageParts, request: web.Request) -> web.StreamResponse:
    """Exchange a login link (or an API token) once for a session id in a cookie."""
    lang = language(request)
    token: str | None
    if request.method == "POST":
        form = await request.post()
        value = form.get("token")
        token = value.strip() if isinstance(value, str) else None
    else:
        token = request.query.get("token")
    if not token:
        return _login_form(request, lang, None, 200)
    checked = tokens.check_login(token, api.chain_id, api.status.node_key, api.config.clock_ms())
    if isinstance(checked, tokens.TokenProblem):
        return _login_form(request, lang, checked.message, 401)
    role = _role(api, checked.account)
    if role is Role.HOLDER and api.ledger.store.get(r.holder_key(checked.account)) is None:
        return _login_form(request, lang, "this account has nothing on this ledger", 401)
    session_id = api.logins.exchange(checked)
    if isinstance(session_id, LoginRefusal):
        status = LOGIN_REFUSAL_STATUS[session_id]
        response = _login_form(request, lang, session_id.value, status)
        if status != 401:
            response.headers["Retry-After"] = str(LOGIN_RETRY_AFTER_S)
        return response
    max_age = max(1, (checked.expires_ms - api.config.clock_ms()) // 1000)
    return _credential(api, request, HOME_OF[role], SESSION_COOKIE, session_id, max_age)


def _credential(
    api: PageParts, request: web.Request, home: str, name: str, value: str, max_age: int | None
) -> web.Response:
    """A redirect to ``home`` that sets the credential cookie ``name`` (HttpOnly,
    SameSite=Strict, Secure over TLS) and clears every other credential cookie."""
    response = redirect(home)
    secure = served_over_tls(request, api.config.trust_forwarded_for)
    response.set_cookie(
        name, value, httponly=True, samesite="Strict", path="/", secure=secure, max_age=max_age
    )
    for other in (SESSION_COOKIE, OLD_TOKEN_COOKIE, BALANCE_COOKIE):
        if other != name:
            response.del_cookie(other, path="/")
    return response


LOGIN_REFUSAL_STATUS: Final = {
    LoginRefusal.SPENT: 401,
    LoginRefusal.ACCOUNT_FULL: 429,
    LoginRefusal.FULL: 503,
}
LOGIN_RETRY_AFTER_S: Final = 60


def _role(api: PageParts, key: bytes) -> Role:
    return role_of(api.ledger.store, key)


async def logout(api: PageParts, request: web.Request) -> web.StreamResponse:
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        api.logins.end(session_id)
    response = redirect("/ui/login")
    for name in (SESSION_COOKIE, OLD_TOKEN_COOKIE, BALANCE_COOKIE):
        response.del_cookie(name, path="/")
    return response


async def balance_code(api: PageParts, request: web.Request) -> web.StreamResponse:
    code = request.match_info["code"]
    lang = language(request)
    voucher = tokens.check_balance_code(code, api.chain_id, api.config.clock_ms())
    if isinstance(voucher, tokens.TokenProblem):
        return _login_form(request, lang, voucher.message, 401)
    return _credential(api, request, "/ui/holder", BALANCE_COOKIE, code, None)


# --- pages --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Row:
    """A transaction as one table row, from the reader's side."""

    tx: m.Transaction
    signed_cents: int  # + received, - sent, 0 neutral
    counterparty: str
    counterparty_name: str | None = None  # a merchant's or commune's name; its key on demand


def rows(items: list[m.Transaction], me: bytes, view: View | None = None) -> list[Row]:
    """Table rows from ``me``'s side; with ``view``, counterparties named from the ledger."""
    mine = me.hex()
    names: dict[str, str | None] = {}
    out = []
    for tx in items:
        cents = tx.amount_cents or 0
        if tx.kind in ("pay", "pay_authorized"):
            sign = 1 if tx.merchant == mine else -1 if tx.holder == mine else 0
            other = tx.holder if tx.merchant == mine else tx.merchant
        elif tx.kind == "refund":
            sign = 1 if tx.holder == mine else -1 if tx.merchant == mine else 0
            other = tx.merchant if tx.holder == mine else tx.holder
        elif tx.kind == "transfer":
            sign = -1 if tx.sender == mine else 1 if tx.merchant == mine else 0
            other = tx.merchant if tx.sender == mine else tx.sender
        elif tx.kind == "allocate":
            sign, other = (1 if tx.holder == mine else 0), tx.sender
        elif tx.kind in ("redeem",):
            sign, other = (-1 if tx.sender == mine else 0), ""
        else:
            sign, other = 0, tx.sender if tx.sender != mine else ""
        other = other or ""
        if view is not None and other and other not in names:
            names[other] = views.party_name(view, bytes.fromhex(other))
        out.append(Row(tx, sign * cents, other, names.get(other)))
    return out


def _campaign_names(api: PageParts) -> dict[str, r.Campaign]:
    prefix = r.campaign_key("")
    return {
        key[len(prefix) :].decode(): r.Campaign.decode(raw)
        for key, raw in api.ledger.store.iter_prefix(prefix)
    }


async def holder_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    account = views.account(api.ledger.store, viewer.key)
    page = api.reads.history(
        viewer, viewer.key, frozenset(), None, request.query.get("cursor"), PAGE_ITEMS
    )
    shops, filters = citizen.shops_for(api, request, viewer)
    return render(
        request,
        lang,
        "holder.html",
        viewer=viewer,
        account=account,
        campaigns=_campaign_names(api),
        rows=rows(page.items, viewer.key, api.ledger.store),
        next_cursor=page.next_cursor,
        height=api.ledger.last_block().height,
        shops=shops,
        filters=filters,
    )


async def merchant_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    account = views.account(api.ledger.store, viewer.key)
    page = api.reads.history(
        viewer, viewer.key, frozenset(), None, request.query.get("cursor"), PAGE_ITEMS
    )
    payouts = await _newest_payouts(api, viewer.key)
    totals = api.gate.index.merchant_totals(viewer.key)
    received, refunded = totals.received_cents, totals.refunded_cents
    all_rows = rows(page.items, viewer.key, api.ledger.store)
    issuers = {key.hex(): r.Issuer.decode(raw).name for key, raw in _issuers(api)}
    return render(
        request,
        lang,
        "merchant.html",
        viewer=viewer,
        account=account,
        rows=all_rows,
        next_cursor=page.next_cursor,
        payouts=payouts,
        received=received,
        refunded=refunded,
        issuers=issuers,
        height=api.ledger.last_block().height,
    )


async def _newest_payouts(api: PageParts, merchant: bytes) -> list[m.Payout]:
    """A merchant's newest payouts, newest first. A payout is named by the transaction
    that opened it: a redemption, or a payment while the merchant redeems automatically.
    The loop is let go every ``HTTP_EXPORT_PAGE_ITEMS`` transactions read."""
    found: list[m.Payout] = []
    refs, _ = api.gate.index.history(
        merchant, None, PAYOUT_OPENERS, limits.UI_PAYOUT_SCAN_MAX, limits.UI_PAYOUT_SCAN_MAX
    )
    for count, ref in enumerate(refs, 1):
        if count % limits.HTTP_EXPORT_PAGE_ITEMS == 0:
            await asyncio.sleep(0)
        signed, _ = api.reads.signed_at(ref.height, ref.index)
        raw = api.ledger.store.get(r.payout_key(signed.tx_id))
        if raw is not None:
            found.append(views.payout(signed.tx_id, r.Payout.decode(raw)))
            if len(found) == limits.UI_PAYOUTS_SHOWN:
                break
    return found


def _issuers(api: PageParts) -> list[tuple[bytes, bytes]]:
    prefix = r.issuer_key(b"")
    return [(key[len(prefix) :], raw) for key, raw in api.ledger.store.iter_prefix(prefix)]


issuers: Final = _issuers


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    spent: int
    outstanding: int
    budget: int
    y: int
    spent_w: float
    outstanding_w: float
    budget_w: float


def chart(campaigns: list[m.Campaign], width: float = 560.0) -> list[Bar]:
    top = max([c.spent_cents + c.outstanding_cents + c.budget_cents for c in campaigns] or [1]) or 1
    bars = []
    for n, c in enumerate(campaigns):
        scale = width / top
        bars.append(
            Bar(
                c.name,
                c.spent_cents,
                c.outstanding_cents,
                c.budget_cents,
                28 * n + 4,
                c.spent_cents * scale,
                c.outstanding_cents * scale,
                c.budget_cents * scale,
            )
        )
    return bars


async def commune_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    now = api.ledger.last_block().time_ms
    campaigns = [
        views.campaign(code, c, now)
        for code, c in _campaign_names(api).items()
        if c.issuer == viewer.key
    ]
    issuer_raw = api.ledger.store.get(r.issuer_key(viewer.key))
    issuer = None if issuer_raw is None else r.Issuer.decode(issuer_raw)
    kinds = parse_kinds(request)
    chosen_campaign = request.query.get("campaign") or None
    page = api.reads.history(
        viewer, viewer.key, kinds, chosen_campaign, request.query.get("cursor"), PAGE_ITEMS
    )
    merchants, merchants_after = _merchants_of(api, viewer.key, request.query.get("merchants"))
    query = "&".join(
        [f"kind={k.name.lower()}" for k in sorted(kinds)]
        + ([f"campaign={chosen_campaign}"] if chosen_campaign else [])
    )
    return render(
        request,
        lang,
        "commune.html",
        viewer=viewer,
        issuer=issuer,
        campaigns=campaigns,
        bars=chart(campaigns),
        rows=rows(page.items, viewer.key, api.ledger.store),
        next_cursor=page.next_cursor,
        merchants=merchants,
        merchants_after=merchants_after,
        kinds=[k.name.lower() for k in kinds],
        all_kinds=_KIND_NAMES,
        chosen_campaign=chosen_campaign,
        query=query,
        height=api.ledger.last_block().height,
    )


def _merchants_of(
    api: PageParts, issuer: bytes, after: str | None
) -> tuple[list[tuple[str, r.Merchant]], str | None]:
    """A page of the issuer's merchants in key order (after the key ``after``, in hex),
    and the key to continue after (None: the last page)."""
    prefix = r.merchant_key(b"")
    start = None
    if after is not None:
        raw = inputs.parse_hex(after, PUBLIC_KEY_BYTES)
        if raw is None:
            raise ApiError(400, "merchants= is a merchant's key", slug="bad-cursor")
        start = prefix + raw
    found: list[tuple[str, r.Merchant]] = []
    for key, raw in api.ledger.store.iter_prefix(prefix, start):
        merchant = r.Merchant.decode(raw)
        if merchant.issuer != issuer:
            continue
        if len(found) == MERCHANTS_SHOWN:
            return found, found[-1][0]
        found.append((key[len(prefix) :].hex(), merchant))
    return found, None


_KIND_NAMES: Final = tuple(k.name.lower() for k in t.Kind)
CSV_COLUMNS: Final = (
    "tx_id",
    "height",
    "index",
    "time",
    "kind",
    "sender",
    "holder",
    "merchant",
    "campaign",
    "amount_cents",
    "memo",
)


async def commune_csv(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    """The commune's history as CSV: the rows located and their blocks read in a thread
    (one snapshot of the store), the rows written in a worker process, then streamed."""
    kinds = parse_kinds(request)
    campaign = request.query.get("campaign") or None
    offload = offload_of(request)

    async def make() -> bytes:
        async with offload.slot():
            gathered = await offload.read(
                _gather_history,
                api.gate.index,
                api.ledger.store,
                api.chain_id,
                viewer,
                kinds,
                campaign,
            )
            return await offload.compute(history_csv, gathered)

    newest = api.gate.index.raw_history(viewer.key, 1)  # in the key: a new row, a new export
    key = (viewer, kinds, campaign, newest[0][0] if newest else b"")
    body = await request.app[EXPORTS_KEY].get(key, api.ledger.store.height(), make)
    return await stream(
        request,
        body,
        "text/csv",
        charset="utf-8",
        headers={"Content-Disposition": 'attachment; filename="relance-transactions.csv"'},
    )


@dataclass(frozen=True, slots=True)
class HistoryRows:
    """The newest ``HTTP_CSV_ROWS_MAX`` transactions of ``viewer``'s history as plain
    data for a worker process: the index's entries, the blocks up to ``top`` and the
    payout records that settlements and returns are shown with."""

    chain_id: str
    viewer: Viewer
    kinds: frozenset[t.Kind]
    campaign: str | None
    top: int
    entries: Sequence[tuple[bytes, bytes]]
    blocks: Sequence[bytes]
    payouts: Mapping[bytes, bytes]


def _gather_history(
    index: HistoryIndex,
    store: BlockStore,
    chain_id: str,
    viewer: Viewer,
    kinds: frozenset[t.Kind],
    campaign: str | None,
) -> HistoryRows:
    """In a reading thread: the entries (the index) and blocks (one snapshot), read by
    LevelDB's iterators rather than Python code, which would hold the interpreter."""
    snapshot = store.read_snapshot()
    try:
        top = snapshot.height()
        entries = index.raw_history(viewer.key, limits.HTTP_CSV_ROWS_MAX)
        blocks = tuple(snapshot.blocks(1, top))
        if sum(map(len, blocks)) > limits.OFFLOAD_SNAPSHOT_BYTES_MAX:
            raise ApiError(
                503, "the history is more than one export reads at once", slug="history-too-large"
            )
        payouts: dict[bytes, bytes] = {}
        if any(value[0] in PAYOUT_READERS for _, value in entries):
            payouts = dict(snapshot.iter_prefix(r.payout_key(b"")))
    finally:
        snapshot.close()
    if len(blocks) != top:
        raise ApiInvariantBroken(f"blocks are missing below {top}")
    return HistoryRows(chain_id, viewer, kinds, campaign, top, entries, blocks, payouts)


def history_csv(rows: HistoryRows) -> bytes:
    """In a worker process: the CSV of ``rows``, as their viewer may see them."""
    view = DictView(rows.payouts)
    decoded: dict[int, Block] = {}
    out = io.StringIO()
    writer = csv_writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for ref in parse_history(rows.viewer.key, rows.entries, rows.kinds):
        if ref.height > rows.top:
            continue  # indexed after the snapshot was taken
        block = decoded.get(ref.height)
        if block is None:
            block = decoded[ref.height] = Block.decode(rows.blocks[ref.height - 1])
        signed = t.decode_tx(block.txs[ref.index], rows.chain_id)
        if isinstance(signed, Result):
            raise ApiInvariantBroken(f"a committed transaction does not decode at {ref.height}")
        tx = views.transaction(
            signed, ref.height, ref.index, block.header.time_ms, rows.viewer, view
        )
        if rows.campaign is not None and tx.campaign != rows.campaign:
            continue
        writer.writerow(
            [
                tx.tx_id,
                tx.height,
                tx.index,
                fmt.iso(tx.time_ms),
                tx.kind,
                tx.sender,
                tx.holder or "",
                tx.merchant or "",
                tx.campaign or "",
                "" if tx.amount_cents is None else tx.amount_cents,
                tx.memo or "",
            ]
        )
    return out.getvalue().encode()


async def auditor_page(
    api: PageParts, request: web.Request, viewer: Viewer, lang: fmt.Lang
) -> web.StreamResponse:
    ledger = api.ledger
    last = ledger.last_block()
    latest = []
    for height in range(last.height, max(0, last.height - 10), -1):
        block = api.reads.block(height)
        certificate = api.reads.certificate(height)
        if block is not None and certificate is not None:
            latest.append(
                (views.header(block.header, len(block.txs)), views.certificate(certificate))
            )
    return render(
        request,
        lang,
        "auditor.html",
        viewer=viewer,
        chain_id=api.chain_id,
        last=last,
        block_hash=last.block_hash.hex(),
        state_root=ledger.tree.root().hex(),
        validators=ledger.validator_set(last.height + 1).validators,
        latest=latest,
        mempool=len(ledger.mempool),
        peers=api.status.peers(),
        height=last.height,
    )
