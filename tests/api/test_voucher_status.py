"""Voucher status per allocated key, for the commune that issued them."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.api.tokens import make_balance_code
from node.api.voucher_status import STATUSES, Status, status
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol import limits
from node.protocol.crypto import PublicKey
from tests.api.harness import Account, HttpResult, LiveNode, key
from tests.api.test_dashboards import cookie, page
from tests.api.world import CAMPAIGN, World, seed

SHORT = "namur-court"


@dataclass
class Scene:
    world: World
    used: Account
    lost: Account
    replacement: Account
    kept: Account  # short campaign, money left after its end
    spender: Account  # short campaign, spent it all


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    node = LiveNode(Path(tmp_path_factory.mktemp("voucher-status")))
    try:
        world = seed(node)
        chain, namur = world.chain, world.namur
        used, lost, replacement, kept, spender = (
            Account(key(n)) for n in ("vs-used", "vs-lost", "vs-new", "vs-kept", "vs-spender")
        )
        node.commit(
            namur.sign(
                chain,
                t.Allocate(
                    CAMPAIGN,
                    (t.Allocation(used.pk, 1_000, "NAM-1"), t.Allocation(lost.pk, 2_000, "NAM-2")),
                ),
            )
        )
        node.commit(
            used.sign(chain, t.Pay(CAMPAIGN, world.bakery.pk, 1_000, "")),
            lost.sign(chain, t.Pay(CAMPAIGN, world.bakery.pk, 500, "")),
        )
        node.commit(namur.sign(chain, t.Reissue(CAMPAIGN, lost.pk, replacement.pk)))
        # A campaign that ends four blocks from now (a block is one second).
        start = node.next_time_ms
        node.commit(
            namur.sign(
                chain,
                t.CreateCampaign(SHORT, "Court", (), ("47",), start - 1_000, start + 4_000, 10_000),
            )
        )
        node.commit(world.bank.sign(chain, t.Fund(SHORT, 100_000, "DEP-SHORT")))
        node.commit(
            namur.sign(
                chain,
                t.Allocate(
                    SHORT,
                    (t.Allocation(kept.pk, 3_000, "NAM-1"), t.Allocation(spender.pk, 700, "NAM-1")),
                ),
            )
        )
        node.commit(spender.sign(chain, t.Pay(SHORT, world.bakery.pk, 700, "")))
        node.run(node.make_block)
        node.run(node.make_block)  # now past the short campaign's end
        yield Scene(world, used, lost, replacement, kept, spender)
    finally:
        node.close()


def statuses(scene: Scene, code: str, query: str = "") -> dict[str, object]:
    node = scene.world.node
    answer = node.get(f"/v1/campaigns/{code}/vouchers{query}", node.token(scene.world.namur.signer))
    assert answer.status == 200, answer.body
    return answer.json()


def by_key(doc: dict[str, object]) -> dict[str, dict[str, object]]:
    items = doc["items"]
    assert isinstance(items, list)
    return {item["holder"]: item for item in items}


def test_each_status_as_the_ledger_has_it(scene: Scene) -> None:
    w = scene.world
    doc = statuses(scene, CAMPAIGN)
    items = by_key(doc)
    assert items[w.carol.pk.hex()]["status"] == "untouched"
    assert items[w.alice.pk.hex()]["status"] == "partly_used"
    assert items[scene.used.pk.hex()]["status"] == "used"
    lost = items[scene.lost.pk.hex()]
    assert lost["status"] == "reissued" and lost["replaced_by"] == scene.replacement.pk.hex()
    new = items[scene.replacement.pk.hex()]
    assert new == {"holder": scene.replacement.pk.hex(), "allocated_cents": 1_500,
                   "balance_cents": 1_500, "status": "untouched"}  # fmt: skip
    assert doc["counts"] == {"untouched": 3, "partly_used": 2, "used": 1, "reissued": 1,
                             "expired": 0}  # fmt: skip
    assert doc["complete"] is True and doc["next_cursor"] is None
    # Every balance is the ledger's.
    store = w.node.ledger.store
    for hexkey, item in items.items():
        raw = store.get(r.holder_key(bytes.fromhex(hexkey)))
        assert item["balance_cents"] == r.Holder.decode(raw).balance(CAMPAIGN)  # type: ignore[arg-type]


def test_a_campaign_past_its_end_or_closed_shows_expired_and_used(scene: Scene) -> None:
    w = scene.world
    items = by_key(statuses(scene, SHORT))
    assert items[scene.kept.pk.hex()]["status"] == "expired"
    assert items[scene.spender.pk.hex()]["status"] == "used"
    w.node.commit(w.namur.sign(w.chain, t.CloseCampaign(SHORT)))
    closed = statuses(scene, SHORT)
    items = by_key(closed)
    # Closing returned the money: what was left at closing is still shown, still expired.
    assert items[scene.kept.pk.hex()] == {"holder": scene.kept.pk.hex(), "allocated_cents": 3_000,
                                          "balance_cents": 3_000, "status": "expired"}  # fmt: skip
    assert items[scene.spender.pk.hex()]["status"] == "used"
    assert closed["counts"]["expired"] == 1 and closed["counts"]["used"] == 1  # type: ignore[index]


def test_filter_and_pages(scene: Scene) -> None:
    only = statuses(scene, CAMPAIGN, "?status=partly_used")
    assert {i["status"] for i in only["items"]} == {"partly_used"}  # type: ignore[union-attr]
    assert len(only["items"]) == 2  # type: ignore[arg-type]
    seen: list[str] = []
    cursor = ""
    while True:
        doc = statuses(scene, CAMPAIGN, f"?limit=2{cursor}")
        seen += [i["holder"] for i in doc["items"]]  # type: ignore[union-attr]
        if doc["next_cursor"] is None:
            break
        cursor = f"&cursor={doc['next_cursor']}"
    assert seen == sorted(by_key(statuses(scene, CAMPAIGN)))
    node = scene.world.node
    token = node.token(scene.world.namur.signer)
    assert node.get(f"/v1/campaigns/{CAMPAIGN}/vouchers?status=lost", token).status == 400
    assert node.get(f"/v1/campaigns/{CAMPAIGN}/vouchers?limit=0", token).status == 400


def test_only_the_issuing_commune_reads_its_vouchers(scene: Scene) -> None:
    w = scene.world
    node = w.node
    path = f"/v1/campaigns/{CAMPAIGN}/vouchers"
    assert node.get(path).status == 401
    for who in (w.liege, w.alice, w.bakery, w.auditor, w.bank):
        answer = node.get(path, node.token(who.signer))
        assert answer.status == 404, who
        assert answer.content_type == "application/problem+json"
    assert node.http("GET", path, headers={"Cookie": _letter_cookie(w)}).status == 404


def test_the_status_rule() -> None:
    live = r.Campaign(PublicKey(b"\x01" * 32), "C", (), (), 0, 1_000, 5_000, False,
                      0, 0, 0, 0, 0, 0, 0, 0)  # fmt: skip
    assert status(500, 500, False, live, 10) is Status.UNTOUCHED
    assert status(500, 600, False, live, 10) is Status.UNTOUCHED  # a refund after a payment
    assert status(500, 1, False, live, 10) is Status.PARTLY_USED
    assert status(500, 0, False, live, 10) is Status.USED
    assert status(500, 0, True, live, 10) is Status.REISSUED
    assert status(500, 500, False, live, 1_000) is Status.EXPIRED  # valid_until is exclusive
    assert status(500, 0, False, live, 1_000) is Status.USED
    closed = r.Campaign(live.issuer, "C", (), (), 0, 10**12, 5_000, True, 0, 0, 0, 0, 0, 0, 0, 0)
    assert status(500, 200, False, closed, 10) is Status.EXPIRED
    assert set(STATUSES) == {s.value for s in Status}


# --- the commune's dashboard page and its CSV ----------------------------------------------


def _ui(scene: Scene, path: str, who: Account, lang: str = "fr") -> HttpResult:
    """A page as ``who`` sees it, logged in the dashboards' own way."""
    return page(scene.world.node, path, scene.world.node.token(who.signer), lang)


