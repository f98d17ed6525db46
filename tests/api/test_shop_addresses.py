"""A shop's address (transaction protocol 3) wherever a node shows it: the citizen's
"where to spend", the commune's merchant list, the account and directory routes,
their OpenAPI schema. An address is text a commune typed: escaped like a name.

Its own node (the session world's merchants are counted by other tests): the test
world, plus a Namur shop whose address is made of markup, quotes and formula
characters, all of which the name rule allows."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from node.ledger import tx as t
from node.protocol.crypto import digest
from tests.api.harness import Account, LiveNode, key
from tests.api.test_citizen_page import letter_page, open_letter, shop_names
from tests.api.test_dashboards import page
from tests.api.world import BAKERY_ADDRESS, World, seed

HOSTILE = t.Address('<img src=x onerror="alert(1)"> 7', "=1+1", "Namur & <b>Co</b>")


@pytest.fixture(scope="module")
def hostile_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[World, Account]]:
    node = LiveNode(Path(tmp_path_factory.mktemp("address-node")))
    try:
        world = seed(node)
        shop = Account(key("hostile-shop"))
        register = t.RegisterMerchant(
            shop.pk, "Fleurs <i>Iris</i>", "47.76", "NAM-1", digest(b"iban-h"), False, HOSTILE
        )
        node.commit(world.namur.sign(world.chain, register))
        yield world, shop
    finally:
        node.close()


def _shown(text: str) -> str:
    """``text`` as the pages' templates escape it (markupsafe: quotes as ``&#34;``, ``&#39;``)."""
    return str(escape(text))


def test_the_citizen_sees_the_address_escaped_and_finds_the_shop_by_it(
    hostile_world: tuple[World, Account],
) -> None:
    world, _ = hostile_world
    jar = open_letter(world)
    html = letter_page(world.node, jar)
    assert "Fleurs &lt;i&gt;Iris&lt;/i&gt;" in shop_names(html)
    line = f"{HOSTILE.street}, {HOSTILE.postcode} {HOSTILE.town}"
    assert _shown(line) in html
    assert "<img" not in html and "<b>Co" not in html
    found = letter_page(world.node, jar, "?q=%26+%3Cb%3Eco")  # "& <b>co" in the town
    assert shop_names(found) == ["Fleurs &lt;i&gt;Iris&lt;/i&gt;"]


def test_the_commune_lists_its_merchants_with_their_address(
    hostile_world: tuple[World, Account],
) -> None:
    world, _ = hostile_world
    token = world.node.token(world.namur.signer)
    html = page(world.node, "/ui/commune", token).body.decode()
    cells = re.findall(r'<td data-testid="merchant-address">([^<]*)</td>', html)
    bakery = f"{BAKERY_ADDRESS.street}, {BAKERY_ADDRESS.postcode} {BAKERY_ADDRESS.town}"
    assert _shown(bakery) in cells
    assert _shown(f"{HOSTILE.street}, {HOSTILE.postcode} {HOSTILE.town}") in cells
    assert "" in cells  # the wholesaler: no address registered, an empty cell
    assert "<img" not in html and ">Adresse</th>" in html
    english = page(world.node, "/ui/commune", token, "en").body.decode()
    assert ">Address</th>" in english


def test_the_api_gives_the_address_or_leaves_it_out(hostile_world: tuple[World, Account]) -> None:
    world, shop = hostile_world
    node = world.node
    expected = {"street": HOSTILE.street, "postcode": HOSTILE.postcode, "town": HOSTILE.town}
    account = node.get(f"/v1/accounts/{shop.pk.hex()}").json()
    assert account["merchant"]["address"] == expected  # type: ignore[index]
    one = node.get(f"/v1/merchants/{shop.pk.hex()}").json()
    assert one["address"] == expected
    supplier = node.get(f"/v1/merchants/{world.supplier.pk.hex()}").json()
    assert "address" not in supplier  # none registered: the optional field is left out
    schema = node.get("/v1/openapi.json").json()
    components = schema["components"]["schemas"]  # type: ignore[index]
    assert set(components["ShopAddress"]["required"]) == {"street", "postcode", "town"}  # type: ignore[index]
