"""What every wallet command shares: settings, output, passphrases, signing.

Options that every command accepts (``--node``, ``--json``, ``--yes``,
``--keystore``, ``--home``) may be given before the role group or after the
command; the environment (``RELANCE_NODE``, ``RELANCE_KEYSTORE``,
``RELANCE_HOME``, ``RELANCE_PASSPHRASE``, ``RELANCE_KEY``) fills what is not.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, TypeVar

import click

from node.api import tokens
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import PUBLIC_KEY_BYTES, Signer
from wallets.client import NodeClient, Refused, Submitted
from wallets.exits import Exit, WalletError
from wallets.keystore import PASSPHRASE_CHARS_MIN, Keystore
from wallets.units import format_euros

DEFAULT_NODE: Final = "http://127.0.0.1:26601"
META: Final = "relance.options"
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True, slots=True)
class Settings:
    node: str
    json: bool
    yes: bool
    home: Path
    keystore_dir: Path

    def client(self) -> NodeClient:
        return NodeClient(self.node)

    def keystore(self) -> Keystore:
        return Keystore(self.keystore_dir)

    def data_dir(self, *parts: str) -> Path:
        return self.home.joinpath(*parts)


def _remember(ctx: click.Context, param: click.Parameter, value: object) -> object:
    if value is not None and value is not False and param.name is not None:
        ctx.meta.setdefault(META, {})[param.name] = value
    return value


def common_options(function: F) -> F:
    """``--node``, ``--json``, ``--yes``, ``--keystore``, ``--home`` on a command or group."""
    decorators = [
        click.option(
            "--node",
            metavar="URL",
            expose_value=False,
            callback=_remember,
            help=f"Node API URL [env RELANCE_NODE; default {DEFAULT_NODE}].",
        ),
        click.option(
            "--json",
            "json_output",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help="Print one JSON object (for scripts).",
        ),
        click.option(
            "--yes",
            "-y",
            is_flag=True,
            expose_value=False,
            callback=_remember,
            help="Sign without asking for confirmation.",
        ),
        click.option(
            "--keystore",
            type=click.Path(path_type=Path, file_okay=False),
            expose_value=False,
            callback=_remember,
            help="Keystore folder [env RELANCE_KEYSTORE; default HOME/keys].",
        ),
        click.option(
            "--home",
            type=click.Path(path_type=Path, file_okay=False),
            expose_value=False,
            callback=_remember,
            help="Wallet data folder [env RELANCE_HOME; default ~/.relance].",
        ),
    ]
    for decorator in reversed(decorators):
        function = decorator(function)
    return function


def settings() -> Settings:
    ctx = click.get_current_context()
    given: dict[str, object] = ctx.meta.get(META, {})
    home = Path(str(given.get("home") or os.environ.get("RELANCE_HOME") or "~/.relance"))
    home = home.expanduser()
    keystore = given.get("keystore") or os.environ.get("RELANCE_KEYSTORE") or home / "keys"
    return Settings(
        node=str(given.get("node") or os.environ.get("RELANCE_NODE") or DEFAULT_NODE),
        json=bool(given.get("json_output")),
        yes=bool(given.get("yes")),
        home=home,
        keystore_dir=Path(str(keystore)).expanduser(),
    )


# --- output ------------------------------------------------------------------------


def emit(
    data: dict[str, object], human: str | Iterable[str], failure: WalletError | None = None
) -> None:
    """Print the result of a command: one JSON object with ``--json``, else the human text.

    With ``failure`` (a batch where some items failed) the output is printed, then the
    failure raised: with ``--json`` it is folded into the same object.
    """
    if settings().json:
        status = {"ok": True} if failure is None else failure.fields()
        click.echo(json.dumps({**status, **data}, ensure_ascii=False, indent=2))
        if failure is not None:
            failure.shown = True
    else:
        text = human if isinstance(human, str) else "\n".join(human)
        if text:
            click.echo(text)
    if failure is not None:
        raise failure


def quiet() -> bool:
    """No progress bars: JSON output, or stderr is not a terminal."""
    return settings().json or not sys.stderr.isatty()


def note(message: str) -> None:
    """Progress or advice for people: stderr, silent with ``--json``."""
    if not settings().json:
        click.echo(message, err=True)


# --- keys and passphrases ----------------------------------------------------------------

key_option = click.option(
    "--key",
    "key_name",
    envvar="RELANCE_KEY",
    required=True,
    metavar="NAME",
    help="The keystore key that signs [env RELANCE_KEY].",
)


def passphrase(what: str, new: bool = False) -> str:
    """From ``RELANCE_PASSPHRASE``, else prompted without echo (twice for a new one)."""
    from_env = os.environ.get("RELANCE_PASSPHRASE")
    if from_env is not None:
        value = from_env
    else:
        try:
            value = click.prompt(
                f"Passphrase for {what}",
                hide_input=True,
                confirmation_prompt=new,
                err=True,
            )
        except click.Abort:
            raise WalletError(
                Exit.ABORTED, "no passphrase given (set RELANCE_PASSPHRASE for scripts)"
            ) from None
    if new and len(value) < PASSPHRASE_CHARS_MIN:
        raise WalletError(
            Exit.USAGE, f"a new passphrase needs at least {PASSPHRASE_CHARS_MIN} characters"
        )
    return value


def unlock(name: str) -> Signer:
    keystore = settings().keystore()
    keystore.info(name)  # a missing key fails before any prompt
    return keystore.open(name, passphrase(f"key {name!r}"))


def parse_key(text: str, what: str) -> bytes:
    """A public key given as 64 hex digits."""
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != PUBLIC_KEY_BYTES:
        raise WalletError(Exit.USAGE, f"{what} must be a public key of 64 hex digits: {text!r}")
    return key


def authenticate(client: NodeClient, signer: Signer, ttl_ms: int = 300_000) -> str:
    """Make a short-lived API token for ``signer`` on this node and use it for reads."""
    token = tokens.make_token(
        signer, client.chain_id(), client.node_key(), time.time_ns() // 1_000_000, ttl_ms
    )
    client.authenticate(token=token)
    return token


# --- signing ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Summary:
    """What the confirmation shows before signing."""

    action: str
    recipient: str = ""
    amount_cents: int | None = None
    details: tuple[tuple[str, str], ...] = ()


def confirm(chain_id: str, sender: bytes, sender_name: str, summary: Summary) -> None:
    if settings().yes:
        return
    lines = [
        f"About to sign: {summary.action}",
        f"  chain      {chain_id}",
        f"  sender     {sender.hex()} ({sender_name})",
    ]
    if summary.recipient:
        lines.append(f"  recipient  {summary.recipient}")
    if summary.amount_cents is not None:
        lines.append(f"  amount     {format_euros(summary.amount_cents)}")
    lines += [f"  {label:<10} {value}" for label, value in summary.details]
    click.echo("\n".join(lines), err=True)
    try:
        agreed = click.confirm("Sign and submit?", default=False, err=True)
    except click.Abort:
        agreed = False
    if not agreed:
        raise WalletError(Exit.ABORTED, "not signed: confirmation declined (use --yes for scripts)")


def sign_submit(
    client: NodeClient, signer: Signer, sender_name: str, payload: t.Payload, summary: Summary
) -> Submitted:
    """Confirm, sign with the account's next sequence, submit and wait for the block."""
    chain_id = client.chain_id()
    account = client.account(signer.public_key)
    confirm(chain_id, signer.public_key, sender_name, summary)
    signed = t.Tx(chain_id, signer.public_key, account.sequence, payload).sign(signer)
    submitted = client.submit(signed, wait=True)
    if submitted.height is None:
        raise WalletError(
            Exit.PENDING,
            f"transaction {submitted.tx_id} was accepted but is not in a block yet; "
            f"check it with the API: /v1/transactions/{submitted.tx_id}",
        )
    return submitted