def _letter_cookie(w: World) -> str:
    """The credential a letter's balance link leaves in the browser."""
    code = make_balance_code(w.voucher.signer, w.chain, w.campaign_end_ms)
    opened = w.node.http("GET", f"/b/{code}")
    assert opened.status == 303
    return cookie(opened)


def test_the_commune_page_counts_and_lists_its_vouchers(scene: Scene) -> None:
    w = scene.world
    home = _ui(scene, "/ui/commune", w.namur).body.decode()
    assert 'href="/ui/commune/vouchers"' in home
    answer = _ui(scene, f"/ui/commune/vouchers?campaign={CAMPAIGN}", w.namur)
    html = answer.body.decode()
    assert answer.status == 200 and "script-src 'self'" in answer.headers["content-security-policy"]
    assert re.search(r'data-testid="count-untouched">3<', html)
    assert re.search(r'data-testid="count-reissued">1<', html)
    assert f'data-holder="{scene.used.pk.hex()}" data-status="used"' in html
    english = _ui(scene, f"/ui/commune/vouchers?campaign={CAMPAIGN}&status=used", w.namur, "en")
    text = english.body.decode()
    assert "Partly used" in text and re.findall(r'data-status="(\w+)">\s*<td>', text) == ["used"]


def test_the_commune_page_pages_through_keys(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(limits, "UI_VOUCHERS_PER_PAGE", 4)
    seen: list[str] = []
    path = f"/ui/commune/vouchers?campaign={CAMPAIGN}"
    while True:
        html = _ui(scene, path, scene.world.namur).body.decode()
        seen += re.findall(r'<tr data-holder="([0-9a-f]{64})"', html)
        more = re.search(r'<a href="(/ui/commune/vouchers\?[^"]*after=[^"]*)">', html)
        if more is None:
            break
        path = more.group(1).replace("&amp;", "&")
    assert seen == sorted(by_key(statuses(scene, CAMPAIGN)))


def test_the_commune_exports_its_vouchers_as_csv(scene: Scene) -> None:
    answer = _ui(scene, f"/ui/commune/vouchers.csv?campaign={CAMPAIGN}&status=reissued",
                 scene.world.namur)  # fmt: skip
    assert answer.status == 200 and answer.content_type == "text/csv"
    rows = list(csv.reader(io.StringIO(answer.body.decode())))
    assert rows == [
        ["holder", "allocated_cents", "balance_cents", "status", "replaced_by"],
        [scene.lost.pk.hex(), "2000", "0", "reissued", scene.replacement.pk.hex()],
    ]


def test_no_one_else_sees_the_communes_voucher_pages(scene: Scene) -> None:
    w = scene.world
    for path in (f"/ui/commune/vouchers?campaign={CAMPAIGN}",
                 f"/ui/commune/vouchers.csv?campaign={CAMPAIGN}"):  # fmt: skip
        for who in (w.alice, w.bakery, w.auditor, w.bank):
            assert _ui(scene, path, who).status == 403, (path, who)
        other = _ui(scene, path, w.liege)
        assert other.status == 404 and scene.used.pk.hex() not in other.body.decode()
        by_letter = w.node.http("GET", path, headers={"Cookie": _letter_cookie(w)})
        assert by_letter.status == 403


def test_the_report_is_bounded_and_says_so(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    node = scene.world.node
    node.commit()  # a new height: the report is read again, not taken from the cache
    try:
        monkeypatch.setattr(limits, "VOUCHERS_STATUS_SCAN_TXS_MAX", 1)
        doc = statuses(scene, CAMPAIGN)
        # Only the newest allocation or reissue was read: the short campaign's allocation.
        assert doc["complete"] is False and doc["items"] == []
        keys = set(by_key(statuses(scene, SHORT)))
        assert keys == {scene.kept.pk.hex(), scene.spender.pk.hex()}
        monkeypatch.setattr(limits, "VOUCHERS_STATUS_SCAN_TXS_MAX", 100_000)
        monkeypatch.setattr(limits, "VOUCHERS_STATUS_INDEX_ENTRIES_MAX", 1)
        node.commit()
        assert statuses(scene, CAMPAIGN)["complete"] is False
    finally:  # the scene is the module's: no later test reads a report cut by these caps
        monkeypatch.undo()
        node.commit()
    assert statuses(scene, CAMPAIGN)["complete"] is True


def test_a_replacement_voucher_sees_its_households_zone_first(scene: Scene) -> None:
    w = scene.world
    html = _ui(scene, "/ui/holder", scene.replacement).body.decode()
    # The lost voucher was allocated in NAM-2: the brasserie (NAM-2) comes first.
    assert "votre quartier NAM-2" in html
    names = re.findall(r'<span class="shop-name">([^<]*)</span>', html)
    assert names == ["Brasserie de la Place", "Boulangerie du Marché"]
    assert w.bakery.pk.hex() not in html


def test_a_spent_or_ended_voucher_is_told_there_is_nothing_left_to_spend(scene: Scene) -> None:
    for who in (scene.used, scene.kept):  # all spent; money left but its campaign ended
        html = _ui(scene, "/ui/holder", who).body.decode()
        assert "Aucun commerce à montrer" in html
        assert 'data-testid="shop"' not in html
