"""SIGKILL of the bank's node (which runs the settlement service) at every point of a
batch, then restart: each payout is put in exactly one file and settled exactly
once, and the ledger, the journal and the files agree to the cent."""

from __future__ import annotations

import datetime
from collections import defaultdict
from pathlib import Path

import pytest
import xmlschema

from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey
from node.settlement import banksim, pain001, refhash
from node.settlement.journal import FileState, PayoutState, open_journal
from tests.node.netutil import eventually, get_json
from tests.settlement.netbank import BankNet, key, node_cli_ok

DAY_MS = 86_400_000
SHOP_IBAN = "BE28001123456020"


def _pays(net: BankNet, holders: list[int], shop: bytes) -> list[bytes]:
    return [
        net.signed(key(f"holder{n}"), t.Pay("c", PublicKey(shop), 100 + n * 7, f"n{n}"))
        for n in holders
    ]


def _import(net: BankNet, tmp: Path, files: list[Path], kind: str) -> None:
    today = datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    [answer] = banksim.statements([f.read_bytes() for f in files], today, kind)
    path = tmp / f"answer-{files[0].stem}.{'csv' if kind == 'csv' else 'xml'}"
    path.write_bytes(answer)
    node_cli_ok("settlement", "import", "--home", str(net.bank_home), str(path))


@pytest.mark.slow
def test_sigkill_at_each_point_of_a_batch_settles_each_payout_exactly_once(
    tmp_path: Path,
) -> None:
    net = BankNet(tmp_path / "net")
    try:
        net.start()
        net.wait_up()
        shop = key("shop")
        zone = net.genesis.issuers[0].zones[0]
        now = net.genesis.genesis_time_ms
        net.submit(net.issuer, t.RegisterMerchant(
            shop.public_key, "Boulangerie", "47.11", zone, Digest(bytes(32)), True))  # fmt: skip
        net.submit(net.issuer, t.CreateCampaign(
            "c", "Relance", (), (), now - DAY_MS, now + DAY_MS, 100_000))  # fmt: skip
        net.submit(net.bank, t.Fund("c", 1_000_000, "dep-1"))
        allocations = tuple(
            t.Allocation(key(f"holder{n}").public_key, 5_000, zone) for n in range(8)
        )
        net.submit(net.issuer, t.Allocate("c", allocations))
        salt = b"\x07" * 16
        net.register_iban(shop, SHOP_IBAN, salt, "immediate")
        net.submit(shop, t.UpdateMerchant(
            shop.public_key, "Boulangerie", "47.11", zone,
            Digest(refhash.ref_hash(SHOP_IBAN, salt)), True))  # fmt: skip
        net.stop()

        # Batch 1: killed once its payouts are assigned to a file, then at each later step.
        net.start(crash="file-assigned")
        net.wait_up()
        net.send_batch(_pays(net, [0, 1, 2], shop.public_key))
        net.wait_killed()
        for point in ("file-built", "file-on-disk", "file-written"):
            net.start(crash=point)
            net.wait_killed()
        net.start()
        net.wait_up()
        assert len(list(net.outbox.glob("*.xml"))) == 1
        net.stop()

        # Batch 2: killed with its file on disk but not yet marked written.
        net.start(crash="file-on-disk")
        net.wait_up()
        net.send_batch(_pays(net, [3, 4], shop.public_key))
        net.wait_killed()
        on_disk = sorted(net.outbox.glob("*.xml"))
        assert len(on_disk) == 2
        first_bytes = on_disk[1].read_bytes()
        net.start()
        net.wait_up()
        eventually(lambda: _file_states(net) == {FileState.WRITTEN} or None, 30, "file 2")
        assert on_disk[1].read_bytes() == first_bytes  # rewritten identically from the journal

        # The bank confirms file 1: killed right after the settle tx is submitted.
        net.stop()
        net.start(crash="settle-submitted")
        net.wait_up()
        _import(net, tmp_path, on_disk[:1], "camt.054")
        net.wait_killed()
        net.start()
        net.wait_up()
        # File 2: killed after the settle tx is journaled, before it is submitted.
        net.stop()
        net.start(crash="settle-recorded")
        net.wait_up()
        eventually(lambda: _settled_count(net) >= 1 or None, 30, "file 1 settled")
        _import(net, tmp_path, on_disk[1:], "csv")
        net.wait_killed()
        net.start()
        net.wait_up()
        payouts = eventually(lambda: _all_settled(net), 60, "every payout settled")
        _check_agreement(net, payouts, on_disk)
    finally:
        net.stop_all()


def _file_states(net: BankNet) -> set[FileState]:
    journal = open_journal(net.bank_home / "settlement")
    try:
        return {f.state for f in journal.files(*FileState)}
    finally:
        journal.close()


def _all_settled(net: BankNet) -> list[dict[str, object]] | None:
    found = net.payouts()
    return found if found and all(p["settled"] for p in found) else None


def _settled_count(net: BankNet) -> int:
    return sum(1 for p in net.payouts() if p["settled"])


def _check_agreement(net: BankNet, payouts: list[dict[str, object]], files: list[Path]) -> None:
    schema = xmlschema.XMLSchema(pain001.xsd_path())
    in_files: dict[str, int] = {}
    for path in files:
        schema.validate(path.read_text(encoding="utf-8"))
        for executed in banksim.read_pain001(path.read_bytes()):
            assert executed.end_to_end_id not in in_files, "a transfer in two files"
            in_files[executed.end_to_end_id] = executed.amount_cents
    by_reference: dict[str, int] = defaultdict(int)
    for p in payouts:
        by_reference[str(p["bank_reference"])] += int(p["amount_cents"])  # type: ignore[call-overload]
    assert dict(by_reference) == in_files  # ledger and files agree, reference by reference
    assert len(payouts) == 5
    journal = open_journal(net.bank_home / "settlement")
    try:
        rows = journal.all_payouts()
        assert len(rows) == len(payouts)
        assert all(r.state is PayoutState.SETTLED and not r.outside for r in rows)
    finally:
        journal.close()
    issuer = get_json(f"{net.url}/v1/accounts/{net.issuer.public_key.hex()}")["issuer"]
    assert isinstance(issuer, dict)
    assert issuer["pending_cents"] == 0
    assert issuer["settled_cents"] == sum(in_files.values())
