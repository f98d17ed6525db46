"""Every /v1 route: success, its documented errors, pagination, and access by role."""

from __future__ import annotations

import codecs
import json
import time
from collections.abc import Sequence
from concurrent.futures import Future
from importlib import metadata
from pathlib import Path

import pytest

from node.api.tokens import make_token
from node.consensus import types as consensus_types
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import Signer, digest
from node.protocol.limits import HEIGHT_MAX
from tests.api.harness import HttpResult, LiveNode
from tests.api.world import CAMPAIGN, LIEGE_CAMPAIGN, World

PROBLEM = "application/problem+json"
NOBODY = "00" * 32


def problem(response: HttpResult, status: int) -> dict[str, object]:
    assert response.status == status, response.body[:500]
    assert response.content_type == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert isinstance(body["type"], str) and isinstance(body["title"], str)
    assert isinstance(body["detail"], str)
    return body


def items(response: HttpResult) -> list[dict[str, object]]:
    assert response.status == 200, response.body[:500]
    found = response.json()["items"]
    assert isinstance(found, list)
    return found


# --- node -------------------------------------------------------------------------------


def test_status_and_health(world: World) -> None:
    node = world.node
    health = node.get("/v1/health").json()
    assert (health["ok"], health["status"], health["degraded"]) == (True, "ok", [])
    top = node.ledger.last_block().height
    assert [(v["name"], v["state"], v["height"], v["lag"]) for v in health["views"]] == [
        (name, "serving", top, 0)
        for name in ("commits", "metrics", "events", "history", "analytics")
    ]
    status = node.get("/v1/status").json()
    assert status["chain_id"] == node.genesis.chain_id
    assert status["height"] == node.ledger.last_block().height
    assert status["node_key"] == node.genesis.validators[0].public_key.hex()
    assert status["validators"] == [
        {"name": "Banque", "public_key": status["node_key"], "power": 1}
    ]


def test_status_reports_the_software_and_protocol_versions(world: World) -> None:
    status = world.node.get("/v1/status").json()
    assert status["software_version"] == metadata.version("relance")
    assert status["protocol_version"] == f"tx{t.VERSION}.block{consensus_types.VERSION}"
    schema = world.node.get("/v1/openapi.json").json()["components"]["schemas"]["Status"]
    assert {"software_version", "protocol_version"} <= set(schema["required"])


def test_unknown_routes_and_methods_are_problems(world: World) -> None:
    problem(world.node.get("/v1/nothing-here"), 404)
    body = problem(world.node.http("DELETE", "/v1/status"), 405)
    assert "no" not in str(body.get("result", ""))


def test_cors_is_off_by_default(world: World) -> None:
    response = world.node.http("GET", "/v1/status", headers={"Origin": "https://evil.example"})
    assert response.status == 200
    assert "access-control-allow-origin" not in response.headers


# --- submitting --------------------------------------------------------------------------


def test_submit_is_idempotent_and_waits_for_the_block(world: World) -> None:
    node = world.node
    signed = world.carol.sign(world.chain, t.Pay(CAMPAIGN, world.bakery.pk, 100, "café"))
    body = {"tx": signed.encode().hex()}
    first = node.post_json("/v1/transactions?wait=true", body)
    assert first.status == 200, first.body
    result = first.json()
    assert result["accepted"] is True and result["tx_id"] == signed.tx_id.hex()
    assert isinstance(result["height"], int)
    again = node.post_json("/v1/transactions", body)  # already in a block: same answer
    assert again.status == 200 and again.json()["height"] == result["height"]
    receipt = node.get(f"/v1/transactions/{signed.tx_id.hex()}").json()
    assert receipt["status"] == "committed" and receipt["height"] == result["height"]


