"""The command tree: every command has help with examples; completion; usage errors
are exit 2 without a node."""

from __future__ import annotations

import json
from pathlib import Path

import click

from node.ledger import tx as t
from node.protocol.crypto import Signer
from tests.wallet.support import Cli, cli_env
from wallets.cli import main
from wallets.exits import Exit

OURS = ("wallets.cli", "wallets.commands.")  # other groups belong to other issues


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            out += _commands(command, (*path, name))
        elif command.callback is not None and command.callback.__module__.startswith(OURS):
            out.append((*path, name))
    return out


def test_every_wallet_command_has_help_with_examples(tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path))
    commands = _commands(main)
    assert ("merchant", "charge") in commands and ("issuer", "mail") in commands
    assert len(commands) >= 30
    for command in commands:
        shown = cli.ok(*command, "--help").stdout
        assert "Example" in shown, command
        assert "--json" in shown or command == ("completion",) or command[0] == "tx", command


def test_completion_scripts(tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path))
    for shell in ("bash", "zsh", "fish"):
        assert "_RELANCE_WALLET_COMPLETE" in cli.ok("completion", shell).stdout


def test_usage_errors_need_no_node(tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path))
    assert cli("holder", "pay", "--key", "a", "not-a-key", "1").exit_code == Exit.USAGE
    assert cli("merchant", "charge", "--key", "a").exit_code == Exit.USAGE
    assert cli("bank", "settle", "--key", "a").exit_code == Exit.USAGE
    assert cli("bank", "settle", "--key", "a", "--pending").exit_code == Exit.USAGE
    assert cli("--node", "ftp://x", "holder", "balance", "--key", "a").exit_code == Exit.USAGE
    typo = cli("holder", "balance", "--voucher", "RLV1:X:Y:Z")
    assert typo.exit_code == Exit.USAGE and typo.stderr.startswith("error: the voucher code")
    assert cli("holder", "balance", "--key", "nobody").exit_code == Exit.KEYSTORE
    assert cli("holder", "balance").exit_code == Exit.USAGE


def test_tx_decode_shows_every_field(tmp_path: Path) -> None:
    cli = Cli(cli_env(tmp_path))
    issuer, holder = Signer(bytes(32)), Signer(bytes(range(32)))
    allocation = t.Allocation(holder.public_key, 5_000, "NAM-CENTRE")
    signed = t.Tx("relance-x", issuer.public_key, 7, t.Allocate("C", (allocation,))).sign(issuer)
    shown = json.loads(
        cli.ok("tx", "decode", "--chain-id", "relance-x", signed.encode().hex()).stdout
    )
    assert shown["kind"] == "allocate" and shown["sequence"] == 7 and shown["signature_valid"]
    assert shown["fields"] == {
        "campaign": "C",
        "allocations": [
            {"holder": holder.public_key.hex(), "amount_cents": 5_000, "zone": "NAM-CENTRE"}
        ],
    }
    other = cli("tx", "decode", "--chain-id", "relance-y", signed.encode().hex())
    assert other.exit_code == 1 and json.loads(other.stdout)["result"] == "WRONG_CHAIN"
    assert cli("tx", "decode", "--chain-id", "relance-x", "zz").exit_code == Exit.USAGE
