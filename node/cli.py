"""``relance-node``: run and manage a validator or observer node."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from node.genesis import GenesisError, parse


@click.group(
    help="Run and manage a Relance node.\n\nExample: relance-node genesis check genesis.toml"
)
@click.version_option(package_name="relance")
def main() -> None:
    pass


@main.group(help="Inspect genesis documents.")
def genesis() -> None:
    pass


@genesis.command("check", help="Validate a genesis file and print its hash.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def genesis_check(path: Path, as_json: bool) -> None:
    """Example: relance-node genesis check configs/genesis.example.toml"""
    try:
        doc = parse(path.read_text(encoding="utf-8"))
    except GenesisError as exc:
        click.echo(f"error: {path}: {exc}", err=True)
        sys.exit(2)
    summary = {
        "chain_id": doc.chain_id,
        "genesis_hash": doc.genesis_hash.hex(),
        "validators": len(doc.validators),
        "issuers": [i.name for i in doc.issuers],
        "auditors": len(doc.auditors),
    }
    if as_json:
        click.echo(json.dumps(summary))
        return
    click.echo(f"chain id:     {doc.chain_id}")
    click.echo(f"genesis hash: {doc.genesis_hash.hex()}")
    click.echo(f"validators:   {len(doc.validators)}")
    click.echo(f"issuers:      {', '.join(summary['issuers']) or '-'}")  # type: ignore[arg-type]
    click.echo(f"auditors:     {len(doc.auditors)}")
