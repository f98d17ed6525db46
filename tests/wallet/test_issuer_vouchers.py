"""``relance-wallet issuer vouchers`` on an in-process node: the book's serials and
channels joined with the ledger's statuses, filters, counts and the CSV export."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.ledger import tx as t
from node.protocol.crypto import Signer
from tests.api.harness import NAMUR, Account, LiveNode, key
from tests.api.world import CAMPAIGN, World, seed
from tests.wallet.support import PASSPHRASE, Cli, cli_env
from wallets.book import VoucherBook, book_path


@dataclass
class Scene:
    world: World
    cli: Cli
    book: Path
    work: Path


def _voucher(book: VoucherBook, serial: str) -> Account:
    return Account(Signer(bytes.fromhex(book.find(serial).seed)))


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scene]:
    root = tmp_path_factory.mktemp("issuer-vouchers")
    (root / "node").mkdir()
    node = LiveNode(root / "node")
    try:
        world = seed(node)
        cli = Cli(cli_env(root / "home", node.url))
        cli.json("key", "import", "namur", "--seed-hex", NAMUR.seed.hex())
        app = key("vouchers-app")
        work = root / "work"
        work.mkdir()
        (work / "households.csv").write_text(
            "amount,zone,channel,name,address,email,holder,household_id\n"
            "20,NAM-1,post,Zoë Lefèvre,Rue de Fer 12;5000 Namur,,,h1\n"
            "30,NAM-1,email,Jean Dupont,,jean@example.be,,h2\n"
            '25,NAM-2,post,"=HYPERLINK(""http://x"")",Rue Haute 1;5000 Namur,,,=1+2\n'
            f"15,NAM-1,app,,,,{app.public_key.hex()},h4\n",
            encoding="utf-8",
        )
        allocated = cli.json("--yes", "issuer", "allocate", "--key", "namur", CAMPAIGN,
                             str(work / "households.csv"))  # fmt: skip
        assert allocated["allocated"] == 4
        path = book_path(root / "home", world.chain, CAMPAIGN)
        book = VoucherBook(path, world.chain, CAMPAIGN, PASSPHRASE)
        first, second = book.entries[0].serial, book.entries[1].serial
        node.commit(
            _voucher(book, first).sign(world.chain, t.Pay(CAMPAIGN, world.bakery.pk, 2_000, "")),
            _voucher(book, second).sign(world.chain, t.Pay(CAMPAIGN, world.bakery.pk, 700, "")),
        )
        third = book.entries[2].serial
        cli.json("--yes", "issuer", "reissue", "--key", "namur", CAMPAIGN, third)
        yield Scene(world, cli, path, work)
    finally:
        node.close()


def test_every_serial_with_its_channel_and_status(scene: Scene) -> None:
    out = scene.cli.json("issuer", "vouchers", "--key", "namur", CAMPAIGN)
    rows = {r["serial"]: r for r in out["items"] if r["serial"]}  # type: ignore[union-attr]
    mine = [rows[f"{CAMPAIGN.upper()}-{n:06d}"] for n in range(1, 6)]
    assert [(r["channel"], r["status"]) for r in mine] == [
        ("post", "used"),
        ("email", "partly_used"),
        ("post", "reissued"),
        ("app", "untouched"),
        ("post", "untouched"),  # the replacement, with what the reissue moved
    ]
    assert mine[1]["balance_cents"] == 2_300 and mine[1]["allocated_cents"] == 3_000
    assert mine[2]["replaced_by"] == mine[4]["serial"] and mine[4]["replaces"] == mine[2]["serial"]
    assert mine[4]["allocated_cents"] == 2_500 == mine[4]["balance_cents"]
    # The world's own holders, allocated without this book, are listed without a serial.
    strangers = [r for r in out["items"] if not r["serial"]]  # type: ignore[union-attr]
    assert {r["public_key"] for r in strangers} == {
        a.pk.hex() for a in (scene.world.alice, scene.world.bob, scene.world.carol,
                             scene.world.voucher)
    }  # fmt: skip
    assert out["complete"] is True
    counts = out["counts"]
    assert counts == {"untouched": 2 + 2, "partly_used": 1 + 2, "used": 1, "reissued": 1,
                      "expired": 0, "not_allocated": 0, "unknown": 0}  # fmt: skip
    assert out["by_channel"] == {
        "app": {"untouched": 1},
        "email": {"partly_used": 1},
        "post": {"reissued": 1, "untouched": 1, "used": 1},
    }


def test_filters_and_the_csv_export(scene: Scene) -> None:
    target = scene.work / "post.csv"
    filters = ("--channel", "post", "--status", "untouched", "--status", "reissued")
    out = scene.cli.json("issuer", "vouchers", "--key", "namur", CAMPAIGN, *filters,
                         "--csv", str(target))  # fmt: skip
    assert [r["status"] for r in out["items"]] == ["reissued", "untouched"]  # type: ignore[union-attr]
    with target.open(encoding="utf-8", newline="") as f:
        table = list(csv.DictReader(f))
    assert [(r["serial"], r["channel"], r["status"]) for r in table] == [
        (f"{CAMPAIGN.upper()}-000003", "post", "reissued"),
        (f"{CAMPAIGN.upper()}-000005", "post", "untouched"),
    ]
    assert table[1]["balance_cents"] == "2500"
    # Personal data stays in the sealed book; nothing in the CSV can run as a formula.
    text = target.read_text(encoding="utf-8")
    assert "HYPERLINK" not in text and "Zoë" not in text
    assert [r["household_id"] for r in table] == ["'=1+2", "'=1+2"]  # the same household
    human = scene.cli.ok("issuer", "vouchers", "--key", "namur", CAMPAIGN, "--status", "used")
    assert f"{CAMPAIGN.upper()}-000001" in human.stdout and "used 1" in human.stdout


def test_only_the_commune_that_issued_reads_the_statuses(scene: Scene, tmp_path: Path) -> None:
    other = Cli({**scene.cli.env, "RELANCE_HOME": str(tmp_path / "liege")})
    other.json("key", "import", "liege", "--seed-hex", key("liege").seed.hex())
    # Liège has no book for Namur's campaign; with Namur's book copied over, the node
    # still refuses to list Namur's keys to Liège.
    copied = book_path(tmp_path / "liege", scene.world.chain, CAMPAIGN)
    copied.parent.mkdir(parents=True)
    copied.write_bytes(scene.book.read_bytes())
    refused = other("issuer", "vouchers", "--key", "liege", CAMPAIGN)
    assert refused.exit_code != 0
    assert "no campaign of yours" in refused.output
