"""`relance-bench ledger` and `audit` run end to end on a small load and report
consistent figures (behaviour only: the figures themselves go in notes).

Each runs as its own process, as a user runs it (the ledger bench freezes the
process's heap, and the inline mode pins it to one core)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

BENCH = [sys.executable, "-m", "tools.bench.cli"]


def _run(*args: str) -> dict[str, object]:
    done = subprocess.run([*BENCH, *args], check=False, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert isinstance(found, dict)
    return found


@pytest.mark.parametrize("mode", ["processes", "inline"])
def test_ledger_bench_applies_every_payment_and_reports_its_ratio(mode: str) -> None:
    figures = _run(
        "ledger", "-n", "600", "-b", "200", "--holders", "150", "--merchants", "12",
        "--verify", mode,
    )  # fmt: skip
    assert figures["transactions"] == 600 and figures["verify"] == mode
    tx_per_s, verify_per_s = figures["tx_per_s"], figures["verify_per_s"]
    assert isinstance(tx_per_s, float) and isinstance(verify_per_s, float)
    assert tx_per_s > 0 and verify_per_s > 0
    assert figures["ratio"] == pytest.approx(tx_per_s / verify_per_s, rel=1e-3)
    assert (figures["verify_worker_per_s"] is None) == (mode == "inline")


def test_ledger_bench_sets_up_more_holders_than_one_fund_can_pay_for() -> None:
    """12,000 holders of 100 EUR is above the genesis amount_max_cents of one fund (issue 18:
    the set-up stopped with a traceback); it also reports set-up time, proof size and memory."""
    figures = _run(
        "ledger", "-n", "300", "-b", "100", "--holders", "12000", "--merchants", "12",
        "--verify", "inline",
    )  # fmt: skip
    assert figures["transactions"] == 300 and figures["holders"] == 12_000
    setup_s, proof_bytes, peak = figures["setup_s"], figures["proof_bytes"], figures["peak_rss_mb"]
    assert isinstance(setup_s, float) and setup_s > 0
    # A logarithmic proof: about 15 siblings of 32 bytes at this size, far below 1.5 KB.
    assert isinstance(proof_bytes, int) and 200 < proof_bytes < 1000
    assert isinstance(peak, float) and peak > 10


def test_ledger_bench_refuses_more_holders_than_it_supports() -> None:
    done = subprocess.run(
        [*BENCH, "ledger", "--holders", "10000001"], check=False, capture_output=True, text=True
    )
    assert done.returncode == 2 and "10000001" in done.stderr


def test_ledger_bench_refuses_blocks_larger_than_a_block_may_be() -> None:
    """Its blocks are real blocks now (``node.app.commit``): at most BLOCK_TXS_MAX."""
    done = subprocess.run(
        [*BENCH, "ledger", "--block-size", "2001"], check=False, capture_output=True, text=True
    )
    assert done.returncode == 2 and "2001" in done.stderr


def test_audit_bench_audits_the_whole_history() -> None:
    figures = _run("audit", "-n", "400", "-b", "100", "--holders", "100")
    assert isinstance(figures["transactions"], int) and figures["transactions"] >= 400
    assert isinstance(figures["ratio"], float) and figures["ratio"] > 0
    phase_us = figures["phase_us"]
    assert isinstance(phase_us, dict)
    assert {"fetch_decode", "execute", "state_tree", "cross_checks"} <= set(phase_us)
    # The ceiling comes from the phases measured: the auditing process's microseconds a
    # transaction (waits apart) in units of one verification on one core, and those of
    # the process that computes the state roots.
    verify_per_s, cores = figures["verify_per_s"], figures["cores"]
    assert isinstance(verify_per_s, float) and isinstance(cores, int)
    us = {k: float(v) for k, v in phase_us.items()}
    assert us["state_root_process"] > 0
    s = us["state_root_process"] / (1e6 * cores / verify_per_s)
    for key, phases in (
        ("ceiling", ("fetch_decode", "execute", "state_tree", "cross_checks")),
        ("ceiling_decode_state", ("fetch_decode", "state_tree")),
    ):
        m = sum(us[p] for p in phases) / (1e6 * cores / verify_per_s)
        expected = min(1 / (1 + m + s), 1 / (cores * max(m, s)))
        assert figures[key] == pytest.approx(expected, rel=0.02, abs=2e-4), key
