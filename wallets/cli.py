"""``relance-wallet``: the command-line wallet for every role.

The root group wires the role groups (``key``, ``holder``, ``merchant``,
``issuer``, ``bank``, ``login``, ``tx``) and turns every ``WalletError`` into
one line and its exit code (see ``wallets.exits``).
"""

from __future__ import annotations

import dataclasses
import enum
import json
import sys
from typing import Any

import click
from click.shell_completion import get_completion_class

from node.ledger.codes import Result
from node.ledger.tx import SignedTx, decode_tx
from wallets.analytics_report import analytics_command
from wallets.commands.bank import bank_group
from wallets.commands.holder import holder_group
from wallets.commands.issuer import issuer_group
from wallets.commands.key import key_group
from wallets.commands.login import login_command
from wallets.commands.merchant import merchant_group
from wallets.commands.vouchers import vouchers_command
from wallets.context import META, common_options
from wallets.exits import WalletError
from wallets.settlement import settlement_group
from wallets.verify import verify_group

EPILOG = """\b
Exit codes: 0 ok, 1 refused by the ledger (its code is printed), 2 bad usage or
input, 3 node unreachable, 4 keystore (wrong passphrase, unknown key), 5 some
items of a batch failed, 6 accepted but not yet in a block, 7 confirmation
declined, 8 the node does not offer this yet.
Environment: RELANCE_NODE, RELANCE_KEY, RELANCE_KEYSTORE, RELANCE_HOME,
RELANCE_PASSPHRASE, RELANCE_SMTP_PASSWORD.
Shell completion: eval "$(relance-wallet completion bash)" (also zsh, fish).
\b
Examples:
  relance-wallet key new alice
  relance-wallet --node http://127.0.0.1:26601 holder balance --key alice
  relance-wallet merchant charge --key shop --image scan.png 12,50"""


class WalletGroup(click.Group):
    """Marks a ``WalletError`` for JSON output when ``--json`` was given."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WalletError as error:
            error.as_json = bool(ctx.meta.get(META, {}).get("json_output"))
            raise


@click.group(
    cls=WalletGroup,
    help="The Relance wallet for holders, merchants, communes, the bank and auditors.",
    epilog=EPILOG,
)
@click.version_option(package_name="relance")
@common_options
def main() -> None:
    pass


for _group in (key_group, holder_group, merchant_group, issuer_group, bank_group):
    main.add_command(_group)
main.add_command(login_command)
main.add_command(verify_group)
main.add_command(settlement_group)
issuer_group.add_command(analytics_command)
issuer_group.add_command(vouchers_command)


@main.command(
    "completion",
    epilog="""\b
Examples:
  eval "$(relance-wallet completion bash)"
  relance-wallet completion fish > ~/.config/fish/completions/relance-wallet.fish""",
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script (click's)."""
    cls = get_completion_class(shell)
    if cls is None:
        raise click.UsageError(f"no completion for {shell}")
    click.echo(cls(main, {}, "relance-wallet", "_RELANCE_WALLET_COMPLETE").source())


@main.group(help="Inspect transactions.", epilog="Example: relance-wallet tx decode --help")
def tx() -> None:
    pass


@tx.command(
    "decode",
    help="Decode a transaction given in hex (or '-' to read stdin).",
    epilog="""\b
Examples:
  relance-wallet tx decode --chain-id relance-devnet 92c4...
  echo 92c4... | relance-wallet tx decode --chain-id relance-devnet -""",
)
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
    for field in dataclasses.fields(payload):  # ClassVars (KIND, SPEC) are not fields
        fields[field.name] = _present(getattr(payload, field.name))
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
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _present(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.name.lower()
    return value
