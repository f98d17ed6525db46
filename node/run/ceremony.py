"""``relance-node genesis``: the genesis ceremony, one command per step.

Each organisation, on its own host: ``init`` its home, ``genesis member`` (its
membership file, signed by its node key; the wallet adds the account key's
signature with ``relance-wallet key sign-member``). The coordinator: ``genesis new``,
then ``genesis add`` for each file (both signatures checked). Each organisation
then runs ``genesis check`` against its own file, publishes ``genesis hash``, and
``genesis install``s it in its home before starting its node. See docs/operating.md.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Final, NoReturn, TypeVar

import click

from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey
from node.protocol.genesis import Draft, Genesis, GenesisError, ProtocolLimits, parse_draft, render
from node.run import config, membership
from node.run.daemon import Home, HomeError, read_home
from node.run.membership import Account, Member, MemberError
from node.store.blockstore import BlockStore, StoreError

T = TypeVar("T")

KEY_FILE_BYTES_MAX: Final = 64 * 1024  # a wallet key file (relance-key v1)
# A placeholder chain's files that an installed genesis makes meaningless.
PLACEHOLDER_FILES: Final = ("demo-keys.json",)

HomeOption = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="This organisation's node home (made by 'relance-node init').",
)
GenesisArgument = click.argument("genesis_file", type=click.Path(dir_okay=False, path_type=Path))


@click.group(
    "genesis",
    help="The genesis ceremony: each organisation exports a signed membership file, a "
    "coordinator gathers them into the genesis, each organisation checks it and publishes "
    "its hash.\n\n"
    "Examples:\n\n"
    "  relance-node genesis member --home ~/relance --chain-id relance-wallonie "
    '--name "Ville de Namur" --role commune --p2p 192.0.2.7:26600 '
    "--api https://relance.namur.be --account-key 3f1c… --territory Namur "
    "--zone NAM-CENTRE --out namur.json\n\n"
    "  relance-node genesis new --chain-id relance-wallonie --out genesis.toml\n\n"
    "  relance-node genesis add genesis.toml namur.json\n\n"
    "  relance-node genesis check genesis.toml --member namur.json\n\n"
    "  relance-node genesis hash genesis.toml\n\n"
    "  relance-node genesis install --home ~/relance genesis.toml",
)
def genesis_group() -> None:
    pass


@genesis_group.command(
    "member",
    help="Write this organisation's membership file, signed by its node key "
    "(a copy stays in the home).",
    epilog="\b\nThe account key (--account-key: 64 hex digits, or the wallet's key file) is "
    "the bank's account or the commune's issuer key; its owner then signs the file:\n"
    "  relance-wallet key sign-member namur namur.json",
)
@HomeOption
@click.option("--chain-id", required=True, help="The chain the organisations agreed on.")
@click.option("--name", required=True, help="The organisation, such as 'Ville de Namur'.")
@click.option("--role", required=True, type=click.Choice(["bank", "commune", "region"]))
@click.option("--p2p", required=True, help="HOST:PORT other validators dial.")
@click.option("--api", required=True, help="The public API address, such as https://…")
@click.option("--account-key", help="The bank's or the issuer's account key (hex or key file).")
@click.option("--territory", default="", help="An issuer's territory.")
@click.option("--zone", "zones", multiple=True, help="An issuer's zone code (repeat).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def member_command(
    home: Path,
    chain_id: str,
    name: str,
    role: str,
    p2p: str,
    api: str,
    account_key: str | None,
    territory: str,
    zones: tuple[str, ...],
    out: Path,
) -> None:
    h = _home(home)
    account = None
    if account_key is not None:
        account = Account(_account_key(account_key), territory, zones)
    elif territory or zones:
        _fail("--territory and --zone belong to an --account-key")
    member = Member(chain_id, name, role, h.node_key.public_key, p2p, api, account)
    signed = _checked(lambda: membership.make(member, h.node_key))
    text = membership.dumps(signed)
    _write_new(out, text)
    _write_replacing(home / membership.MEMBER_FILE, text)
    click.echo("\n".join(member.describe()))
    if account is not None:
        click.echo(f"next: the account key signs it: relance-wallet key sign-member KEY {out}")
    click.echo(f"then send {out} to the coordinator ('relance-node genesis add')")


@genesis_group.command("new", help="Start a genesis with no member yet.")
@click.option("--chain-id", required=True, help="The chain the organisations agreed on.")
@click.option(
    "--genesis-time",
    help="When the chain starts, UTC, such as 2027-01-04T09:00:00Z [default: now].",
)
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path))
def new_command(chain_id: str, genesis_time: str | None, out: Path) -> None:
    draft = Draft(chain_id, _time_ms(genesis_time), ProtocolLimits(), None, (), (), ())
    text = _checked(lambda: render(draft))
    _checked(lambda: parse_draft(text))
    _write_new(out, text)
    click.echo(f"written {out}: add each membership file ('relance-node genesis add {out} FILE')")


@genesis_group.command("add", help="Add members to a genesis after checking their signatures.")
@GenesisArgument
@click.argument(
    "member_files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path)
)
def add_command(genesis_file: Path, member_files: tuple[Path, ...]) -> None:
    draft = _read_draft(genesis_file)
    for path in member_files:
        try:
            signed = membership.read(path)
            draft = membership.add(draft, signed)
        except MemberError as exc:
            _fail(f"{path}: {exc}")
        click.echo(f"added {signed.member.name!r} ({signed.member.role}) from {path}")
    _write_replacing(genesis_file, render(draft))
    try:
        genesis = draft.complete()
    except GenesisError as exc:
        click.echo(f"not complete yet: {exc}")
        return
    click.echo(f"{len(genesis.validators)} validators; genesis hash {genesis.genesis_hash.hex()}")


@genesis_group.command(
    "add-auditor",
    help="Add an auditor's account key (it reads every account, block and payout).",
    epilog="\b\nThe auditor (a court of audit, say) sends its public key; every organisation "
    "sees it in 'genesis check' before publishing the hash.\nExample:\n"
    '  relance-node genesis add-auditor genesis.toml --name "Cour des comptes" '
    "--account-key 2015…",
)
@GenesisArgument
@click.option("--name", required=True, help="The auditor, such as 'Cour des comptes'.")
@click.option("--account-key", required=True, help="Its account key (hex or wallet key file).")
def add_auditor_command(genesis_file: Path, name: str, account_key: str) -> None:
    draft = _read_draft(genesis_file)
    added = _checked(lambda: membership.add_auditor(draft, name, _account_key(account_key)))
    _write_replacing(genesis_file, render(added))
    click.echo(f"added the auditor {name!r}")


@genesis_group.command(
    "check",
    help="Check that a genesis holds this organisation exactly as it signed (exit 1 if not).",
)
@GenesisArgument
@click.option(
    "--member",
    "member_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="This organisation's membership file.",
)
def check_command(genesis_file: Path, member_file: Path) -> None:
    genesis = _read_genesis(genesis_file)
    signed = _checked(lambda: membership.read(member_file))
    if diffs := membership.differences(genesis, signed.member):
        for line in diffs:
            click.echo(f"differs: {line}", err=True)
        click.echo(
            f"error: {genesis_file} does not hold {signed.member.name!r} as signed", err=True
        )
        sys.exit(1)
    click.echo(f"ok: {genesis_file} holds {signed.member.name!r} as signed")
    click.echo("review the rest before publishing its hash:")
    click.echo("\n".join(f"  {line}" for line in membership.summary(genesis)))
    click.echo(f"genesis hash {genesis.genesis_hash.hex()}")


@genesis_group.command("hash", help="Print the genesis hash every organisation publishes.")
@GenesisArgument
def hash_command(genesis_file: Path) -> None:
    click.echo(_read_genesis(genesis_file).genesis_hash.hex())


@genesis_group.command(
    "install",
    help="Put the agreed genesis in this node's home (its store still empty), after "
    "checking that it holds this node as it signed.",
)
@HomeOption
@GenesisArgument
def install_command(home: Path, genesis_file: Path) -> None:
    h = _home(home)
    genesis = _read_genesis(genesis_file)
    member_path = home / membership.MEMBER_FILE
    if not member_path.exists():
        _fail(f"{home} has no {membership.MEMBER_FILE}: run 'relance-node genesis member' first")
    signed = _checked(lambda: membership.read(member_path))
    if signed.member.node_key != h.node_key.public_key:
        _fail(f"{member_path} was signed by another node key")
    if diffs := membership.differences(genesis, signed.member):
        _fail(f"{genesis_file} does not hold this node as it signed: " + "; ".join(diffs))
    if h.genesis.genesis_hash != genesis.genesis_hash:
        _reset_store(home, h.genesis, genesis)
        for name in PLACEHOLDER_FILES:
            (home / name).unlink(missing_ok=True)
    _write_replacing(home / config.GENESIS_FILE, render(genesis))
    click.echo(f"installed genesis {genesis.genesis_hash.hex()} in {home}")
    click.echo(f"start with: relance-node start --home {home}")


# --- plumbing ----------------------------------------------------------------------------


def _reset_store(home: Path, old: Genesis, new: Genesis) -> None:
    """An empty store for ``new`` in place of the never-used one made for ``old``."""
    for name in (config.SIGN_STATE_FILE, config.LOCKED_BLOCK_FILE):
        if (home / name).exists():
            _fail(f"{home} has run a chain already ({name}): make a new home with 'init'")
    data = home / config.DATA_DIR
    try:
        store = BlockStore.open(data, old.genesis_hash, create=False)
        height = store.height()
        store.close()
    except StoreError as exc:
        _fail(str(exc))
    if height != 0:
        _fail(f"{home} holds {height} blocks of another chain: make a new home with 'init'")
    shutil.rmtree(data)
    BlockStore.open(data, new.genesis_hash, create=True).close()


def _home(path: Path) -> Home:
    try:
        return read_home(path)
    except HomeError as exc:
        _fail(str(exc))


def _read_draft(path: Path) -> Draft:
    try:
        return parse_draft(membership.read_text_capped(path, limits.GENESIS_FILE_BYTES_MAX))
    except (MemberError, GenesisError) as exc:
        _fail(f"{path}: {exc}")


def _read_genesis(path: Path) -> Genesis:
    try:
        return _read_draft(path).complete()
    except GenesisError as exc:
        _fail(f"{path}: {exc}")


def _account_key(text: str) -> PublicKey:
    """64 hex digits, or a wallet key file (relance-key v1, its public key in clear)."""
    if len(text) == 2 * PUBLIC_KEY_BYTES and all(c in "0123456789abcdefABCDEF" for c in text):
        return PublicKey(bytes.fromhex(text))
    path = Path(text).expanduser()
    try:
        with path.open("rb") as file:
            doc = json.loads(file.read(KEY_FILE_BYTES_MAX).decode("utf-8"))
    except (OSError, ValueError, RecursionError) as exc:  # ValueError: not UTF-8, not JSON,
        # a huge integer; RecursionError: nested thousands deep
        _fail(f"--account-key {text!r} is neither 64 hex digits nor a wallet key file ({exc})")
    value = doc.get("public_key") if isinstance(doc, dict) else None
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != PUBLIC_KEY_BYTES or doc.get("format") != "relance-key":
        _fail(f"{path} is not a wallet key file with a public key")
    return PublicKey(raw)


def _time_ms(text: str | None) -> int:
    if text is None:
        return int(datetime.datetime.now(datetime.UTC).timestamp() * 1000)
    try:
        when = datetime.datetime.fromisoformat(text)
    except ValueError:
        _fail(f"--genesis-time {text!r} is not a date and time such as 2027-01-04T09:00:00Z")
    if when.tzinfo is None:
        _fail("--genesis-time needs its zone: end it with Z for UTC")
    return int(when.timestamp() * 1000)


def _checked(make: Callable[[], T]) -> T:
    try:
        return make()
    except (MemberError, GenesisError) as exc:
        _fail(str(exc))


def _write_new(path: Path, text: str) -> None:
    """``text`` in a new file ``path`` (never over an existing one)."""
    temporary = _temporary(path, text)
    try:
        os.link(temporary, path)
    except FileExistsError:
        _fail(f"{path} exists; pick another --out")
    finally:
        temporary.unlink()


def _write_replacing(path: Path, text: str) -> None:
    os.replace(_temporary(path, text), path)


def _temporary(beside: Path, text: str) -> Path:
    try:
        fd, name = tempfile.mkstemp(dir=beside.parent or Path("."), prefix=f".{beside.name}.")
    except OSError as exc:
        _fail(f"cannot write beside {beside}: {exc.strerror or exc}")
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.chmod(name, 0o644)
    return Path(name)


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
