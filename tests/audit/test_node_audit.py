"""``relance-audit verify --node``: the audit of a running 3-validator devnet over HTTP.

Whole blocks are readable by auditors and the bank only: without a token the
node answers 401, with a holder's token 403. With the auditor's keystore key
the audit downloads every certified block (falling back to the next node when
one does not answer) and passes, exactly as from a data directory.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from node.api import tokens
from node.devnet import demo as demo_module
from node.devnet.network import DEMO_KEYS_FILE, Supervisor, write_devnet
from node.protocol.crypto import Signer
from node.protocol.genesis import parse
from tests.node.netutil import eventually, free_base_port, get_json
from tools.audit.cli import main
from wallets.keystore import Keystore

TRANSACTIONS_WANTED = 12
PASSPHRASE = "correct horse battery staple"


async def _traffic(demo: demo_module.Demo, now_ms: int) -> None:
    """Demo traffic until TRANSACTIONS_WANTED are committed."""
    stop = asyncio.Event()
    task = asyncio.create_task(demo_module.run_demo(demo, stop, now_ms))
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            if sum(a.sequence or 0 for a in demo.accounts.values()) >= TRANSACTIONS_WANTED:
                return
            if task.done():
                task.result()
                raise AssertionError("the demo stopped early")
            await asyncio.sleep(0.5)  # real processes: their progress is all there is to wait on
        raise AssertionError("the demo did not commit enough transactions in time")
    finally:
        stop.set()
        await task


def _status_code(url: str, token: str | None) -> int:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return int(r.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _token(signer: Signer, api_url: str) -> str:
    status = get_json(api_url + "/v1/status")
    chain_id, node_key = status["chain_id"], status["node_key"]
    assert isinstance(chain_id, str) and isinstance(node_key, str)
    now_ms = time.time_ns() // 1_000_000
    return tokens.make_token(signer, chain_id, bytes.fromhex(node_key), now_ms, 60_000)


@pytest.mark.slow
def test_an_auditor_audits_a_running_devnet_over_http(tmp_path: Path) -> None:
    now_ms = time.time_ns() // 1_000_000
    nodes = write_devnet(tmp_path / "net", 3, free_base_port(6), now_ms)
    genesis_file = nodes[0].home / "genesis.toml"
    genesis = parse(genesis_file.read_text(encoding="utf-8"))
    keys = demo_module.load_keys(tmp_path / "net" / DEMO_KEYS_FILE)
    Keystore(tmp_path / "keys").add("auditor", keys["auditor"], PASSPHRASE)
    runner = CliRunner(env={"RELANCE_PASSPHRASE": PASSPHRASE, "RELANCE_KEY": None})
    supervisor = Supervisor(nodes)
    supervisor.start()
    try:
        for node in nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, f"{node.name} up")
        demo = demo_module.Demo(genesis, [n.api_url for n in nodes], keys)
        asyncio.run(_traffic(demo, now_ms))
        top = get_json(nodes[0].api_url + "/v1/status")["height"]
        assert isinstance(top, int) and top >= 2

        certified = f"{nodes[1].api_url}/v1/blocks/1/certified"
        assert _status_code(certified, None) == 401
        stranger = Signer(bytes(range(32)))
        assert _status_code(certified, _token(stranger, nodes[1].api_url)) == 403
        assert _status_code(certified, _token(keys["auditor"], nodes[1].api_url)) == 200

        base = ["verify", "--genesis", str(genesis_file), "--keystore", str(tmp_path / "keys")]
        dead = f"http://127.0.0.1:{free_base_port(1)}"  # nobody listens: skipped
        urls = ["--node", dead, "--node", nodes[0].api_url, "--node", nodes[1].api_url]
        result = runner.invoke(
            main, [*base, *urls, "--key", "auditor", "--to-height", str(top), "--json"]
        )
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["ok"] and report["divergence"] is None
        assert report["heights_checked"] == top
        assert sum(report["kinds"].values()) >= TRANSACTIONS_WANTED

        result = runner.invoke(main, [*base, "--node", nodes[0].api_url, "--quiet"])
        assert result.exit_code == 2 and "--key" in result.stderr

        issuer_keys = tmp_path / "issuer-keys"
        Keystore(issuer_keys).add("auditor", keys["issuer0"], PASSPHRASE)  # not an auditor
        args = ["verify", "--genesis", str(genesis_file), "--keystore", str(issuer_keys)]
        result = runner.invoke(main, [*args, "--node", nodes[0].api_url, "--key", "auditor"])
        assert result.exit_code == 2 and "403" in result.stderr
    finally:
        supervisor.stop()
