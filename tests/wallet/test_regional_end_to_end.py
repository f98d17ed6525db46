"""A region's campaign across two communes, through the wallet, on a 4-validator devnet.

Genesis declares the region (``write_devnet(region=True)``) beside
Namur, Liège and Mons. Namur and Liège consent to the region in one zone each (Mons
does not); the region's campaign names those two zones; the bank funds it; the region
allocates to five app holders (k = 5: each shop's cell has five); they pay at a Namur
shop and at a Liège shop; the shops redeem against the region's escrow; the bank
settles. Each commune's analytics (over the API) and statement (computed from a
stopped validator's store: the statement route is the bank node's) show the
regional payments at its shops.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from node.analytics.privacy import K_DEFAULT
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, REGION, DevnetNode, Supervisor, write_devnet
from node.protocol.genesis import parse
from node.run import config
from node.settlement import statement
from node.store.blockstore import BlockStore
from tests.node.netutil import eventually, free_base_port, get_json
from tests.wallet.support import Cli, cli_env
from wallets.exits import Exit

CAMPAIGN = "WAL-2026"
HOLDERS = tuple(f"h{n}" for n in range(K_DEFAULT))  # k holders per shop: cells shown


@dataclass
class World:
    cli: Cli
    nodes: list[DevnetNode]
    keys: dict[str, str]
    work: Path
    supervisor: Supervisor

    def get(self, path: str) -> dict[str, object]:
        return get_json(f"{self.nodes[1].api_url}{path}")

    def read_as(self, key: str, path: str) -> bytes:
        token = self.cli.json("login", "--key", key, "--ttl", "5")["token"]
        request = urllib.request.Request(
            self.nodes[1].api_url + path, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body: bytes = response.read()
        return body

    def as_issuer(self, key: str, path: str) -> dict[str, object]:
        body = json.loads(self.read_as(key, path))
        assert isinstance(body, dict)
        return body


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("regional")
    now_ms = time.time_ns() // 1_000_000
    nodes = write_devnet(root / "net", 4, free_base_port(8), now_ms, region=True)
    supervisor = Supervisor(nodes)
    supervisor.start()
    try:
        for node in nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, f"{node.name} up")
        cli = Cli(cli_env(root / "home", nodes[1].api_url))
        seeds = {s.public_key: s for s in load_keys(root / "net" / DEMO_KEYS_FILE).values()}
        genesis = parse((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
        by_territory = {i.territory: i.public_key for i in genesis.issuers}
        wanted = {"issuer0": by_territory["Namur"], "issuer1": by_territory["Liège"],
                  "issuer2": by_territory["Mons"], "region0": by_territory[REGION[1]],
                  "bank": genesis.bank.public_key}  # fmt: skip
        keys: dict[str, str] = {}
        for name, public_key in wanted.items():
            imported = cli.json("key", "import", name, "--seed-hex", seeds[public_key].seed.hex())
            keys[name] = str(imported["public_key"])
        for name in ("namshop", "lgeshop", "monshop", *HOLDERS):
            keys[name] = str(cli.json("key", "new", name, "--no-phrase")["public_key"])
        work = root / "work"
        work.mkdir()
        yield World(cli, nodes, keys, work, supervisor)
    finally:
        supervisor.stop()


def _register(w: World, issuer: str, shop: str, name: str, zone: str) -> None:
    csv = w.work / f"{shop}.csv"
    csv.write_text(
        "public_key,name,category,zone,payout_ref,auto_redeem\n"
        f"{w.keys[shop]},{name},47.11,{zone},BE71 0961 2345 6769,no\n",
        encoding="utf-8",
    )
    done = w.cli.json("--yes", "issuer", "register-merchants", "--key", issuer, str(csv))
    assert [r["result"] for r in done["results"]] == ["OK"]  # type: ignore[union-attr]


def test_a_regional_campaign_across_two_communes(world: World) -> None:
    w, cli, keys = world, world.cli, world.keys
    region = keys["region0"]
    _register(w, "issuer0", "namshop", "Épicerie de Namur", "NAM-CENTRE")
    _register(w, "issuer1", "lgeshop", "Librairie d'Outremeuse", "LGE-OUTREMEUSE")
    _register(w, "issuer2", "monshop", "Bazar de Mons", "MON-CENTRE")

    # Consent: Namur and Liège, one zone each; Mons gives none.
    cli.json("--yes", "issuer", "consent", "--key", "issuer0", region, "--zone", "NAM-CENTRE")
    cli.json("--yes", "issuer", "consent", "--key", "issuer1", region,
             "--zone", "LGE-OUTREMEUSE")  # fmt: skip
    usage = cli("--yes", "issuer", "consent", "--key", "issuer0", region)
    assert usage.exit_code == Exit.USAGE and "--revoke" in usage.stderr
    foreign = cli("--yes", "issuer", "consent", "--key", "issuer0", region, "--zone", "LGE-CENTRE")
    assert foreign.exit_code == Exit.REJECTED and "INVALID_ZONE" in foreign.stderr

    # The region's campaign: the consented zones only.
    create = ("--yes", "issuer", "create-campaign", "--key", "region0", "--name",
              "Chèque commerce wallon", "--from", "-1d", "--until", "+90d",
              "--max-per-holder", "100")  # fmt: skip
    refused = cli(*create, "WAL-MONS", "--zone", "NAM-CENTRE", "--zone", "MON-CENTRE")
    assert refused.exit_code == Exit.REJECTED
    assert refused.stderr.startswith("error: ZONE_NOT_CONSENTED")
    cli.json(*create, CAMPAIGN, "--zone", "NAM-CENTRE", "--zone", "LGE-OUTREMEUSE")
    cli.json("--yes", "bank", "fund", "--key", "bank", CAMPAIGN, "500", "--reference", "DEP-WAL")

    rows = "".join(
        f"40,{('NAM-CENTRE', 'LGE-OUTREMEUSE')[n % 2]},app,{keys[h]}\n"
        for n, h in enumerate(HOLDERS)
    )
    (w.work / "holders.csv").write_text("amount,zone,channel,holder\n" + rows)
    allocated = cli.json("--yes", "issuer", "allocate", "--key", "region0", CAMPAIGN,
                         str(w.work / "holders.csv"))  # fmt: skip
    assert allocated["allocated"] == K_DEFAULT

    # Payments at a Namur shop and at a Liège shop; Mons's shop refuses the voucher.
    for n, h in enumerate(HOLDERS):
        cli.json("--yes", "holder", "pay", "--key", h, "--campaign", CAMPAIGN,
                 keys["namshop"], f"{10 + n}")  # fmt: skip
        cli.json("--yes", "holder", "pay", "--key", h, "--campaign", CAMPAIGN,
                 keys["lgeshop"], "5")  # fmt: skip
    mons = cli("--yes", "holder", "pay", "--key", "h0", "--campaign", CAMPAIGN,
               keys["monshop"], "1")  # fmt: skip
    assert mons.exit_code == Exit.REJECTED and "MERCHANT_NOT_ELIGIBLE" in mons.stderr

    # The shops hold the region's units and redeem them against the region's escrow.
    for shop, cents in (("namshop", 6_000), ("lgeshop", 2_500)):
        balances = w.get(f"/v1/accounts/{keys[shop]}")["balances"]
        assert isinstance(balances, list)
        assert [(b["issuer"], b["cents"]) for b in balances] == [(region, cents)]
        redeemed = cli.json("--yes", "merchant", "redeem", "--key", shop, "--all")
        assert redeemed["amount_cents"] == cents
    settled = cli.json("--yes", "bank", "settle", "--key", "bank", "--pending",
                       "--reference", "SEPA-WAL-1")  # fmt: skip
    assert settled["settled"] == 2

    campaign = w.get(f"/v1/campaigns/{CAMPAIGN}")
    assert (campaign["funded_cents"], campaign["spent_cents"]) == (50_000, 8_500)
    assert campaign["budget_cents"] == 50_000 - 20_000
    assert campaign["outstanding_cents"] == 20_000 - 8_500

    # Namur's analytics: the region's campaign at its shops, five holders.
    analytics = w.as_issuer("issuer0", "/v1/analytics/regional")
    assert analytics["rows"] == [CAMPAIGN] and analytics["columns"] == ["NAM-CENTRE"]
    assert analytics["total"] == {"value": 6_000, "contributors": 5}
    liege = w.as_issuer("issuer1", "/v1/analytics/regional")
    assert liege["rows"] == [CAMPAIGN] and liege["columns"] == ["LGE-OUTREMEUSE"]
    assert liege["total"]["value"] == 2_500  # type: ignore[index]
    assert w.as_issuer("issuer2", "/v1/analytics/regional")["rows"] == []
    page = w.read_as("issuer0", "/ui/commune/analytics").decode()
    assert 'data-testid="regional"' in page and CAMPAIGN in page

    # Namur revokes its consent: its shop stops taking the region's vouchers at once.
    revoked = cli.json("--yes", "issuer", "consent", "--key", "issuer0", region, "--revoke")
    assert revoked["zones"] == []
    stopped = cli("--yes", "holder", "pay", "--key", "h0", "--campaign", CAMPAIGN,
                  keys["namshop"], "1")  # fmt: skip
    assert stopped.exit_code == Exit.REJECTED
    assert stopped.stderr.startswith("error: ZONE_NOT_CONSENTED")

    # Namur's statement lists them per shop; the payouts are in the region's statement.
    w.supervisor.stop_one(1)
    home = w.nodes[1].home
    genesis = parse((home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    store = BlockStore.open(home / config.DATA_DIR, genesis.genesis_hash, create=False)
    try:
        chain_id = genesis.chain_id
        namur = statement.compute(store, chain_id, None, bytes.fromhex(keys["issuer0"]), None,
                                  0, 2**62)  # fmt: skip
        region_s = statement.compute(store, chain_id, None, bytes.fromhex(region), None, 0, 2**62)
    finally:
        store.close()
    [line] = namur.regional
    assert (line.campaign, line.region, line.name) == (CAMPAIGN, region, "Épicerie de Namur")
    assert (line.payments, line.paid_cents) == (K_DEFAULT, 6_000)
    assert namur.payouts == [] and namur.campaigns == []
    assert region_s.settled_cents == 8_500 and region_s.regional == []
