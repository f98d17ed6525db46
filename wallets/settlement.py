"""``relance-wallet settlement``: a merchant's IBAN with the bank, a commune's statement.

``register-iban`` validates the IBAN (schwifty), draws a 16-byte salt, sends the
IBAN and the salt to the bank's node only (``POST /v1/settlement/iban``, with a
token of the merchant made for that node), then signs ``update_merchant`` so
that the ledger names the salted hash (``node.settlement.refhash``). The bank
pays a merchant only while the two agree.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click

from node.client.http_json import Unreachable, call
from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey
from node.settlement import refhash
from wallets.client import NodeClient
from wallets.context import (
    Summary,
    authenticate,
    common_options,
    emit,
    key_option,
    settings,
    sign_submit,
    unlock,
)
from wallets.exits import Exit, WalletError
from wallets.units import parse_time_ms

RESPONSE_BYTES_MAX = 16 * 1024 * 1024


def _bank_client(bank_node: str | None) -> NodeClient:
    return NodeClient(bank_node) if bank_node else settings().client()


def _chosen_schedule(answer: bytes) -> str:
    """The schedule the bank recorded (its default when the merchant chose none)."""
    try:
        chosen = json.loads(answer).get("schedule")
    except (ValueError, AttributeError, RecursionError):  # a hostile answer: not ours
        chosen = None
    return chosen if isinstance(chosen, str) else "?"


def _call(
    client: NodeClient, token: str, method: str, path: str, body: object | None
) -> tuple[int, bytes]:
    headers = {"Authorization": f"Bearer {token}"}
    try:
        answer = call(
            client.url + path,
            method=method,
            payload=body,
            headers=headers,
            timeout_s=client.timeout_s,
            limit=RESPONSE_BYTES_MAX,
        )
    except Unreachable as error:
        raise WalletError(Exit.UNREACHABLE, f"bank node unreachable: {error}") from None
    return answer.status, answer.body


def _refused(status: int, data: bytes) -> WalletError:
    try:
        detail = str(json.loads(data).get("detail", f"HTTP {status}"))
    except (ValueError, AttributeError, RecursionError):  # not JSON, huge numbers, too deep
        detail = f"HTTP {status}"
    if status == 404:
        return WalletError(Exit.UNSUPPORTED, f"the bank node does not offer this: {detail}")
    return WalletError(Exit.USAGE if status < 500 else Exit.UNREACHABLE, detail)


bank_node_option = click.option(
    "--bank-node", metavar="URL", help="The bank's node (default: --node)."
)


@click.group("settlement", help="Bank payouts: register your IBAN; a commune's statement.")
@common_options
def settlement_group() -> None:
    pass


@settlement_group.command(
    "register-iban",
    epilog="""\b
Examples:
  relance-wallet settlement register-iban --key shop "BE68 5390 0754 7034"
  relance-wallet settlement register-iban --key shop --schedule daily BE68539007547034""",
)
@click.argument("iban")
@click.option(
    "--schedule",
    type=click.Choice(["immediate", "daily", "weekly"]),
    default=None,
    help="How often the bank pays you (default: the bank's, daily unless it says otherwise).",
)
@bank_node_option
@key_option
@common_options
def register_iban(iban: str, schedule: str | None, bank_node: str | None, key_name: str) -> None:
    """Register your payout IBAN with the bank; put its salted hash on the ledger."""
    try:
        account = refhash.parse_iban(iban)
    except refhash.IbanError as exc:
        raise WalletError(Exit.USAGE, str(exc)) from None
    signer = unlock(key_name)
    bank = _bank_client(bank_node)
    token = authenticate(bank, signer)
    salt = os.urandom(refhash.SALT_BYTES)
    body = {"iban": account.iban, "salt": salt.hex()}
    if schedule is not None:
        body["schedule"] = schedule
    status, data = _call(bank, token, "POST", "/v1/settlement/iban", body)
    if status != 200:
        raise _refused(status, data)
    schedule = _chosen_schedule(data)
    ref_hash = refhash.ref_hash(account.iban, salt)
    client = settings().client()
    merchant = client.account(signer.public_key)
    if merchant.role != "merchant":
        raise WalletError(Exit.USAGE, f"key {key_name!r} is not a merchant on the ledger")
    profile = merchant.profile
    payload = t.UpdateMerchant(
        PublicKey(signer.public_key),
        str(profile.get("name", "")),
        str(profile.get("category", "")),
        str(profile.get("zone", "")),
        Digest(ref_hash),
        bool(profile.get("auto_redeem", True)),
        merchant.address,
    )
    done = sign_submit(
        client, signer, key_name, payload, Summary("name your payout IBAN on the ledger")
    )
    emit(
        {
            "iban": account.masked,
            "schedule": schedule,
            "ref_hash": ref_hash.hex(),
            "tx_id": done.tx_id,
            "height": done.height,
        },
        [
            f"IBAN {account.masked} registered with the bank ({schedule} payouts)",
            f"ledger updated: tx {done.tx_id}",
        ],
    )


@settlement_group.command(
    "statement",
    epilog="""\b
Examples:
  relance-wallet settlement statement --key namur --format pdf --out statement.pdf
  relance-wallet settlement statement --key namur --campaign noel --format csv --out s.csv
  relance-wallet settlement statement --key namur --from 2026-01-01 --to 2026-03-31 \
      --format pdf --out q1.pdf""",
)
@click.option("--campaign", help="Only this campaign.")
@click.option(
    "--from",
    "from_text",
    metavar="DATE",
    help="First day of the period (2026-01-01, Brussels time; or a date-time, or -30d).",
)
@click.option(
    "--to", "to_text", metavar="DATE", help="Last day of the period, included (2026-03-31)."
)
@click.option("--issuer", help="The issuer (default: the signing key; the bank may ask any).")
@click.option("--format", "fmt", type=click.Choice(["json", "csv", "pdf"]), default="json")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Write to a file.")
@bank_node_option
@key_option
@common_options
def statement(
    campaign: str | None,
    from_text: str | None,
    to_text: str | None,
    issuer: str | None,
    fmt: str,
    out: Path | None,
    bank_node: str | None,
    key_name: str,
) -> None:
    """The commune statement from the bank's node, over a period of days (default: all)."""
    now_ms = time.time_ns() // 1_000_000
    from_ms = None if from_text is None else parse_time_ms(from_text, now_ms)
    to_ms = None if to_text is None else parse_time_ms(to_text, now_ms, end_of_day=True)
    if from_ms is not None and to_ms is not None and from_ms >= to_ms:
        raise WalletError(Exit.USAGE, "--to is a day on or after --from")
    if from_ms is not None and from_ms < 0:
        raise WalletError(Exit.USAGE, "--from is after 1970")
    signer = unlock(key_name)
    bank = _bank_client(bank_node)
    token = authenticate(bank, signer)
    query = {"campaign": campaign, "from_ms": from_ms, "to_ms": to_ms, "issuer": issuer}
    pairs = "&".join(f"{k}={v}" for k, v in query.items() if v is not None)
    suffix = "" if fmt == "json" else f".{fmt}"
    status, data = _call(
        bank, token, "GET", f"/v1/settlement/statement{suffix}{'?' + pairs if pairs else ''}", None
    )
    if status != 200:
        raise _refused(status, data)
    if out is not None:
        out.write_bytes(data)
        emit({"out": str(out), "bytes": len(data)}, f"statement written to {out}")
    elif fmt == "pdf":
        raise WalletError(Exit.USAGE, "a PDF statement needs --out")
    else:
        click.echo(data.decode())
