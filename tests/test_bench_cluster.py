"""`relance-bench cluster` is registered; its ceiling unit measures (the run is manual)."""

from __future__ import annotations

from click.testing import CliRunner

from tools.bench import main
from tools.bench_cluster import verify_rate


def test_cluster_is_a_bench_command() -> None:
    result = CliRunner().invoke(main, ["cluster", "--help"])
    assert result.exit_code == 0
    assert "--duration" in result.output


def test_verify_rate_is_measured() -> None:
    assert verify_rate(200) > 0
