"""A commune statement speaks in dates: the PDF's period in the dashboards' Belgian
format (it printed "Block time 0 to 4611686018427387904"), and ``relance-wallet
settlement statement`` takes days (``--from``, ``--to``), not Unix milliseconds."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from node.protocol.crypto import digest
from node.settlement import statement
from node.text import fmt
from tests.api.harness import NAMUR, VALIDATOR, LiveNode
from tests.api.world import seed
from tests.node.netutil import stand_in
from tests.wallet.support import Cli, cli_env, pdf_text

BRUSSELS = ZoneInfo("Europe/Brussels")


def _pdf(node: LiveNode, tmp_path: Path, from_ms: int, to_ms: int) -> str:
    computed = node.run(
        lambda: statement.compute(
            node.store, node.genesis.chain_id, None, NAMUR.public_key, None, from_ms, to_ms
        )
    )
    path = tmp_path / f"statement-{from_ms}.pdf"
    path.write_bytes(statement.to_pdf(computed))
    return " ".join(pdf_text(path).split())


def test_the_pdf_states_its_period_in_dates(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    node = LiveNode(tmp_path / "node")
    try:
        seed(node)
        top = node.run(node.ledger.last_block)
        last_time = fmt.datetime_text(top.time_ms)
        everything = _pdf(node, tmp_path, 0, 2**62)  # the API's defaults
        assert "4611686018427387904" not in everything and "Block time 0" not in everything
        assert f"From the first block to now, Brussels time; up to block {top.height} of " \
            f"{last_time}" in everything  # fmt: skip
        start, end = node.genesis.genesis_time_ms, top.time_ms
        period = _pdf(node, tmp_path, start, end)
        assert f"From {fmt.datetime_text(start)} to {fmt.datetime_text(end)} (excluded)" in period
    finally:
        node.close()


@pytest.fixture
def bank_node() -> Iterator[tuple[str, list[dict[str, list[str]]]]]:
    """A stand-in bank node: its status, and the statement queries it was asked."""
    asked: list[dict[str, list[str]]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # quiet in tests
            pass

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/v1/status":
                body = {"chain_id": "relance-api-test", "node_key": VALIDATOR.public_key.hex()}
            else:
                asked.append(urllib.parse.parse_qs(url.query))
                body = {"campaigns": []}
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    with stand_in(Handler) as url:
        yield url, asked


def test_the_wallet_asks_for_a_statement_by_days(
    bank_node: tuple[str, list[dict[str, list[str]]]], tmp_path: Path
) -> None:
    url, asked = bank_node
    cli = Cli(cli_env(tmp_path / "home", url))
    cli.json("key", "import", "namur", "--seed-hex", digest(b"api-test:namur").hex())
    cli.ok("settlement", "statement", "--key", "namur", "--from", "2026-03-01", "--to",
           "2026-03-31")  # fmt: skip
    march = datetime(2026, 3, 1, tzinfo=BRUSSELS), datetime(2026, 4, 1, tzinfo=BRUSSELS)
    assert asked == [{
        "from_ms": [str(int(march[0].timestamp() * 1000))],
        "to_ms": [str(int(march[1].timestamp() * 1000))],  # the 31st included, in Brussels
    }]  # fmt: skip
    backwards = cli("settlement", "statement", "--key", "namur", "--from", "2026-03-31",
                    "--to", "2026-03-01")  # fmt: skip
    assert backwards.exit_code == 2 and "--to" in backwards.stderr
    old = cli("settlement", "statement", "--key", "namur", "--from-ms", "0")
    assert old.exit_code == 2
