"""`relance-bench cluster` is registered; its ceiling unit measures (the run is manual)."""

from __future__ import annotations

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
