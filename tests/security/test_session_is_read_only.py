"""A dashboard session reads; it never moves money (S7). The one route that changes
where money goes without a signed transaction, a merchant's payout IBAN
(``POST /v1/settlement/iban``), takes the merchant's own token (the wallet), never the
dashboard's session cookie: a session left open on a shop's computer, or taken from
it, cannot redirect the shop's payouts."""

from __future__ import annotations

import json

from node.api import tokens
from tests.api.harness import VALIDATOR
from tests.api.world import World
from tests.security.test_login_links import log_in, session_cookie

MASKED = b"BE71 **** **** 6769"  # how the route shows the IBAN below
BODY = json.dumps({"iban": "BE71096123456769", "salt": "", "schedule": "daily"}).encode()


def test_a_merchant_s_session_cannot_change_its_iban(secure_world: World) -> None:
    node, shop = secure_world.node, secure_world.brasserie
    link = tokens.make_token(
        shop.signer, node.genesis.chain_id, VALIDATOR.public_key, node.wall_ms,
        3_600_000 - 13, tokens.LINK_KIND,
    )  # fmt: skip
    cookie = session_cookie(log_in(node, link)).split(";")[0]
    assert node.http("GET", "/ui/merchant", headers={"Cookie": cookie}).status == 200
    refused = node.http("POST", "/v1/settlement/iban", BODY, headers={"Cookie": cookie})
    assert refused.status == 403, refused.body[:300]
    assert str(refused.json()["type"]).endswith("/token-required")
    seen = node.http("GET", "/v1/settlement/iban", headers={"Cookie": cookie})
    assert seen.status in (200, 404) and MASKED not in seen.body  # nothing was registered
    with_token = node.http("POST", "/v1/settlement/iban", BODY, token=node.token(shop.signer))
    assert with_token.status == 200, with_token.body[:300]
    assert MASKED in node.http("GET", "/v1/settlement/iban", headers={"Cookie": cookie}).body
