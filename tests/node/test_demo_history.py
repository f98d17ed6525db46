"""The demo devnet starts with a month of certified town life, then goes on live, and
prints how to open each role's page with a ready key (issue 16, "Demo")."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.client.lightclient import CertifiedHeader, verify_header
from node.consensus.types import Block, Certificate
from node.devnet.demo import load_keys
from node.devnet.demo_history import HOLDER_KEY, MERCHANT_KEY, history_start, write_history
from node.devnet.network import DEMO_KEYS_FILE, write_devnet
from node.devnet.town.model import BRUSSELS
from node.protocol.genesis import parse
from node.run import config
from node.store.blockstore import BlockStore
from tests.node.netutil import free_base_port, get_json

DAY_MS = 86_400_000
START_S_MAX = 150.0  # pages answer within this (make run: ~20-40 s on an idle machine)


def test_the_month_is_certified_by_the_devnets_validators_and_has_a_towns_shape(
    tmp_path: Path,
) -> None:
    now = time.time_ns() // 1_000_000
    members = write_devnet(tmp_path, 3, free_base_port(6), history_start(now))
    history = write_history(tmp_path, members, load_keys(tmp_path / DEMO_KEYS_FILE), now)
    assert history.last_ms - history.first_ms >= 28 * DAY_MS and history.last_ms < now
    genesis = parse((members[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    hours: Counter[tuple[int, int]] = Counter()
    days = set()
    for member in members:  # every node holds the same certified blocks
        store = BlockStore.open(member.home / config.DATA_DIR, genesis.genesis_hash, False)
        try:
            assert store.height() == history.blocks
            for height in range(1, store.height() + 1):
                raw_block, raw_cert = store.block(height), store.certificate(height)
                assert raw_block is not None and raw_cert is not None
                block = Block.decode(raw_block)
                verify_header(genesis, CertifiedHeader(block.header, Certificate.decode(raw_cert)))
                if member is members[0] and block.txs:
                    when = datetime.fromtimestamp(block.header.time_ms / 1000, UTC)
                    when = when.astimezone(BRUSSELS)
                    hours[(when.weekday(), when.hour)] += len(block.txs)
                    days.add(when.date())
        finally:
            store.close()
    assert len(days) >= 28  # something every day
    assert len({h for _, h in hours}) >= 10  # opening hours, not one hour of one day
    assert len({d for d, _ in hours}) == 7  # every weekday
    assert history.txs > 20 * 30  # a town's life, not a handful


@pytest.mark.slow
def test_make_run_starts_on_the_month_and_prints_each_roles_page(tmp_path: Path) -> None:
    home = tmp_path / "devnet"
    base = free_base_port(4)
    started = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "node.run.cli", "devnet", "--nodes", "2", "--home", str(home),
         "--demo", "--base-port", str(base)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
        env=os.environ.copy(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = []
        while "Pages ready" not in "".join(lines[-1:]):  # the views replayed the month
            line = proc.stdout.readline()
            assert line, "".join(lines)  # the command ended early
            lines.append(line)
            assert time.monotonic() - started < START_S_MAX, "".join(lines)
        output = "".join(lines)
        links = dict(re.findall(r"^  (\S.*?)\s+key \S+\s+(http\S+)$", output, re.M))
        assert set(links) == {"commune", "bank", "merchant", "merchant counter",
                              "citizen (letter's balance link)", "auditor"}, output  # fmt: skip
        api = f"http://127.0.0.1:{base + 1}"
        status = _wait_for(f"{api}/v1/status", started)
        keys = json.loads((home / DEMO_KEYS_FILE).read_text(encoding="utf-8"))
        assert {"bank", "auditor", "namur", MERCHANT_KEY, HOLDER_KEY} <= set(keys)
        assert "issuer0" not in keys  # communes are named by commune
        first = get_json(f"{api}/v1/blocks/1")
        first_ms = int(str(first["time_ms"]))
        assert int(str(status["block_time_ms"])) - first_ms >= 28 * DAY_MS
        landings = {
            "commune": "/ui/commune",
            "bank": "/ui/bank",
            "merchant": "/ui/merchant",
            "auditor": "/ui/auditor",
            "citizen (letter's balance link)": "/ui/holder",
        }
        pages = {}
        for role, landing in landings.items():
            final, code, pages[role] = _open(links[role])
            assert (final, code) == (api + landing, 200), role
        assert links["merchant counter"] == f"{api}/ui/merchant/counter"
        bank_page = pages["bank"]
        assert 'data-testid="no-journal"' not in bank_page  # the bank's node keeps it
        settled = re.search(r'data-group="settled".*?tile-note">([0-9\u00a0]+) ', bank_page, re.S)
        assert settled is not None and int(settled.group(1).replace("\u00a0", "")) > 0
        _wait_for(f"{api}/v1/status", started, above=int(str(status["height"])))  # it goes on
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # it stops its validators
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def _open(url: str) -> tuple[str, int, str]:
    """Follow the login (or balance) link with a cookie jar, as a browser would: where it
    lands, the status and the page."""
    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with opener.open(url, timeout=10) as response:
        body: bytes = response.read()
        return response.geturl(), response.status, body.decode()


def _wait_for(url: str, started: float, above: int = -1) -> dict[str, object]:
    while True:
        try:
            body = get_json(url)
            if int(str(body["height"])) > above:
                return body
        except (urllib.error.URLError, OSError, KeyError, ValueError):
            pass
        assert time.monotonic() - started < START_S_MAX + 60, url
        time.sleep(0.5)  # processes starting: nothing to wait on but time
