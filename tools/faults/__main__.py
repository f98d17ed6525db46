"""``python -m tools.faults``: run the fault scenarios from a shell.

    python -m tools.faults list
    python -m tools.faults run paused-proposer --seed 7 --dir /tmp/faults
    python -m tools.faults run all --json

Exit code 0 when every scenario run passed, 1 otherwise. Each run leaves its
nodes' homes (logs, journals, stores) and ``report.json`` under ``--dir``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from tools.faults.scenarios import SCENARIOS, run_scenario


@click.group(help="Fault scenarios on a local 4-validator network (127.0.0.1 only).")
def main() -> None:
    pass


@main.command("list", help="The scenarios and what each shows.")
def list_scenarios() -> None:
    for name, scenario in SCENARIOS.items():
        click.echo(f"{name:24} {scenario.summary}")


@main.command("run", help="Run one scenario (or 'all') and print its report.")
@click.argument("name", type=click.Choice([*SCENARIOS, "all"]))
@click.option("--seed", type=int, default=1, show_default=True, help="Faults and workload seed.")
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the nodes' homes go (default: a new temporary directory, kept).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=1),
    help="Seconds of faults, for scenarios with a length (repeated-kills, kill-during-submit).",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON report per line.")
def run(name: str, seed: int, workdir: Path | None, duration: float | None, as_json: bool) -> None:
    root = workdir or Path(tempfile.mkdtemp(prefix="relance-faults-"))
    root.mkdir(parents=True, exist_ok=True)
    names = list(SCENARIOS) if name == "all" else [name]
    passed = True
    for each in names:
        report = run_scenario(each, root, seed, duration)
        passed = passed and report.passed
        click.echo(json.dumps(report.to_json()) if as_json else report.summary())
    if not as_json:
        click.echo(f"homes, logs and reports under {root}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
