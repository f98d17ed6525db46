"""``relance-node governance``: validators admit issuers, change the validator set and
schedule protocol upgrades.

A proposal travels as a file (``node.run.governance``): a validator writes it
(with its own approval), every approving validator adds its signature on its
own host (its node key never leaves the home), and one of them submits it to
its node. Each command reads the node key from ``--home``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Final, NoReturn

import click

from node.client.http_json import Unreachable, request_json
from node.ledger import tx as t
from node.ledger.rules import is_code
from node.protocol.crypto import PublicKey
from node.protocol.limits import (
    GOVERNANCE_DELAY_MAX_BLOCKS,
    HEIGHT_MAX,
    PROPOSAL_FILE_BYTES_MAX,
    VALIDATOR_POWER_MAX,
)
from node.run.daemon import Home, HomeError, read_home
from node.run.governance import Proposal, ProposalError, from_json, to_json
from node.run.membership import MemberError, read_text_capped
from node.text.names import name_problem

HTTP_TIMEOUT_S: Final = 60.0  # a submission waits for its block

HomeOption = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="This validator's node home (its node key signs).",
)
InBlocksOption = click.option(
    "--in-blocks",
    type=click.IntRange(2, GOVERNANCE_DELAY_MAX_BLOCKS),
    help="Or: this many blocks from now.",
)
NodeOption = click.option(
    "--node",
    "node_url",
    help="The node's API address [default: this home's own API].",
)


@click.group(
    "governance",
    help="Admit a commune or region, change the validator set or schedule a protocol "
    "upgrade: more than 2/3 of the "
    "validators' power must approve.\n\n"
    "Examples:\n\n"
    "  relance-node governance propose-issuer --home ~/relance --issuer 3f1c… "
    '--name "Ville de Dinant" --territory Dinant --zone DIN-1 --out dinant.json\n\n'
    "  relance-node governance approve --home ~/relance dinant.json\n\n"
    "  relance-node governance show dinant.json\n\n"
    "  relance-node governance submit --home ~/relance dinant.json",
)
def governance_group() -> None:
    pass


@governance_group.command(
    "propose-validators",
    help="Write a proposal for a new validator set, approved by this node.",
    epilog="\b\nEach --validator is NAME,ROLE,PUBLIC_KEY[,POWER] (role: bank, commune or "
    "region; power 1 by default), the whole new set.\nExample:\n"
    "  relance-node governance propose-validators --home ~/relance --in-blocks 100 \\\n"
    "      --validator Banque,bank,49c2…,1 --validator Namur,commune,7a01… --out change.json",
)
@HomeOption
@click.option("--validator", "validators", multiple=True, required=True, help="A member (repeat).")
@click.option(
    "--effective-height",
    type=click.IntRange(1, HEIGHT_MAX),
    help="The first height of the new set.",
)
@InBlocksOption
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@NodeOption
def propose_validators(
    home: Path,
    validators: tuple[str, ...],
    effective_height: int | None,
    in_blocks: int | None,
    out: Path,
    node_url: str | None,
) -> None:
    h = _home(home)
    at = _height(h, node_url, "--effective-height", effective_height, in_blocks)
    entries = tuple(_entry(text) for text in validators)
    _propose(h, t.ChangeValidators(entries, at, ()), out)


@governance_group.command(
    "propose-issuer",
    help="Write a proposal to admit a commune or region, approved by this node.",
)
@HomeOption
@click.option("--issuer", required=True, help="The issuer's public key (64 hex digits).")
@click.option("--name", required=True, help="Its name, such as 'Ville de Dinant'.")
@click.option("--territory", required=True, help="The territory it covers.")
@click.option("--zone", "zones", multiple=True, required=True, help="A zone code (repeat).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def propose_issuer(
    home: Path, issuer: str, name: str, territory: str, zones: tuple[str, ...], out: Path
) -> None:
    for label, text in (("--name", name), ("--territory", territory)):
        problem = name_problem(text)
        if problem is not None:
            _fail(f"{label}: {problem}")
    h = _home(home)
    payload = t.AdmitIssuer(_key(issuer), name, territory, zones, ())
    _propose(h, payload, out)


@governance_group.command(
    "propose-upgrade",
    help="Write a proposal to switch to a new protocol at a height, approved by this node.",
    epilog="\b\nNodes whose software does not know PROTOCOL stop after the block before\n"
    "the height and name --software as the release to install. Example:\n"
    "  relance-node governance propose-upgrade --home ~/relance --protocol tx2.block2 \\\n"
    "      --software 0.4.0 --in-blocks 2000 --out upgrade.json",
)
@HomeOption
@click.option("--protocol", required=True, help="The protocol from the height on (/v1/status).")
@click.option("--software", required=True, help="The software release that knows it.")
@click.option("--height", type=click.IntRange(1, HEIGHT_MAX), help="The first height under it.")
@InBlocksOption
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
@NodeOption
def propose_upgrade(
    home: Path,
    protocol: str,
    software: str,
    height: int | None,
    in_blocks: int | None,
    out: Path,
    node_url: str | None,
) -> None:
    for label, text in (("--protocol", protocol), ("--software", software)):
        if not is_code(text):
            _fail(f"{label}: letters, digits, '.', '_' or '-', at most 32, as in 0.4.0")
    h = _home(home)
    at = _height(h, node_url, "--height", height, in_blocks)
    _propose(h, t.ScheduleUpgrade(protocol, software, at, ()), out)


@governance_group.command(
    help="Add this validator's approval to a proposal file (after showing what it approves).",
    epilog="\b\nPass the file from one validator to the next: each approval is added to it.",
)
@HomeOption
@click.argument("proposal_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Approve without asking.")
def approve(home: Path, proposal_file: Path, yes: bool) -> None:
    h = _home(home)
    proposal = _read(proposal_file)
    _check_chain(h, proposal)
    click.echo("\n".join(proposal.describe()), err=True)
    if not yes and not click.confirm("Approve it with this node's key?", default=False, err=True):
        click.echo("not approved", err=True)
        sys.exit(7)
    approved = proposal.approved_by(h.node_key)
    _replace(proposal_file, approved)
    click.echo(f"approved by {h.node_key.public_key.hex()} in {proposal_file}")


@governance_group.command(help="Say what a proposal file changes and who approved it.")
@click.argument("proposal_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def show(proposal_file: Path) -> None:
    proposal = _read(proposal_file)
    click.echo(f"chain {proposal.chain_id}")
    click.echo("\n".join(proposal.describe()))


@governance_group.command(help="Submit an approved proposal, signed by this node's key.")
@HomeOption
@click.argument("proposal_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@NodeOption
def submit(home: Path, proposal_file: Path, node_url: str | None) -> None:
    h = _home(home)
    proposal = _read(proposal_file)
    _check_chain(h, proposal)
    url = _url(h, node_url)
    account = _request(f"{url}/v1/accounts/{h.node_key.public_key.hex()}")
    sequence = account.get("node_sequence")
    if type(sequence) is not int:
        _fail(f"{h.node_key.public_key.hex()} is not a validator of this chain now")
    signed = proposal.transaction(h.node_key, sequence)
    answer = _request(f"{url}/v1/transactions?wait=true", {"tx": signed.encode().hex()})
    if answer.get("accepted") is not True:
        result = answer.get("result") or answer.get("title") or "refused"
        click.echo(f"error: {result}: {answer.get('detail', '')}", err=True)
        sys.exit(1)
    height = answer.get("height")
    where = "not in a block yet" if height is None else f"in block {height}"
    click.echo(f"submitted {signed.tx_id.hex()}: {where}")


# --- plumbing --------------------------------------------------------------------------


def _home(path: Path) -> Home:
    try:
        return read_home(path)
    except HomeError as exc:
        _fail(str(exc))


def _height(
    h: Home, node_url: str | None, option: str, height: int | None, in_blocks: int | None
) -> int:
    """The height given, or ``in_blocks`` after the node's next block."""
    if (height is None) == (in_blocks is None):
        _fail(f"give one of {option} and --in-blocks")
    if height is not None:
        return height
    status = _request(f"{_url(h, node_url)}/v1/status")
    return _int(status.get("height")) + 1 + (in_blocks or 0)


