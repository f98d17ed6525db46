"""Someone's own data is never kept by a cache (S6): every answer to a request that
carried a token or a dashboard cookie says ``Cache-Control: no-store``, so neither a
shared proxy nor the browser's history on a shared computer keeps a citizen's balance,
a commune's voucher list or the bank's payouts after the session ends. Public answers
and the static files may still be cached."""

from __future__ import annotations

import pytest

from node.api import tokens
from tests.api.harness import VALIDATOR
from tests.api.world import World
from tests.security.test_login_links import log_in, session_cookie

API_ROUTES = ["/v1/session", "/v1/accounts/{alice}", "/v1/accounts/{alice}/transactions"]
PAGES = {  # page -> who opens it
    "/ui/holder": "alice",
    "/ui/commune/vouchers": "namur",
    "/ui/commune/vouchers.csv": "namur",
    "/ui/commune/transactions.csv": "namur",
    "/ui/bank": "bank",
    "/ui/bank/payouts.csv": "bank",
}


@pytest.mark.parametrize("route", API_ROUTES)
def test_an_answer_to_a_token_is_never_cached(secure_world: World, route: str) -> None:
    node = secure_world.node
    path = route.format(alice=secure_world.alice.pk.hex())
    answer = node.get(path, node.token(secure_world.alice.signer))
    assert answer.status == 200, answer.body[:200]
    assert answer.headers.get("cache-control") == "no-store", answer.headers


@pytest.mark.parametrize("route", ["/v1/analytics/export.csv", "/v1/analytics/export.parquet"])
def test_a_streamed_answer_to_a_token_is_never_cached(secure_world: World, route: str) -> None:
    node = secure_world.node
    answer = node.get(route, node.token(secure_world.namur.signer))
    assert answer.status == 200, answer.body[:200]
    assert answer.headers.get("transfer-encoding") == "chunked"  # made off the loop, streamed
    assert answer.headers.get("cache-control") == "no-store", answer.headers


@pytest.fixture(scope="module")
def cookies(secure_world: World) -> dict[str, str]:
    """A dashboard session of each reader of ``PAGES`` (a login link spent once each)."""
    node, found = secure_world.node, {}
    for name in set(PAGES.values()):
        link = tokens.make_token(
            getattr(secure_world, name).signer, node.genesis.chain_id, VALIDATOR.public_key,
            node.wall_ms, 3_600_000 - 7, tokens.LINK_KIND,
        )  # fmt: skip
        found[name] = session_cookie(log_in(node, link)).split(";")[0]
    return found


@pytest.mark.parametrize("page", sorted(PAGES))
def test_a_dashboard_page_is_never_cached(
    secure_world: World, cookies: dict[str, str], page: str
) -> None:
    answer = secure_world.node.http("GET", page, headers={"Cookie": cookies[PAGES[page]]})
    assert answer.status == 200, answer.body[:200]
    assert answer.headers.get("cache-control") == "no-store", answer.headers


def test_public_answers_and_static_files_keep_their_caching(secure_world: World) -> None:
    node = secure_world.node
    assert "cache-control" not in node.get("/v1/status").headers
    style = node.http("GET", "/ui/static/style.css", headers={"Cookie": "relance_session=x"})
    assert style.status == 200 and "cache-control" not in style.headers
