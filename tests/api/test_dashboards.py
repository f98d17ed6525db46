"""The dashboards, server-side: login once per link, pages by role, formats, CSV export."""

from __future__ import annotations

import csv
import io
import re

import pytest

from node.api import dashboards
from node.api.tokens import make_balance_code
from node.ledger.tx import Kind
from node.text.fmt import date, money, translate
from tests.api.harness import HOUR_MS, HttpResult, LiveNode
from tests.api.world import CAMPAIGN, World

NBSP = "\u00a0"


def cookie(response: HttpResult) -> str:
    """The ``name=value`` of the (non-empty) cookie a response sets."""
    lines = response.headers["set-cookie"].split("\n")
    return next(line.split(";")[0] for line in lines if '=""' not in line.split(";")[0])


_SESSIONS: dict[tuple[str, str], str] = {}


def session(node: LiveNode, token: str) -> str:
    """The ``relance_session=...`` cookie the node gives in exchange for ``token`` (once:
    the token is spent by it, so the cookie is kept for the next page)."""
    if (node.url, token) not in _SESSIONS:
        logged_in = node.http("GET", f"/ui/login?token={token}")
        assert logged_in.status == 303, logged_in.body
        _SESSIONS[node.url, token] = cookie(logged_in)
    return _SESSIONS[node.url, token]


def page(node: LiveNode, path: str, token: str, lang: str = "fr") -> HttpResult:
    return node.http(
        "GET", path, headers={"Cookie": f"{session(node, token)}; relance_lang={lang}"}
    )


def test_belgian_formats() -> None:
    assert money(123_456) == f"1{NBSP}234,56{NBSP}€"
    assert money(5) == f"0,05{NBSP}€"
    assert money(-100_000_000) == f"-1{NBSP}000{NBSP}000,00{NBSP}€"
    assert date(1_795_953_600_000) == "29/11/2026"  # noon UTC is 13:00 in Brussels


def test_every_transaction_kind_has_a_name_in_both_languages() -> None:
    for kind in Kind:
        fr, en = (translate(lang, f"kind.{kind.name.lower()}") for lang in ("fr", "en"))
        assert fr != f"kind.{kind.name.lower()}" and en and fr


def test_a_login_link_works_once(world: World) -> None:
    node = world.node
    token = node.token(world.bakery.signer)
    first = node.http("GET", f"/ui/login?token={token}")
    assert first.status == 303 and first.headers["location"] == "/ui/merchant"
    assert cookie(first).startswith("relance_session=")
    assert token not in first.headers["set-cookie"]  # the cookie is a session id, not the link
    assert "HttpOnly; Max-Age=" in first.headers["set-cookie"]
    assert "Path=/; SameSite=Strict" in first.headers["set-cookie"]
    landed = node.http("GET", "/ui/merchant", headers={"Cookie": cookie(first)})
    assert landed.status == 200 and "Boulangerie du Marché" in landed.body.decode()
    again = node.http("GET", f"/ui/login?token={token}")
    assert again.status == 401 and "already used" in again.body.decode()
    expired = node.token(world.bakery.signer, ttl_ms=1_000, issued_ms=1_000)
    refused = node.http("GET", f"/ui/login?token={expired}")
    assert refused.status == 401 and "expired" in refused.body.decode()


def test_each_role_has_its_page_and_only_its_page(world: World) -> None:
    node = world.node
    namur = node.token(world.namur.signer)
    assert page(node, "/ui/commune", namur).status == 200
    assert page(node, "/ui/merchant", namur).status == 403
    assert page(node, "/ui/commune", node.token(world.bakery.signer)).status == 403
    assert page(node, "/ui/auditor", node.token(world.auditor.signer)).status == 200
    assert page(node, "/ui/auditor", node.token(world.alice.signer)).status == 403
    anonymous = node.http("GET", "/ui/commune")
    assert anonymous.status == 200 and 'name="token"' in anonymous.body.decode()  # the login form


