"""Issue 15, finding 1: a transaction's inclusion proof must not carry other people's items.

``allocate`` lists many holders and ``settle`` many communes' payouts. A party who may
see only its own items (a holder, even by a paper voucher's balance code; a commune or
a merchant of one payout) gets the signed committed body and its own items with their
Merkle paths, and the other items only as hashes inside those paths. The light client
and ``relance-wallet verify tx`` check such a proof from the genesis file alone and
refuse any tampered item, path or body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.api.access import BALANCE_COOKIE
from node.api.tokens import make_balance_code
from node.client.lightclient import (
    CertifiedHeader,
    ItemProof,
    NodeLied,
    PartialTx,
    verify_transaction,
    verify_transaction_items,
)
from node.consensus.types import Certificate, Header
from node.ledger import tx as t
from node.protocol.crypto import digest
from node.protocol.genesis import render
from node.protocol.merkle import InclusionProof
from tests.api.harness import AUDITOR, BANK, DAY_MS, LIEGE, NAMUR, Account, LiveNode, key
from wallets.cli import main
from wallets.keystore import Keystore

CAMPAIGN = "namur-2026"
LIEGE_CAMPAIGN = "liege-2026"
PASSPHRASE = "correct horse battery staple"


@dataclass
class Scene:
    node: LiveNode
    namur: Account
    liege: Account
    holders: list[Account]  # of the Namur allocation, in its order (the last a paper voucher)
    dave: Account  # Liège's holder
    bakery: Account  # a Namur merchant
    liege_shop: Account
    allocate: t.SignedTx
    settle: t.SignedTx  # one payout of each commune, one settle


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    node = LiveNode(Path(tmp_path_factory.mktemp("proof-leaks")))
    try:
        yield _seed(node)
    finally:
        node.close()


def _seed(node: LiveNode) -> Scene:
    chain, start = node.genesis.chain_id, node.genesis.genesis_time_ms
    end = start + 90 * DAY_MS
    bank, namur, liege = Account(BANK), Account(NAMUR), Account(LIEGE)
    names = ("alice", "bob", "carol", "erin", "voucher", "dave", "bakery", "liege_shop")
    a = {name: Account(key(f"leak-{name}")) for name in names}
    node.commit(
        namur.sign(chain, t.RegisterMerchant(a["bakery"].pk, "Boulangerie", "47.24", "NAM-1",
                                             digest(b"iban-1"), False)),
        namur.sign(chain, t.CreateCampaign(CAMPAIGN, "Namur", (), (), start, end, 10_000)),
        liege.sign(chain, t.RegisterMerchant(a["liege_shop"].pk, "Librairie", "47.61", "LGE-1",
                                             digest(b"iban-2"), False)),
        liege.sign(chain, t.CreateCampaign(LIEGE_CAMPAIGN, "Liège", (), (), start, end, 10_000)),
    )  # fmt: skip
    node.commit(
        bank.sign(chain, t.Fund(CAMPAIGN, 100_000, "DEP-NAM-1")),
        bank.sign(chain, t.Fund(LIEGE_CAMPAIGN, 100_000, "DEP-LGE-1")),
    )
    holders = [a[n] for n in ("alice", "bob", "carol", "erin", "voucher")]
    allocations = tuple(
        t.Allocation(h.pk, 1_000 + 100 * n, f"NAM-{n % 2 + 1}") for n, h in enumerate(holders)
    )
    allocate = namur.sign(chain, t.Allocate(CAMPAIGN, allocations))
    node.commit(
        allocate,
        liege.sign(chain, t.Allocate(LIEGE_CAMPAIGN, (t.Allocation(a["dave"].pk, 900, "LGE-1"),))),
    )
    node.commit(
        a["alice"].sign(chain, t.Pay(CAMPAIGN, a["bakery"].pk, 700, "pain")),
        a["dave"].sign(chain, t.Pay(LIEGE_CAMPAIGN, a["liege_shop"].pk, 600, "livre")),
    )
    redeem_namur = a["bakery"].sign(chain, t.Redeem(NAMUR.public_key, 700))
    redeem_liege = a["liege_shop"].sign(chain, t.Redeem(LIEGE.public_key, 600))
    node.commit(redeem_namur, redeem_liege)
    settle = bank.sign(
        chain,
        t.Settle(
            (
                t.Settlement(redeem_namur.tx_id, "VIR-NAMUR-0001"),
                t.Settlement(redeem_liege.tx_id, "VIR-LIEGE-0002"),
            )
        ),
    )
    node.commit(settle)
    return Scene(
        node, namur, liege, holders, a["dave"], a["bakery"], a["liege_shop"], allocate, settle
    )


def _proof(scene: Scene, tx: t.SignedTx, token: str | None = None, **headers: str) -> str:
    answer = scene.node.http(
        "GET", f"/v1/proofs/transactions/{tx.tx_id.hex()}", token=token, headers=headers
    )
    assert answer.status == 200, answer.body
    return answer.body.decode()


def _anchor(doc: dict[str, object]) -> CertifiedHeader:
    anchor = doc["anchor"]
    assert isinstance(anchor, dict)
    return CertifiedHeader(
        Header.decode(bytes.fromhex(anchor["header_bytes"])),
        Certificate.decode(bytes.fromhex(anchor["certificate_bytes"])),
    )


def _block_proof(doc: dict[str, object]) -> InclusionProof:
    siblings = doc["siblings"]
    assert isinstance(siblings, list) and isinstance(doc["index"], int)
    assert isinstance(doc["size"], int)
    return InclusionProof(doc["index"], doc["size"], tuple(bytes.fromhex(s) for s in siblings))


def _partial(doc: dict[str, object]) -> tuple[PartialTx, list[ItemProof]]:
    items = doc["items"]
    count = doc["item_count"]
    assert isinstance(items, list) and isinstance(count, int)
    shown = PartialTx(
        bytes.fromhex(str(doc["body"])),
        bytes.fromhex(str(doc["signature"])),
        bytes.fromhex(str(doc["items_digest"])),
    )
    return shown, [
        ItemProof(
            bytes.fromhex(i["item"]),
            InclusionProof(i["index"], count, tuple(bytes.fromhex(s) for s in i["siblings"])),
        )
        for i in items
    ]


def _verified(scene: Scene, doc: dict[str, object]) -> tuple[t.CommittedTx, list[object]]:
    shown, items = _partial(doc)
    committed, found = verify_transaction_items(
        scene.node.genesis, _anchor(doc), shown, _block_proof(doc), items
    )
    return committed, [item for _, item in found]


def test_a_holder_gets_its_allocation_and_not_a_byte_of_the_others(scene: Scene) -> None:
    bob = scene.holders[1]
    text = _proof(scene, scene.allocate, scene.node.token(bob.signer))
    doc = json.loads(text)
    assert doc.get("tx") is None  # never the whole transaction
    for other in scene.holders:
        if other is not bob:
            assert other.pk.hex() not in text, "another holder's key leaked"
            assert digest(other.pk).hex() not in text
    committed, items = _verified(scene, doc)
    assert committed.tx_id == scene.allocate.tx_id and committed.kind is t.Kind.ALLOCATE
    assert committed.item_count == len(scene.holders)
    assert items == [t.Allocation(bob.pk, 1_100, "NAM-2")]
    assert [i["index"] for i in doc["items"]] == [1]


def test_a_paper_voucher_by_its_balance_code_sees_only_its_own_allocation(scene: Scene) -> None:
    voucher = scene.holders[-1]
    code = make_balance_code(
        voucher.signer, scene.node.genesis.chain_id, scene.node.wall_ms + DAY_MS
    )
    text = _proof(scene, scene.allocate, Cookie=f"{BALANCE_COOKIE}={code}")
    for other in scene.holders[:-1]:
        assert other.pk.hex() not in text
    _, items = _verified(scene, json.loads(text))
    assert items == [t.Allocation(voucher.pk, 1_400, "NAM-1")]


def test_a_commune_sees_only_its_own_payouts_of_a_settle(scene: Scene) -> None:
    payouts = scene.settle.tx.payload
    assert isinstance(payouts, t.Settle)
    namur_payout, liege_payout = payouts.settlements
    for commune, mine, theirs in (
        (scene.namur, namur_payout, liege_payout),
        (scene.liege, liege_payout, namur_payout),
    ):
        text = _proof(scene, scene.settle, scene.node.token(commune.signer))
        assert theirs.payout_id.hex() not in text, "another commune's payout leaked"
        assert theirs.bank_reference not in text, "another commune's bank reference leaked"
        doc = json.loads(text)
        assert doc.get("tx") is None
        committed, items = _verified(scene, doc)
        assert committed.kind is t.Kind.SETTLE and committed.item_count == 2
        assert items == [mine]
    # The merchant of a payout reads its own settlement the same way.
    text = _proof(scene, scene.settle, scene.node.token(scene.liege_shop.signer))
    assert namur_payout.payout_id.hex() not in text and "VIR-NAMUR" not in text
    assert _verified(scene, json.loads(text))[1] == [liege_payout]


def test_the_sender_and_the_auditor_get_the_whole_transaction(scene: Scene) -> None:
    for who, tx in ((scene.namur.signer, scene.allocate), (AUDITOR, scene.allocate),
                    (BANK, scene.settle)):  # fmt: skip
        doc = json.loads(_proof(scene, tx, scene.node.token(who)))
        assert doc.get("body") is None and doc.get("items") is None
        data = bytes.fromhex(doc["tx"])
        assert data == tx.encode()
        signed = verify_transaction(scene.node.genesis, _anchor(doc), data, _block_proof(doc))
        assert signed.tx_id == tx.tx_id


def test_outsiders_get_the_place_only(scene: Scene) -> None:
    for token in (None, scene.node.token(scene.dave.signer)):  # dave: Liège's, not party
        text = _proof(scene, scene.allocate, token)
        doc = json.loads(text)
        assert all(doc.get(k) is None for k in ("tx", "body", "signature", "items"))
        assert all(h.pk.hex() not in text for h in scene.holders)


def test_the_light_client_refuses_a_tampered_item_path_or_body(scene: Scene) -> None:
    doc = json.loads(_proof(scene, scene.allocate, scene.node.token(scene.holders[2].signer)))
    genesis, anchor, place = scene.node.genesis, _anchor(doc), _block_proof(doc)
    shown, items = _partial(doc)
    (mine,) = items
    verify_transaction_items(genesis, anchor, shown, place, items)  # the honest answer

    more = t.encode_item(t.Allocation(scene.holders[2].pk, 99_999, "NAM-1"))
    moved = InclusionProof(0, mine.proof.size, mine.proof.siblings)
    flipped = (bytes(32), *mine.proof.siblings[1:])
    lies = {
        "amount raised": (shown, [replace(mine, data=more)], place),
        "another index": (shown, [replace(mine, proof=moved)], place),
        "a sibling changed": (shown, [replace(mine, proof=replace(mine.proof, siblings=flipped))],
                              place),
        "another count": (shown, [replace(mine, proof=replace(mine.proof, size=9))], place),
        "another body": (replace(shown, body=shown.body[:-1] + b"\x00"), items, place),
        "another items digest": (replace(shown, items_digest=bytes(32)), items, place),
        "another signature": (replace(shown, signature=bytes(64)), items, place),
        "another block place": (shown, items, replace(place, index=place.index ^ 1)),
    }  # fmt: skip
    for name, (body, shown_items, at) in lies.items():
        with pytest.raises(NodeLied):
            verify_transaction_items(genesis, anchor, body, at, shown_items)
            pytest.fail(f"accepted with {name}")


def test_the_wallet_verifies_a_holder_s_item_proof(scene: Scene, tmp_path: Path) -> None:
    carol = scene.holders[2]
    Keystore(tmp_path / "keys").add("carol", carol.signer, PASSPHRASE)
    genesis = tmp_path / "genesis.toml"
    genesis.write_text(render(scene.node.genesis), encoding="utf-8")
    result = CliRunner().invoke(
        main,
        ["verify", "tx", "--genesis", str(genesis), scene.allocate.tx_id.hex(), "--key", "carol",
         "--node", scene.node.url, "--keystore", str(tmp_path / "keys"), "--json"],
        env={"RELANCE_PASSPHRASE": PASSPHRASE},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    said = json.loads(result.output)
    assert said["verified"] is True and said["kind"] == "allocate"
    assert said["items"] == [
        {"index": 2, "holder": carol.pk.hex(), "amount_cents": 1_200, "zone": "NAM-1"}
    ]
    assert all(h.pk.hex() not in result.output for h in scene.holders if h is not carol)