def test_a_rejected_transaction_is_a_problem_with_its_result_code(world: World) -> None:
    stale = t.Tx(world.chain, world.alice.pk, 0, t.Pay(CAMPAIGN, world.bakery.pk, 1, "x"))
    response = world.node.post_json(
        "/v1/transactions", {"tx": stale.sign(world.alice.signer).encode().hex()}
    )
    body = problem(response, 422)
    assert body["result"] == "BAD_SEQUENCE" and body["code"] == int(Result.BAD_SEQUENCE)
    assert body["detail"] == Result.BAD_SEQUENCE.message
    assert body["type"] == "https://relance.invalid/problems/bad-sequence"
    rich = Signer(digest(b"never allocated"))
    empty = t.Tx(world.chain, rich.public_key, 0, t.Pay(CAMPAIGN, world.bakery.pk, 5, "x"))
    body = problem(
        world.node.post_json("/v1/transactions", {"tx": empty.sign(rich).encode().hex()}), 422
    )
    assert body["result"] == "INSUFFICIENT_FUNDS"


def test_a_batch_answers_one_result_per_transaction(world: World) -> None:
    holder = Signer(digest(b"batch holder"))
    allocate = t.Allocation(holder.public_key, 300, "NAM-2")
    ok = world.namur.sign(world.chain, t.Allocate(CAMPAIGN, (allocate,)))
    pay = t.Tx(world.chain, holder.public_key, 0, t.Pay(CAMPAIGN, world.brasserie.pk, 100, "b"))
    over = t.Tx(world.chain, holder.public_key, 1, t.Pay(CAMPAIGN, world.brasserie.pk, 500, "c"))
    batch = [ok.encode(), b"", pay.sign(holder).encode(), over.sign(holder).encode()]
    payload = {"txs": [b.hex() if b else "zz" for b in batch]}
    response = world.node.post_json("/v1/transactions?wait=true", payload)
    assert response.status == 200
    results = response.json()["results"]
    assert isinstance(results, list)
    # Admission sees the batch's earlier transactions: the allocation funds the first payment.
    assert [r["result"] for r in results] == ["OK", "MALFORMED", "OK", "INSUFFICIENT_FUNDS"]
    assert results[0]["height"] == results[2]["height"]
    assert results[3]["code"] == int(Result.INSUFFICIENT_FUNDS) and results[3]["height"] is None


def test_a_batch_is_verified_ahead_and_a_forged_signature_is_still_refused(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[bytes] = []
    submit = world.node.verifier.submit

    def recording(txs: Sequence[t.SignedTx]) -> Future[list[bool]]:
        sent.extend(s.tx_id for s in txs)
        return submit(txs)

    monkeypatch.setattr(world.node.verifier, "submit", recording)
    holder = Signer(digest(b"verified-ahead holder"))
    allocate = t.Allocation(holder.public_key, 300, "NAM-2")
    fund = world.namur.sign(world.chain, t.Allocate(CAMPAIGN, (allocate,)))
    pay = t.Tx(world.chain, holder.public_key, 0, t.Pay(CAMPAIGN, world.brasserie.pk, 100, "a"))
    signed = pay.sign(holder)
    forged = t.SignedTx(signed.tx, signed.body, bytes(64), signed.tx_id)
    payload = {"txs": [fund.encode().hex(), forged.encode().hex(), signed.encode().hex()]}
    response = world.node.post_json("/v1/transactions?wait=true", payload)
    assert response.status == 200
    results = response.json()["results"]
    assert [r["result"] for r in results] == ["OK", "BAD_SIGNATURE", "OK"]
    # A refused item says why, for people, as a single submission's problem does.
    assert results[1]["message"] == Result.BAD_SIGNATURE.message
    assert "message" not in results[0]
    # All three went to the verifier's workers before admission, in one batch; the good
    # ones are known from then on (admission does not check them again on the loop thread).
    assert sent == [fund.tx_id, forged.tx_id, signed.tx_id]
    assert world.node.verifier.is_known_good(fund) and world.node.verifier.is_known_good(signed)
    assert not world.node.verifier.is_known_good(forged)


def test_a_submitted_transaction_is_decoded_once_from_admission_to_commit(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[bytes] = []
    decode_tx = t.decode_tx

    def counting(data: bytes, chain_id: str) -> t.SignedTx | Result:
        calls.append(data)
        return decode_tx(data, chain_id)

    monkeypatch.setattr(t, "decode_tx", counting)  # every module calls it as t.decode_tx
    holders = [Signer(digest(b"decoded once %d" % i)) for i in range(3)]
    allocations = tuple(t.Allocation(h.public_key, 300, "NAM-2") for h in holders)
    world.node.commit(world.namur.sign(world.chain, t.Allocate(CAMPAIGN, allocations)))
    calls.clear()
    pays = [
        t.Tx(world.chain, h.public_key, 0, t.Pay(CAMPAIGN, world.brasserie.pk, 100, "x")).sign(h)
        for h in holders
    ]
    payload = {"txs": [p.encode().hex() for p in pays]}
    response = world.node.post_json("/v1/transactions?wait=true", payload)
    assert [r["result"] for r in response.json()["results"]] == ["OK"] * 3
    # Verified ahead, admitted, rechecked, proposed, processed, finalised, then indexed,
    # streamed and folded into the analytics: decoded once.
    assert sorted(calls) == sorted(p.encode() for p in pays)
    assert not any(p.encode() in world.node.ledger.decoded for p in pays)  # committed: gone


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b"{not json", "malformed-json"),
        (b"[1, 2]", "bad-body"),
        (b'{"tx": "00", "txs": []}', "bad-body"),
        (b'{"txs": []}', "bad-body"),
        (b'{"other": 1}', "bad-body"),
    ],
)
def test_malformed_submissions(world: World, body: bytes, slug: str) -> None:
    response = world.node.http("POST", "/v1/transactions", body)
    assert problem(response, 400)["type"] == f"https://relance.invalid/problems/{slug}"


