"""Drive a running devnet with the simulated town, through the HTTP API only.

Reads the devnet's demo keys (``node.devnet.demo.load_keys``: ``bank``, ``issuer0``...) and
its genesis (for the commune's zones), then submits the town's plan in order:
the set-up one transaction at a time, the town's life in batches, each
waiting for its block. A devnet's block clock is the real clock, so the plan's
times of day are not reproduced there (the in-process tests do reproduce them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from node.client.http_json import Unreachable, request_json
from node.devnet.demo import load_keys
from node.devnet.network import DEMO_KEYS_FILE, node_homes
from node.devnet.town.model import Town, plan, sign
from node.ledger import tx as t
from node.protocol.errors import NodeRunError
from node.protocol.genesis import parse as parse_genesis
from node.run import config

BATCH_TXS: Final = 200
TIMEOUT_S: Final = 60.0


class DriveError(NodeRunError, RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Outcome:
    submitted: int
    accepted: int
    rejected: dict[str, int]


def _request(url: str, payload: object | None = None) -> dict[str, object]:
    try:
        return request_json(url, payload, TIMEOUT_S)
    except Unreachable as error:
        raise DriveError(str(error)) from None


def drive(
    devnet: Path, node_url: str, seed: int, households: int, days: int, issuer_index: int = 0
) -> Outcome:
    keys = load_keys(devnet / DEMO_KEYS_FILE)
    issuer, bank = keys[f"issuer{issuer_index}"], keys["bank"]
    homes = node_homes(devnet)
    genesis = parse_genesis((homes[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    zones = next(i.zones for i in genesis.issuers if i.public_key == issuer.public_key)
    town = Town(seed, zones, households=households)
    now_ms = time.time_ns() // 1_000_000
    campaign = f"sim-{seed}-{now_ms // 1000 % 100_000}"
    steps = plan(town, issuer, bank, campaign, now_ms, days)
    sequences: dict[bytes, int] = {}
    for signer in (issuer, bank):
        account = _request(f"{node_url}/v1/accounts/{signer.public_key.hex()}")
        sequences[signer.public_key] = int(str(account.get("sequence", 0)))
    signed = [s for _, s in sign(steps, genesis.chain_id, sequences)]
    setup_count = sum(
        1 for s in signed if not isinstance(s.tx.payload, (t.Pay, t.Transfer, t.Redeem))
    )
    accepted, rejected = 0, dict[str, int]()
    for item in signed[:setup_count]:
        body = _request(f"{node_url}/v1/transactions?wait=true", {"tx": item.encode().hex()})
        accepted, rejected = _count(body, accepted, rejected)
    for i in range(setup_count, len(signed), BATCH_TXS):
        batch = [s.encode().hex() for s in signed[i : i + BATCH_TXS]]
        body = _request(f"{node_url}/v1/transactions?wait=true", {"txs": batch})
        results = body.get("results")
        for result in results if isinstance(results, list) else []:
            accepted, rejected = _count(result, accepted, rejected)
    return Outcome(len(signed), accepted, rejected)


def _count(body: object, accepted: int, rejected: dict[str, int]) -> tuple[int, dict[str, int]]:
    if isinstance(body, dict) and body.get("accepted"):
        return accepted + 1, rejected
    code = str(body.get("result", "ERROR")) if isinstance(body, dict) else "ERROR"
    rejected[code] = rejected.get(code, 0) + 1
    return accepted, rejected
