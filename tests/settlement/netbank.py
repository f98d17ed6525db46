"""A real devnet whose bank node (node0) runs the settlement service, for process tests.

Each node is its own process of the test entry point (``python -m tools.faults.node
start``); node0 may be started with ``RELANCE_TEST_SETTLEMENT_CRASH`` so that it
SIGKILLs itself at a named point.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner

from node.api.tokens import make_token
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, DevnetNode, write_devnet
from node.ledger import tx as t
from node.protocol.crypto import Signer, digest
from node.protocol.genesis import Genesis, parse
from node.run.cli import main as node_cli
from tests.node.netutil import eventually, free_base_port, get_json, post_json
from tools.faults.node import ENV_SETTLEMENT_CRASH as CRASH_ENV

ESCROW_IBAN = "BE68539007547034"


def node_cli_ok(*args: str) -> str:
    result = CliRunner().invoke(node_cli, list(args))
    assert result.exit_code == 0, (args, result.output)
    return result.output


@dataclass
class BankNet:
    root: Path
    validators: int = 1
    day_ms: int = 86_400_000
    nodes: list[DevnetNode] = field(default_factory=list)
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        now = time.time_ns() // 1_000_000
        self.nodes = write_devnet(
            self.root, self.validators, free_base_port(2 * self.validators), now
        )
        self.genesis: Genesis = parse((self.bank_home / "genesis.toml").read_text(encoding="utf-8"))
        self.keys = load_keys(self.root / DEMO_KEYS_FILE)
        self.bank, self.issuer = self.keys["bank"], self.keys["issuer0"]
        self.auditor = self.keys["auditor"]
        seed = self.root / "bank.seed"
        seed.write_text(self.bank.seed.hex(), encoding="ascii")
        home = str(self.bank_home)
        node_cli_ok("settlement", "init", "--home", home, "--bank-key", str(seed),
                    "--day-ms", str(self.day_ms))  # fmt: skip
        node_cli_ok("settlement", "escrow", "--home", home, self.issuer.public_key.hex(),
                    ESCROW_IBAN, "--name", "Ville de Namur")  # fmt: skip

    @property
    def bank_home(self) -> Path:
        return self.root / "node0"

    @property
    def outbox(self) -> Path:
        return self.bank_home / "settlement" / "outbox"

    @property
    def url(self) -> str:
        return self.nodes[0].api_url

    @property
    def chain(self) -> str:
        return self.genesis.chain_id

    # --- processes ------------------------------------------------------------------------

    def start(self, index: int = 0, crash: str | None = None) -> None:
        node = self.nodes[index]
        env = {k: v for k, v in os.environ.items() if k != CRASH_ENV}
        if crash is not None:
            env[CRASH_ENV] = crash
        with (node.home / "node.log").open("ab") as log:
            self.procs[index] = subprocess.Popen(
                [sys.executable, "-m", "tools.faults.node", "start", "--home", str(node.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )

    def start_all(self) -> None:
        for index in range(len(self.nodes)):
            self.start(index)
        for node in self.nodes:
            eventually(lambda n=node: get_json(n.api_url + "/v1/health"), 30, "node up")

    def wait_up(self) -> None:
        eventually(lambda: get_json(self.url + "/v1/health"), 60, "bank node up")

    def wait_killed(self, index: int = 0, timeout_s: float = 60) -> None:
        """The node SIGKILLed itself at its crash point."""
        code = self.procs[index].wait(timeout=timeout_s)
        assert code == -signal.SIGKILL, f"node{index} exited with {code}, not SIGKILL"

    def stop(self, index: int = 0) -> None:
        proc = self.procs.get(index)
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def stop_all(self) -> None:
        for index in list(self.procs):
            self.stop(index)

    # --- the ledger -------------------------------------------------------------------------

    def signed(self, who: Signer, payload: t.Payload) -> bytes:
        sequence = int(self.account(who.public_key)["sequence"])  # type: ignore[call-overload]
        return t.Tx(self.chain, who.public_key, sequence, payload).sign(who).encode()

    def submit(self, who: Signer, payload: t.Payload, node: int = 0) -> str:
        data = self.signed(who, payload)
        url = self.nodes[node].api_url + "/v1/transactions?wait=true"
        status, body = post_json(url, {"tx": data.hex()})
        assert status == 200 and body["height"] is not None, body
        return str(body["tx_id"])

    def send_batch(self, items: list[bytes]) -> None:
        """Submit without waiting (the node may kill itself right after)."""
        status, body = post_json(self.url + "/v1/transactions", {"txs": [d.hex() for d in items]})
        assert status == 200, body
        results = body["results"]
        assert isinstance(results, list)
        assert all(item["accepted"] for item in results), body

    def account(self, key: bytes) -> dict[str, object]:
        return get_json(f"{self.url}/v1/accounts/{key.hex()}")

    def token(self, who: Signer) -> str:
        node_key = bytes.fromhex(str(get_json(self.url + "/v1/status")["node_key"]))
        now = time.time_ns() // 1_000_000
        return make_token(who, self.chain, node_key, now, 600_000)

    def get(self, path: str, who: Signer) -> bytes:
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.token(who)}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            data: bytes = response.read()
        return data

    def get_json(self, path: str, who: Signer) -> dict[str, object]:
        body: dict[str, object] = json.loads(self.get(path, who))
        return body

    def payouts(self) -> list[dict[str, object]]:
        items: list[dict[str, object]] = []
        cursor = ""
        while True:
            page = self.get_json(f"/v1/payouts?limit=500{cursor}", self.bank)
            items += page["items"]  # type: ignore[arg-type]
            if page["next_cursor"] is None:
                return items
            cursor = f"&cursor={page['next_cursor']}"

    def register_iban(self, merchant: Signer, iban: str, salt: bytes, schedule: str) -> None:
        request = urllib.request.Request(
            self.url + "/v1/settlement/iban",
            data=json.dumps({"iban": iban, "salt": salt.hex(), "schedule": schedule}).encode(),
            headers={
                "Authorization": f"Bearer {self.token(merchant)}",
                "Content-Type": "application/json",
            },
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 200


def key(name: str) -> Signer:
    return Signer(digest(f"settlement-test:{name}".encode()))


def settlement_status(home: Path) -> dict[str, object]:
    body: dict[str, object] = json.loads(node_cli_ok("settlement", "status", "--home", str(home)))
    return body