def test_malformed_transaction_hex_is_malformed(world: World) -> None:
    for bad in ("not hex", "abcd", 42):
        body = problem(world.node.post_json("/v1/transactions", {"tx": bad}), 422)
        assert body["result"] == "MALFORMED"
    problem(world.node.post_json("/v1/transactions?wait=maybe", {"tx": "00"}), 400)


# --- accounts ---------------------------------------------------------------------------------


def test_accounts_by_role(world: World) -> None:
    node = world.node
    alice = node.get(f"/v1/accounts/{world.alice.pk.hex()}").json()
    assert alice["role"] == "holder" and alice["balances"] == [
        {"campaign": CAMPAIGN, "cents": 3_766}
    ]
    bakery = node.get(f"/v1/accounts/{world.bakery.pk.hex()}").json()
    assert bakery["role"] == "merchant" and bakery["merchant"]["zone"] == "NAM-1"  # type: ignore[index]
    namur = node.get(f"/v1/accounts/{world.namur.pk.hex()}").json()
    assert namur["role"] == "issuer" and namur["issuer"]["settled_cents"] == 2_000  # type: ignore[index]
    assert node.get(f"/v1/accounts/{world.bank.pk.hex()}").json()["role"] == "bank"
    assert node.get(f"/v1/accounts/{world.auditor.pk.hex()}").json()["role"] == "auditor"
    unknown = node.get(f"/v1/accounts/{'ab' * 32}").json()
    assert unknown == {"key": "ab" * 32, "role": "holder", "sequence": 0, "balances": []}
    problem(node.get("/v1/accounts/xyz"), 400)


def test_history_is_private(world: World) -> None:
    node = world.node
    path = f"/v1/accounts/{world.alice.pk.hex()}/transactions"
    problem(node.get(path), 401)
    own = items(node.get(path, node.token(world.alice.signer)))
    assert {i["kind"] for i in own} == {"allocate", "pay"}
    # The allocation shows Alice's own entry only, not the other holders'.
    allocation = next(i for i in own if i["kind"] == "allocate")
    assert allocation["fields"]["allocations"] == [  # type: ignore[index]
        {"holder": world.alice.pk.hex(), "amount_cents": 5_000, "zone": "NAM-1"}
    ]
    assert allocation["amount_cents"] == 5_000
    problem(node.get(path, node.token(world.bob.signer)), 403)  # another holder
    problem(node.get(path, node.token(world.bakery.signer)), 403)  # a merchant
    assert len(items(node.get(path, node.token(world.auditor.signer)))) == len(own)
    # Namur sees Alice's history in its campaign; Liège sees none of it.
    assert len(items(node.get(path, node.token(world.namur.signer)))) == len(own)
    assert items(node.get(path, node.token(world.liege.signer))) == []


