"""`relance-bench cluster`: registered, its ceiling unit measures, its `--rate` open loop."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from click.testing import CliRunner

from node.protocol.crypto import verify_raw
from tools.bench import cluster as bench_cluster
from tools.bench.cli import main


def test_cluster_is_a_bench_command() -> None:
    result = CliRunner().invoke(main, ["cluster", "--help"])
    assert result.exit_code == 0
    assert "--duration" in result.output


def test_verify_rate_is_the_signatures_verified_per_second(monkeypatch: pytest.MonkeyPatch) -> None:
    verified: list[bool] = []

    def counting(message: bytes, key: bytes, signature: bytes) -> bool:
        verified.append(verify_raw(message, key, signature))
        return verified[-1]

    clock = iter((10.0, 10.5))  # the start and the end of the timed loop
    monkeypatch.setattr(bench_cluster, "verify_raw", counting)
    monkeypatch.setattr(bench_cluster, "time", SimpleNamespace(perf_counter=lambda: next(clock)))
    assert bench_cluster.verify_rate(200) == 400.0
    assert verified == [True] * 200


def test_a_signature_that_does_not_verify_stops_the_measure(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench_cluster, "verify_raw", lambda *_: False)
    with pytest.raises(RuntimeError, match="does not verify"):
        bench_cluster.verify_rate(10)


def test_rate_is_auto_or_a_positive_number() -> None:
    for bad in ("0", "-5", "fast", "nan"):
        result = CliRunner().invoke(main, ["cluster", "--rate", bad])
        assert result.exit_code == 2, bad
        assert "'auto' or tx/s above 0" in result.output


def test_a_fixed_rate_needs_enough_presigned_payments() -> None:
    args = ["cluster", "--rate", "500", "--duration", "10", "--holders", "100", "--rounds", "40"]
    result = CliRunner().invoke(main, args)  # 5,000 wanted, 4,000 pre-signed: refused at once
    assert result.exit_code == 2
    assert "4000 pre-signed payments" in result.output


def test_the_open_loop_goes_on_with_each_holders_next_payment() -> None:
    signed = [[f"h{h}r{r}".encode() for r in range(3)] for h in range(3)]
    # holder 1 dropped out of the saturated phase; holder 2 is one payment ahead of holder 0
    queue = bench_cluster._open_loop_queue(signed, {0: 1, 2: 2}, rate=2.0, duration_s=1.5)
    assert queue == [b"h0r1", b"h2r2", b"h0r2"]
    with pytest.raises(RuntimeError, match="raise --rounds or --holders"):
        bench_cluster._open_loop_queue(signed, {0: 1, 2: 2}, rate=2.0, duration_s=2.0)


@pytest.mark.slow
def test_rate_auto_runs_at_half_the_saturated_rate() -> None:
    """One validator, 3 s a phase (about 15 s in all): the JSON has the open loop's figures
    and the sender kept near the asked rate, half of what the lanes committed."""
    args = ["cluster", "--nodes", "1", "--duration", "3", "--holders", "200", "--rounds", "30"]
    result = CliRunner().invoke(main, [*args, "--lanes", "2", "--rate", "auto"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output.strip().splitlines()[-1])
    assert (figures["bench"], figures["nodes"], figures["rate_mode"]) == ("cluster", 1, "auto")
    assert figures["tx_per_s"] > 0 and figures["ratio"] > 0
    rate = figures["rate"]
    assert set(rate) >= {
        "asked_tx_per_s",
        "sent_tx_per_s",
        "committed_tx_per_s",
        "p50_ms",
        "p90_ms",
        "p99_ms",
        "failed",
        "lag_max_ms",
    }
    assert rate["asked_tx_per_s"] == pytest.approx(figures["tx_per_s"] / 2, rel=0.01)
    assert rate["sent_tx_per_s"] == pytest.approx(rate["asked_tx_per_s"], rel=0.25)
    assert rate["committed_tx_per_s"] == pytest.approx(rate["asked_tx_per_s"], rel=0.25)
    assert rate["failed"] == 0
    assert 0 < rate["p50_ms"] <= rate["p90_ms"] <= rate["p99_ms"]