def _propose(h: Home, payload: t.GovernancePayload, out: Path) -> None:
    proposal = Proposal(h.genesis.chain_id, payload).approved_by(h.node_key)
    temporary = _written(out, proposal)
    try:
        os.link(temporary, out)  # never over an existing file, even one made meanwhile
    except FileExistsError:
        _fail(f"{out} exists; pick another --out")
    finally:
        temporary.unlink()
    click.echo("\n".join(proposal.describe()))
    click.echo(f"written to {out}: pass it to the other validators ('governance approve')")


def _read(path: Path) -> Proposal:
    """A proposal file another validator passed on: bounded, and whatever it holds an
    error of the command (JSON nested thousands deep, a huge integer), never a traceback."""
    try:
        text = read_text_capped(path, PROPOSAL_FILE_BYTES_MAX)
        return from_json(json.loads(text))
    except (ValueError, RecursionError) as exc:
        _fail(f"{path}: not JSON: {exc}")
    except (MemberError, ProposalError) as exc:
        _fail(f"{path}: {exc}")


def _written(beside: Path, proposal: Proposal) -> Path:
    """The proposal in a new file of its own next to ``beside``, on disk."""
    fd, name = tempfile.mkstemp(dir=beside.parent or Path("."), prefix=f".{beside.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(json.dumps(to_json(proposal), indent=2) + "\n")
        file.flush()
        os.fsync(file.fileno())
    return Path(name)


def _replace(path: Path, proposal: Proposal) -> None:
    os.replace(_written(path, proposal), path)


def _check_chain(h: Home, proposal: Proposal) -> None:
    if proposal.chain_id != h.genesis.chain_id:
        _fail(
            f"the proposal is for chain {proposal.chain_id!r}, "
            f"this node is on {h.genesis.chain_id!r}"
        )


def _url(h: Home, node_url: str | None) -> str:
    if node_url:
        return node_url.rstrip("/")
    host = h.settings.api_host if h.settings.api_host not in ("0.0.0.0", "::") else "127.0.0.1"
    return f"http://{host}:{h.settings.api_port}"


def _entry(text: str) -> t.ValidatorEntry:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (3, 4) or not parts[0] or not parts[1]:
        raise click.BadParameter(f"{text!r}: expected NAME,ROLE,PUBLIC_KEY[,POWER]")
    power = parts[3] if len(parts) == 4 else "1"
    if not (power.isascii() and power.isdigit() and 1 <= int(power) <= VALIDATOR_POWER_MAX):
        raise click.BadParameter(f"{text!r}: the power is 1 to {VALIDATOR_POWER_MAX}")
    problem = name_problem(parts[0])
    if problem is not None:
        raise click.BadParameter(f"{text!r}: {problem}")
    return t.ValidatorEntry(_key(parts[2]), int(power), parts[0], parts[1])


def _key(text: str) -> PublicKey:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{text!r} is not a public key of 64 hex digits")
    return PublicKey(raw)


def _int(value: object) -> int:
    if type(value) is not int:
        _fail("the node's status has no height")
    return value


def _request(url: str, payload: object | None = None) -> dict[str, object]:
    try:
        return request_json(url, payload, HTTP_TIMEOUT_S)
    except Unreachable as error:
        _fail(f"cannot reach the node: {error}")


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
