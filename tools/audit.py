"""``relance-audit``: check a node's data against the genesis file alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from node.genesis import GenesisError, parse
from node.state_tree import StateTree
from node.store.blockstore import BlockStore, StoreError


@click.group(help="Independent checks of a Relance ledger. Trust nothing but the genesis file.")
@click.version_option(package_name="relance")
def main() -> None:
    pass


@main.command("state", help="Recompute the state root of a store and compare it with its record.")
@click.option(
    "--genesis",
    "genesis_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The genesis file of the chain.",
)
@click.argument("store_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def state(genesis_path: Path, store_dir: Path, as_json: bool) -> None:
    """Example: relance-audit state --genesis genesis.toml ~/.relance/data"""
    try:
        genesis = parse(genesis_path.read_text(encoding="utf-8"))
        store = BlockStore.open(store_dir, genesis.genesis_hash, create=False)
    except (GenesisError, StoreError) as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    try:
        report = check_state_root(store, genesis.limits.state_tree_levels)
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(report))
    else:
        verdict = "OK" if report["ok"] else "MISMATCH"
        click.echo(f"height {report['height']}: state root {report['computed']} {verdict}")
    sys.exit(0 if report["ok"] else 1)


def check_state_root(store: BlockStore, levels: int) -> dict[str, object]:
    """Recompute the root over every stored state entry; compare with the recorded one."""
    height = store.height()
    recorded = store.state_root(height)
    computed = StateTree.from_items(store.state_items(), levels).root()
    return {
        "height": height,
        "recorded": None if recorded is None else recorded.hex(),
        "computed": computed.hex(),
        "ok": recorded == computed,
    }
