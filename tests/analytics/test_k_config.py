"""The per-issuer k of a node's ``config.toml`` (``[analytics]``), read by the daemon.

A real two-validator devnet: the bank's node is configured with k = 7 for
Namur, Namur's own node keeps an old config without the section (k = 5).
Both serve the same history; the stricter node hides more cells.
"""

from __future__ import annotations

import dataclasses
import functools
import time
import urllib.request
from pathlib import Path

import pytest

from node.api.tokens import make_token
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, DevnetNode, Supervisor, write_devnet
from node.ledger import tx as t
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.run.daemon import analytics_settings
from tests.node.netutil import eventually, free_base_port, get_json, post_json

DAY_MS = 86_400_000
ISSUER = "ab" * 32


def _without_section(text: str) -> str:
    return text.split("\n[analytics]\n", maxsplit=1)[0] + "\n"


def _old_config() -> str:
    settings = config.NodeConfig("n", True, "127.0.0.1", 1, "127.0.0.1", 2, ())
    return _without_section(config.render(settings))


def test_a_config_without_the_section_gets_k_5_for_everyone() -> None:
    text = _old_config()
    assert "analytics" not in text
    parsed = config.parse(text)
    assert parsed.analytics == config.AnalyticsConfig()
    assert analytics_settings(parsed.analytics).k_of(bytes.fromhex(ISSUER)) == 5


def test_the_section_parses_renders_and_is_wired() -> None:
    text = _old_config() + f'\n[analytics]\nk_default = 6\nk_by_issuer = {{ "{ISSUER}" = 9 }}\n'
    parsed = config.parse(text)
    assert parsed.analytics.k_default == 6
    assert config.parse(config.render(parsed)) == parsed
    settings = analytics_settings(parsed.analytics)
    assert settings.k_of(bytes.fromhex(ISSUER)) == 9
    assert settings.k_of(bytes(32)) == 6


@pytest.mark.parametrize(
    "section",
    [
        "k_default = 4",
        "k_default = 1001",
        "k_default = true",
        'k_default = "5"',
        'k_by_issuer = { "abcd" = 7 }',
        f'k_by_issuer = {{ "{ISSUER}" = 2 }}',
        f'k_by_issuer = {{ "{ISSUER}" = 7, "{ISSUER.upper()}" = 8 }}',
        "k_by_issuer = 7",
        "k = 5",
    ],
)
def test_a_bad_section_is_refused_with_where(section: str) -> None:
    with pytest.raises(config.ConfigError, match="analytics"):
        config.parse(_old_config() + f"\n[analytics]\n{section}\n")


def _height(node: DevnetNode) -> int:
    return int(str(get_json(node.api_url + "/v1/status")["height"]))


def _reached(node: DevnetNode, height: int) -> bool | None:
    return _height(node) >= height or None


def _suppressed(node: DevnetNode, issuer: Signer, chain: str, route: str) -> int:
    status = get_json(node.api_url + "/v1/status")
    node_key = bytes.fromhex(str(status["node_key"]))
    token = make_token(issuer, chain, node_key, time.time_ns() // 1_000_000, 600_000)
    request = urllib.request.Request(
        f"{node.api_url}/v1/analytics/{route}", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body: bytes = response.read()
    return body.decode().count('"value": null')


@pytest.mark.slow
def test_a_larger_configured_k_suppresses_more_cells(tmp_path: Path) -> None:
    now_ms = time.time_ns() // 1_000_000
    nodes = write_devnet(tmp_path / "net", 2, free_base_port(4), now_ms)
    keys = load_keys(tmp_path / "net" / DEMO_KEYS_FILE)
    issuer, bank = keys["issuer0"], keys["bank"]
    strict, plain = nodes[0].home / config.CONFIG_FILE, nodes[1].home / config.CONFIG_FILE
    settings = config.parse(strict.read_text(encoding="utf-8"))
    analytics = config.AnalyticsConfig(k_by_issuer=((issuer.public_key, 7),))
    text = config.render(dataclasses.replace(settings, analytics=analytics))
    strict.write_text(text, encoding="utf-8")
    plain.write_text(_without_section(plain.read_text(encoding="utf-8")), encoding="utf-8")
    genesis = parse_genesis((nodes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    chain, zones = genesis.chain_id, genesis.issuers[0].zones
    shops = [Signer(digest(f"k-shop:{i}".encode())) for i in range(2)]
    holders = [Signer(digest(f"k-holder:{i}".encode())) for i in range(13)]
    items: list[tuple[Signer, t.Payload]] = [
        (issuer, t.RegisterMerchant(shops[0].public_key, "Épicerie", "47.11", zones[0],
                                    digest(b"k0"), False)),
        (issuer, t.RegisterMerchant(shops[1].public_key, "Brasserie", "56.10", zones[0],
                                    digest(b"k1"), False)),
        (issuer, t.CreateCampaign("k-test", "k", (), (), now_ms - DAY_MS, now_ms + DAY_MS, 900)),
        (bank, t.Fund("k-test", 900 * len(holders), "DEP-K")),
        (issuer, t.Allocate("k-test", tuple(t.Allocation(h.public_key, 900, zones[0])
                                            for h in holders))),
    ]  # fmt: skip
    # Six holders at the grocer's, seven at the brasserie: k = 7 hides the grocer's
    # (and, by secondary suppression, the brasserie's); k = 5 shows both.
    items += [(h, t.Pay("k-test", shops[0 if n < 6 else 1].public_key, 300, ""))
              for n, h in enumerate(holders)]  # fmt: skip
    sequences: dict[bytes, int] = {}
    signed = []
    for who, payload in items:
        sequence = sequences.get(who.public_key, 0)
        sequences[who.public_key] = sequence + 1
        signed.append(t.Tx(chain, who.public_key, sequence, payload).sign(who).encode().hex())
    supervisor = Supervisor(nodes)
    supervisor.start()
    try:
        for node in nodes:
            eventually(functools.partial(get_json, node.api_url + "/v1/health"), 30, "up")
        url = nodes[1].api_url + "/v1/transactions?wait=true"
        status, body = post_json(url, {"txs": signed})
        assert status == 200, body
        results = body["results"]
        assert isinstance(results, list) and all(r["accepted"] for r in results), results
        last = max(int(r["height"]) for r in results)
        for node in nodes:
            eventually(functools.partial(_reached, node, last), 30, f"{node.name} at {last}")
        loose = _suppressed(nodes[1], issuer, chain, "categories")
        stricter = _suppressed(nodes[0], issuer, chain, "categories")
    finally:
        supervisor.stop()
    assert loose == 0
    assert stricter > loose