def test_the_commune_page_shows_campaign_totals_in_both_languages(world: World) -> None:
    node = world.node
    token = node.token(world.namur.signer)
    campaign = node.get(f"/v1/campaigns/{CAMPAIGN}").json()
    html = page(node, "/ui/commune", token).body.decode()
    assert '<html lang="fr">' in html and "Chèques relance Namur" in html
    assert money(int(str(campaign["spent_cents"]))) in html
    assert money(1_000_000) in html  # funded: 10 000,00 €
    assert "Dépensé" in html and "Exporter en CSV" in html
    english = page(node, "/ui/commune", token, "en").body.decode()
    assert '<html lang="en">' in english and "Spent" in english and "Export as CSV" in english


def test_the_commune_filters_and_exports_rows_that_match_the_ledger(world: World) -> None:
    node = world.node
    token = node.token(world.namur.signer)
    filtered = page(node, "/ui/commune?kind=pay", token).body.decode()
    kinds = set(re.findall(r"<td>(Paiement|Transfert|Attribution|Provision)</td>", filtered))
    assert kinds == {"Paiement"}
    exported = page(node, "/ui/commune/transactions.csv", token)
    assert exported.content_type == "text/csv"
    rows = list(csv.DictReader(io.StringIO(exported.body.decode())))
    ledger: list[dict[str, object]] = []
    cursor = None
    bearer = node.token(world.namur.signer, ttl_ms=HOUR_MS - 1)  # not the one spent on login
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        body = node.get(f"/v1/transactions?limit=500{suffix}", bearer).json()
        ledger += body["items"]  # type: ignore[arg-type]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [r["tx_id"] for r in rows] == [i["tx_id"] for i in ledger]
    for row, item in zip(rows, ledger, strict=True):
        assert row["kind"] == item["kind"] and int(row["height"]) == item["height"]
        assert row["amount_cents"] == (
            "" if item.get("amount_cents") is None else str(item["amount_cents"])
        )
    pays = list(
        csv.DictReader(
            io.StringIO(page(node, "/ui/commune/transactions.csv?kind=pay", token).body.decode())
        )
    )
    assert pays and {r["kind"] for r in pays} == {"pay"}


def test_a_paper_voucher_reaches_its_balance_with_the_code_on_its_letter(world: World) -> None:
    node = world.node
    code = make_balance_code(world.voucher.signer, world.chain, world.campaign_end_ms)
    opened = node.http("GET", f"/b/{code}")
    assert opened.status == 303 and opened.headers["location"] == "/ui/holder"
    landed = node.http("GET", "/ui/holder", headers={"Cookie": cookie(opened)})
    html = landed.body.decode()
    assert landed.status == 200 and money(5_000) in html
    assert "Chèques relance Namur" in html
    # The code opens that voucher's page only.
    other = node.http("GET", "/ui/commune", headers={"Cookie": f"relance_balance={code}"})
    assert other.status == 403
    assert node.get("/v1/session").status == 401
    forged = node.http("GET", f"/b/{code[:-6]}AAAAAA")
    assert forged.status == 401


def test_the_commune_pages_through_its_merchants_and_links_its_analytics(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashboards, "MERCHANTS_SHOWN", 2)
    node, token = world.node, world.node.token(world.namur.signer)
    first = page(node, "/ui/commune", token).body.decode()
    assert 'href="/ui/commune/analytics"' in first
    names = {"Boulangerie du Marché", "Brasserie de la Place", "Grossiste Alimentaire"}
    shown = {n for n in names if f'<th scope="row">{n}</th>' in first}
    assert len(shown) == 2 and "Librairie Liège" not in first  # Namur's own, two a page
    more = re.search(r'href="\?merchants=([0-9a-f]{64})#merchants-title"', first)
    assert more, "a link to the next merchants"
    second = page(node, f"/ui/commune?merchants={more.group(1)}", token).body.decode()
    rest = {n for n in names if f'<th scope="row">{n}</th>' in second}
    assert rest == names - shown
    assert "?merchants=" not in second  # the last page
    assert page(node, "/ui/commune?merchants=zz", token).status == 400