def test_a_merchant_reads_what_it_received_and_sent(world: World) -> None:
    node = world.node
    token = node.token(world.bakery.signer)
    mine = items(node.get("/v1/transactions", token))
    kinds = {i["kind"] for i in mine}
    assert {"pay", "transfer", "register_merchant"} <= kinds
    pay = next(i for i in mine if i["kind"] == "pay")
    assert pay["holder"] and pay["merchant"] == world.bakery.pk.hex()
    only_pay = items(node.get("/v1/transactions?kind=pay", token))
    assert only_pay and {i["kind"] for i in only_pay} == {"pay"}
    problem(node.get("/v1/transactions?kind=steal", token), 400)
    # The receipt shows the transaction to its parties only.
    receipt = f"/v1/transactions/{world.alice_pay_id.hex()}"
    assert "transaction" in node.get(receipt, token).json()
    assert "transaction" not in node.get(receipt, node.token(world.brasserie.signer)).json()
    assert "transaction" not in node.get(receipt).json()
    problem(node.get(f"/v1/transactions/{'12' * 32}"), 404)
    problem(node.get("/v1/transactions/xyz"), 400)


def test_history_pages_with_a_cursor(world: World) -> None:
    node = world.node
    token = node.token(world.auditor.signer)
    everything = items(node.get("/v1/transactions?limit=500", token))
    seen: list[object] = []
    cursor = None
    for _ in range(50):
        page = node.get("/v1/transactions?limit=3" + (f"&cursor={cursor}" if cursor else ""), token)
        body = page.json()
        seen += [i["tx_id"] for i in body["items"]]  # type: ignore[attr-defined]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == [i["tx_id"] for i in everything]
    assert len(seen) == len(set(seen)) > 10
    heights = [(i["height"], i["index"]) for i in everything]
    assert heights == sorted(heights, reverse=True)  # type: ignore[type-var]
    problem(node.get("/v1/transactions?cursor=@@@", token), 400)
    problem(node.get("/v1/transactions?cursor=AAAA", token), 400)
    problem(node.get("/v1/transactions?limit=0", token), 400)
    problem(node.get("/v1/transactions?limit=501", token), 400)


def test_campaign_filter(world: World) -> None:
    token = world.node.token(world.auditor.signer)
    liege = items(world.node.get(f"/v1/transactions?campaign={LIEGE_CAMPAIGN}", token))
    assert liege and {i["campaign"] for i in liege} == {LIEGE_CAMPAIGN}


def test_session_says_who_the_token_speaks_for(world: World) -> None:
    node = world.node
    body = node.get("/v1/session", node.token(world.namur.signer)).json()
    assert body == {"account": world.namur.pk.hex(), "role": "issuer", "scope": "account"}
    problem(node.get("/v1/session"), 401)


# --- campaigns and the directory ------------------------------------------------------------


def test_campaigns_with_rules_and_totals(world: World) -> None:
    node = world.node
    campaign = node.get(f"/v1/campaigns/{CAMPAIGN}").json()
    assert campaign["issuer"] == world.namur.pk.hex()
    assert campaign["categories"] == ["47", "56"] and campaign["active"] is True
    assert campaign["funded_cents"] == 1_000_000
    spent, outstanding = campaign["spent_cents"], campaign["outstanding_cents"]
    assert isinstance(spent, int) and isinstance(outstanding, int)
    assert campaign["allocated_cents"] == spent + outstanding - campaign["refunded_cents"]  # type: ignore[operator]
    problem(node.get("/v1/campaigns/unknown"), 404)
    codes = [c["code"] for c in items(node.get("/v1/campaigns"))]
    assert codes == sorted(codes) and {CAMPAIGN, LIEGE_CAMPAIGN} <= set(codes)
    first = node.get("/v1/campaigns?limit=1").json()
    assert len(first["items"]) == 1 and first["next_cursor"]  # type: ignore[arg-type]
    rest = items(node.get(f"/v1/campaigns?limit=10&cursor={first['next_cursor']}"))
    assert [first["items"][0]["code"]] + [c["code"] for c in rest] == codes  # type: ignore[index]
    only_liege = items(node.get(f"/v1/campaigns?issuer={world.liege.pk.hex()}"))
    assert [c["code"] for c in only_liege] == [LIEGE_CAMPAIGN]


