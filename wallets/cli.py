"""``relance-wallet``: the command-line wallet for every role."""

from __future__ import annotations

import json
import sys

import click

from node.ledger.codes import Result
from node.ledger.tx import Allocation, Authorization, Settlement, SignedTx, decode_tx


@click.group(help="The Relance wallet for holders, merchants, communes, the bank and auditors.")
@click.version_option(package_name="relance")
def main() -> None:
    pass


@main.group(help="Inspect transactions.")
def tx() -> None:
    pass


@tx.command("decode", help="Decode a transaction given in hex (or '-' to read stdin).")
@click.argument("data")
@click.option("--chain-id", required=True, help="The chain the transaction is meant for.")
def tx_decode(data: str, chain_id: str) -> None:
    """Example: relance-wallet tx decode --chain-id relance-devnet 92c4...."""
    text = sys.stdin.read() if data == "-" else data
    try:
        raw = bytes.fromhex(text.strip())
    except ValueError:
        click.echo("error: not hexadecimal", err=True)
        sys.exit(2)
    decoded = decode_tx(raw, chain_id)
    if isinstance(decoded, Result):
        click.echo(json.dumps({"result": decoded.name, "message": decoded.message}))
        sys.exit(1)
    click.echo(json.dumps(describe(decoded), indent=2, ensure_ascii=False))


def describe(signed: SignedTx) -> dict[str, object]:
    """A JSON-ready view of a transaction (presentation only)."""
    payload = signed.tx.payload
    fields: dict[str, object] = {}
    for name in payload.__dataclass_fields__:
        fields[name] = _present(getattr(payload, name))
    return {
        "tx_id": signed.tx_id.hex(),
        "kind": payload.KIND.name.lower(),
        "chain_id": signed.tx.chain_id,
        "sender": signed.tx.sender.hex(),
        "sequence": signed.tx.sequence,
        "signature_valid": signed.signature_ok(),
        "fields": fields,
    }


def _present(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, tuple):
        return [_present(v) for v in value]
    if isinstance(value, (Allocation, Settlement, Authorization)):
        return {name: _present(getattr(value, name)) for name in value.__dataclass_fields__}
    return value
