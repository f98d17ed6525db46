"""The bugs a new user met with the wallet (issue 14), against the real API in-process.

A node (``tests.api.harness.LiveNode``) holds the API tests' world, plus: a payment to
the auto-redeeming brasserie whose payout the bank returned (``AC04``), and another
one still waiting for the bank. The wallet runs in-process with its own keystore.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.ledger import tx as t
from node.protocol.crypto import digest
from node.protocol.genesis import render
from tests.api.harness import NAMUR, LiveNode
from tests.api.test_dashboards import page
from tests.api.world import CAMPAIGN, World, seed
from tests.wallet.support import Cli, cli_env
from wallets.voucher import Voucher

NAMUR_KEY = NAMUR.public_key.hex()


@dataclass
class Scene:
    world: World
    cli: Cli
    genesis: Path
    returned_id: str
    pending_id: str

    def key(self, name: str) -> str:
        account = getattr(self.world, name)
        return str(account.pk.hex())


@pytest.fixture
def scene(tmp_path: Path) -> Iterator[Scene]:
    (tmp_path / "node").mkdir()
    node = LiveNode(tmp_path / "node")
    try:
        world = seed(node)
        chain = world.chain
        returned = world.carol.sign(chain, t.Pay(CAMPAIGN, world.brasserie.pk, 700, "repas"))
        pending = world.alice.sign(chain, t.Pay(CAMPAIGN, world.brasserie.pk, 300, "café"))
        node.commit(returned, pending)
        node.commit(world.bank.sign(chain, t.ReturnPayout(returned.tx_id, "AC04", "RET-1")))
        cli = Cli(cli_env(tmp_path / "home", node.url))
        for name in ("alice", "brasserie", "bank", "bakery"):
            cli.json("key", "import", name, "--seed-hex", digest(f"api-test:{name}".encode()).hex())
        genesis = tmp_path / "genesis.toml"
        genesis.write_text(render(node.genesis), encoding="utf-8")
        yield Scene(world, cli, genesis, returned.tx_id.hex(), pending.tx_id.hex())
    finally:
        node.close()


def _json(scene: Scene, *args: str) -> dict[str, object]:
    """``verify`` prints its own object (no ``ok`` field)."""
    body: dict[str, object] = json.loads(scene.cli.ok("--json", *args).stdout)
    return body


# --- returned payouts ----------------------------------------------------------------------------


def test_a_returned_payout_is_not_pending(scene: Scene) -> None:
    answer = scene.cli.json("merchant", "payouts", "--key", "brasserie")
    assert answer["pending_cents"] == 300  # the returned 700 is back in the balance, not pending
    assert answer["returned_cents"] == 700
    text = scene.cli.ok("merchant", "payouts", "--key", "brasserie").stdout
    returned_line = next(line for line in text.splitlines() if scene.returned_id in line)
    assert "returned by the bank (AC04)" in returned_line and "pending" not in returned_line
    assert "3,00" in text.splitlines()[-2]  # "… 3,00 € not yet settled"


def test_verify_payout_says_it_was_returned(scene: Scene) -> None:
    proven = _json(scene, "verify", "payout", "--genesis", str(scene.genesis), scene.returned_id)
    assert proven["returned"] is True and proven["returned_reason"] == "AC04"
    assert proven["settled"] is False
    text = scene.cli.ok("verify", "payout", "--genesis", str(scene.genesis), scene.returned_id)
    assert "returned_reason: AC04" in text.stdout


def test_bank_settle_pending_leaves_returned_payouts_alone(scene: Scene) -> None:
    answer = scene.cli.json(
        "--yes", "bank", "settle", "--key", "bank", "--pending", "--reference", "SEPA-7"
    )
    assert answer["settled"] == 1  # the 300 waiting; not the returned one (PAYOUT_RETURNED)
    rows = scene.cli.json("merchant", "payouts", "--key", "brasserie")["payouts"]
    assert isinstance(rows, list)
    by_id = {row["payout_id"]: row for row in rows}
    assert by_id[scene.pending_id]["bank_reference"] == "SEPA-7"
    assert by_id[scene.returned_id]["settled"] is False


# --- refusals and receipts say what is left ------------------------------------------------------


def _refusal(result_stderr: str) -> str:
    """One line, every space (no-break ones too) a plain space."""
    return " ".join(result_stderr.split())


def test_a_refused_payment_says_how_much_is_left(scene: Scene) -> None:
    # alice: 50,00 allocated, 12,34 paid to the bakery, 3,00 to the brasserie: 34,66 left.
    done = scene.cli("--yes", "holder", "pay", "--key", "alice", scene.key("bakery"), "60")
    assert done.exit_code == 1
    said = _refusal(done.stderr)
    assert "INSUFFICIENT_FUNDS" in said and "34,66 € left on namur-2026" in said
    as_json = scene.cli("--json", "--yes", "holder", "pay", "--key", "alice",
                        scene.key("bakery"), "60")  # fmt: skip
    assert "34,66" in as_json.stdout + as_json.stderr


def test_an_auto_redeem_shop_is_told_why_it_cannot_pay_a_supplier(scene: Scene) -> None:
    # the brasserie holds only the 7,00 the bank returned; its payments became payouts
    done = scene.cli("--yes", "merchant", "transfer", "--key", "brasserie",
                     scene.key("supplier"), "20")  # fmt: skip
    assert done.exit_code == 1
    said = _refusal(done.stderr)
    assert "7,00 € left" in said and "auto-redeem on" in said
    refund = scene.cli("--yes", "merchant", "refund", "--key", "brasserie", scene.key("bob"),
                       "10", "--campaign", CAMPAIGN)  # fmt: skip
    assert refund.exit_code == 1  # bob paid it 20,00: the refund is within his payments
    said = _refusal(refund.stderr)
    assert "INSUFFICIENT_FUNDS" in said and "7,00 € left" in said and "auto-redeem on" in said


def test_receipts_show_the_remaining_balance(scene: Scene) -> None:
    paid = scene.cli.json("--yes", "holder", "pay", "--key", "alice", scene.key("bakery"), "2")
    assert paid["remaining_cents"] == 5_000 - 1_234 - 300 - 200
    voucher = Voucher(scene.world.chain.upper(), digest(b"api-test:voucher")).uri()
    charged = scene.cli.json("--yes", "merchant", "charge", "--key", "bakery", voucher, "12,50")
    assert charged["remaining_cents"] == 5_000 - 1_250
    text = scene.cli.ok("--yes", "merchant", "charge", "--key", "bakery", voucher, "1").stdout
    assert "left       36,50" in text


# --- verify -------------------------------------------------------------------------------------


def test_verify_tx_fetches_a_private_transaction_with_a_key(scene: Scene) -> None:
    tx_id = scene.world.alice_pay_id.hex()
    anonymous = scene.cli("verify", "tx", "--genesis", str(scene.genesis), tx_id)
    assert anonymous.exit_code == 2 and "--key" in anonymous.stderr
    proven = _json(scene, "verify", "tx", "--genesis", str(scene.genesis), "--key", "alice", tx_id)
    assert proven["verified"] is True and proven["kind"] == "pay"


def test_verify_balance_prints_euros_not_a_python_repr(scene: Scene) -> None:
    text = scene.cli.ok(
        "verify", "balance", "--genesis", str(scene.genesis), scene.key("brasserie")
    ).stdout
    assert "{'" not in text and "[" not in text
    assert "Ville de Namur  7,00\u00a0€" in text
    holder = scene.cli.ok("verify", "balance", "--genesis", str(scene.genesis), scene.key("alice"))
    assert "namur-2026  34,66\u00a0€" in holder.stdout
    proven = _json(scene, "verify", "balance", "--genesis", str(scene.genesis), scene.key("alice"))
    assert proven["balances"] == [{"campaign": CAMPAIGN, "cents": 3_466}]


# --- names where people expect them ---------------------------------------------------------------


def test_holder_history_and_balance_name_merchants_and_communes(scene: Scene) -> None:
    bakery = scene.key("bakery")
    history = scene.cli.ok("holder", "history", "--key", "alice").stdout
    assert "Boulangerie du Marché" in history and "Brasserie de la Place" in history
    assert "Ville de Namur" in history  # the allocation
    assert bakery not in history
    with_keys = scene.cli.ok("holder", "history", "--key", "alice", "--keys").stdout
    assert bakery in with_keys
    rows = scene.cli.json("holder", "history", "--key", "alice")["items"]
    assert isinstance(rows, list)
    assert {"counterparty": bakery, "counterparty_name": "Boulangerie du Marché"}.items() <= next(
        r for r in rows if r["kind"] == "pay" and r["merchant"] == bakery
    ).items()
    balance = scene.cli.ok("holder", "balance", "--key", "alice").stdout
    assert "Chèques relance Namur (namur-2026)" in balance and "Ville de Namur" in balance
    assert scene.key("alice") not in balance and NAMUR_KEY not in balance
    keys = scene.cli.ok("holder", "balance", "--key", "alice", "--keys").stdout
    assert scene.key("alice") in keys and NAMUR_KEY in keys


def test_the_pages_name_merchants_and_communes_with_keys_on_demand(scene: Scene) -> None:
    world = scene.world
    for who, path, names in (
        (world.alice, "/ui/holder", ("Boulangerie du Marché", "Ville de Namur")),
        (world.bakery, "/ui/merchant", ("Grossiste Alimentaire",)),  # its transfer
        (world.namur, "/ui/commune", ("Boulangerie du Marché", "Brasserie de la Place")),
    ):
        html = page(world.node, path, world.node.token(who.signer)).body.decode()
        history = html[html.index('id="history-title"') :]
        for name in names:
            assert f"<summary>{name}</summary>" in history, (path, name)
        assert '<details class="party">' in history and "<code>" in history  # the key, on demand