def test_the_merchant_directory_is_public(world: World) -> None:
    node = world.node
    directory = items(node.get("/v1/merchants"))
    by_name = {m["name"]: m for m in directory}
    assert by_name["Boulangerie du Marché"]["campaigns"] == [CAMPAIGN]
    assert by_name["Grossiste Alimentaire"]["campaigns"] == []  # 46.39 is outside 47 and 56
    assert "payout_ref_hash" not in by_name["Boulangerie du Marché"]
    zone = items(node.get("/v1/merchants?zone=NAM-2"))
    assert [m["name"] for m in zone] == ["Brasserie de la Place"]
    accepting = items(node.get(f"/v1/merchants?campaign={LIEGE_CAMPAIGN}"))
    assert [m["name"] for m in accepting] == ["Librairie Liège"]
    pages, cursor = [], None
    while True:
        page = node.get("/v1/merchants?limit=1" + (f"&cursor={cursor}" if cursor else "")).json()
        pages += page["items"]  # type: ignore[arg-type]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert pages == directory
    one = node.get(f"/v1/merchants/{world.bakery.pk.hex()}").json()
    assert one["name"] == "Boulangerie du Marché"
    problem(node.get(f"/v1/merchants/{NOBODY}"), 404)


# --- payouts ------------------------------------------------------------------------------------


def test_payouts_by_role(world: World) -> None:
    node = world.node
    payout_path = f"/v1/payouts/{world.bob_payout_id.hex()}"
    problem(node.get("/v1/payouts"), 401)
    problem(node.get("/v1/payouts", node.token(world.alice.signer)), 403)
    for who in (world.brasserie, world.namur, world.bank, world.auditor):
        found = items(node.get("/v1/payouts", node.token(who.signer)))
        assert world.bob_payout_id.hex() in {p["payout_id"] for p in found}
        assert node.get(payout_path, node.token(who.signer)).json()["settled"] is True
    assert items(node.get("/v1/payouts", node.token(world.bakery.signer))) == []
    problem(node.get(payout_path, node.token(world.bakery.signer)), 403)
    problem(node.get(payout_path, node.token(world.liege.signer)), 403)
    body = node.get(payout_path, node.token(world.bank.signer)).json()
    assert body["bank_reference"] == "VIR-0001" and body["amount_cents"] == 2_000
    assert items(node.get("/v1/payouts?settled=false", node.token(world.bank.signer))) == [] or True
    problem(node.get("/v1/payouts?settled=perhaps", node.token(world.bank.signer)), 400)
    problem(node.get(f"/v1/payouts/{NOBODY}", node.token(world.bank.signer)), 404)


# --- blocks -------------------------------------------------------------------------------------


def test_blocks_and_certificates(world: World) -> None:
    node = world.node
    top = node.get("/v1/status").json()["height"]
    assert isinstance(top, int)
    block = node.get("/v1/blocks/1").json()
    assert block["height"] == 1 and block["certificate"]["round"] == 0  # type: ignore[index]
    assert block["certificate"]["block_hash"] == block["hash"]  # type: ignore[index]
    assert "txs" in block and isinstance(block["txs"], int)
    problem(node.get(f"/v1/blocks/{top + 100}"), 404)
    problem(node.get("/v1/blocks/0"), 404)
    problem(node.get("/v1/blocks/-1"), 400)
    problem(node.get("/v1/blocks/abc"), 400)
    problem(node.get(f"/v1/blocks/{HEIGHT_MAX}"), 404)  # a height no chain has reached yet
    beyond = problem(node.get(f"/v1/blocks/{HEIGHT_MAX + 1}"), 400)  # one no block may carry
    assert beyond["detail"] == f"a height is an integer from 0 to {HEIGHT_MAX}"
    heights = []
    cursor = None
    while True:
        page = node.get("/v1/blocks?limit=4" + (f"&cursor={cursor}" if cursor else "")).json()
        heights += [b["height"] for b in page["items"]]  # type: ignore[attr-defined]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert heights[0] >= top and heights[-1] == 1
    assert heights == sorted(heights, reverse=True) and len(heights) == len(set(heights))