@dataclass(frozen=True, slots=True)
class BatchItem:
    label: str
    payload: t.Payload


@dataclass(frozen=True, slots=True)
class BatchOutcome:
    label: str
    tx_id: str | None
    result: str  # the node's result code's name: "OK" when in a block, else why not
    height: int | None

    @property
    def code(self) -> Result | None:
        """The result as the node's enum; None for a name this wallet does not know."""
        return Result.__members__.get(self.result)


def submit_many(
    client: NodeClient,
    signer: Signer,
    items: Sequence[BatchItem],
    what: str,
    before_submit: Callable[[int, t.SignedTx], None] = lambda index, signed: None,
) -> list[BatchOutcome]:
    """Submit payloads one after the other (a refused one does not consume a sequence),
    then wait for the last accepted one: every accepted one is then in a block.
    ``before_submit`` sees each signed transaction before it leaves (to journal its id)."""
    chain_id = client.chain_id()
    sequence = client.account(signer.public_key).sequence
    outcomes: list[BatchOutcome] = []
    last: t.SignedTx | None = None
    with click.progressbar(
        items, label=what, file=sys.stderr, hidden=quiet(), item_show_func=_label
    ) as bar:
        for index, item in enumerate(bar):
            signed = t.Tx(chain_id, signer.public_key, sequence, item.payload).sign(signer)
            before_submit(index, signed)
            answer = client.submit_batch([signed])[0]
            if isinstance(answer, Refused):
                outcomes.append(BatchOutcome(item.label, answer.tx_id, answer.result, None))
                continue
            sequence += 1
            last = signed
            outcomes.append(BatchOutcome(item.label, answer.tx_id, Result.OK.name, answer.height))
    if last is not None:
        final = client.submit(last, wait=True)  # idempotent: waits for its block
        if final.height is None:
            raise WalletError(Exit.PENDING, "the batch was accepted but is not in a block yet")
        outcomes = [_with_height(client, o) for o in outcomes]
    return outcomes


def _with_height(client: NodeClient, outcome: BatchOutcome) -> BatchOutcome:
    if outcome.code is not Result.OK or outcome.height is not None or outcome.tx_id is None:
        return outcome
    height = client.transaction(outcome.tx_id).height
    return BatchOutcome(outcome.label, outcome.tx_id, outcome.result, height)


def _label(item: BatchItem | None) -> str | None:
    return None if item is None else item.label[:40]