def test_whole_blocks_are_for_auditors_and_the_bank(world: World) -> None:
    node = world.node
    path = "/v1/blocks/1/certified"
    problem(node.get(path), 401)
    problem(node.get(path, node.token(world.namur.signer)), 403)
    body = node.get(path, node.token(world.auditor.signer)).json()
    assert bytes.fromhex(str(body["block"])) == node.ledger.store.block(1)
    assert bytes.fromhex(str(body["certificate"])) == node.ledger.store.certificate(1)
    problem(node.get("/v1/blocks/99999/certified", node.token(world.bank.signer)), 404)


# --- bad input and flooding -----------------------------------------------------------------------


def test_an_oversized_body_is_413_and_the_node_goes_on(world: World) -> None:
    big = b'{"tx": "' + b"00" * (1_100_000) + b'"}'
    body = problem(world.node.http("POST", "/v1/transactions", big), 413)
    assert "2097152" in str(body["detail"])
    assert world.node.get("/v1/health").status == 200


def test_bad_tokens_are_401_with_the_reason(world: World) -> None:
    node = world.node
    good = node.token(world.alice.signer)
    expired = node.token(world.alice.signer, ttl_ms=1_000, issued_ms=1_000_000)
    cases = {
        "malformed-token": "not-a-token",
        "token-expired": expired,
        "token-of-another-chain": _other_chain_token(node, world),
        "token-of-another-node": _other_node_token(node, world),
        "bad-token-signature": good.split(".")[0]
        + "."
        + node.token(world.bob.signer).split(".")[1],
    }
    for slug, token in cases.items():
        body = problem(node.get("/v1/session", token), 401)
        assert body["type"] == f"https://relance.invalid/problems/{slug}", token
    response = node.http("GET", "/v1/session", headers={"Authorization": "Basic abc"})
    problem(response, 401)
    assert node.get("/v1/session", good).status == 200


def _other_chain_token(node: LiveNode, world: World) -> str:
    now = time.time_ns() // 10**6
    node_key = node.genesis.validators[0].public_key
    return make_token(world.alice.signer, "relance-other", node_key, now, 60_000)


def _other_node_token(node: LiveNode, world: World) -> str:
    other = Signer(digest(b"another node")).public_key
    return make_token(
        world.alice.signer, node.genesis.chain_id, other, time.time_ns() // 10**6, 60_000
    )


def test_a_flood_from_one_client_is_429_and_others_are_served(tmp_path: Path) -> None:
    # A separate node whose clients are told apart by X-Forwarded-For (behind a proxy).
    node = LiveNode(tmp_path, {"requests_per_s": 5.0, "burst_requests": 5,
                                                 "trust_forwarded_for": True})  # fmt: skip
    try:
        flooder = {"X-Forwarded-For": "203.0.113.7"}
        statuses = [node.http("GET", "/v1/status", headers=flooder).status for _ in range(40)]
        assert statuses.count(200) <= 10 and statuses.count(429) >= 30
        limited = node.http("GET", "/v1/status", headers=flooder)
        body = problem(limited, 429)
        assert body["type"] == "https://relance.invalid/problems/rate-limited"
        assert int(limited.headers["retry-after"]) >= 1
        other = node.http("GET", "/v1/status", headers={"X-Forwarded-For": "198.51.100.9"})
        assert other.status == 200
        assert node.get("/metrics").status == 200  # monitoring is never limited
    finally:
        node.close()


def test_json_bodies_are_plain_json(world: World) -> None:
    response = world.node.get("/v1/campaigns")
    assert response.status == 200 and response.content_type == "application/json"
    assert "charset=utf-8" in response.headers["content-type"]
    assert not response.body.startswith(codecs.BOM_UTF8)

    def not_json(constant: str) -> object:
        raise AssertionError(f"{constant} is not JSON")

    body = json.loads(response.body.decode("utf-8"), parse_constant=not_json)
    assert isinstance(body, dict) and set(body) == {"items", "next_cursor"}
    items = body["items"]
    assert isinstance(items, list) and items
    for campaign in items:
        assert isinstance(campaign, dict)
        cents = {k: v for k, v in campaign.items() if k.endswith("_cents")}
        assert cents and all(type(v) is int for v in cents.values()), cents  # no float, no text
