"""``relance-wallet bank``: confirm deposits, settle payouts, return unspent budget."""

from __future__ import annotations

import datetime
import os
from pathlib import Path
from typing import Final

import click

from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.crypto import Digest
from node.settlement import pain001, refhash
from wallets.book import read_csv
from wallets.client import NodeClient, Submitted
from wallets.commands.common import payout_is_pending
from wallets.context import (
    BatchItem,
    Summary,
    authenticate,
    common_options,
    confirm,
    emit,
    key_option,
    settings,
    sign_submit,
    submit_many,
    unlock,
)
from wallets.exits import Exit, WalletError
from wallets.units import format_euros, parse_euros

SETTLEMENTS_PER_TX: Final = 500


@click.group("bank", help="The bank: fund campaigns, settle payouts, withdraw unspent budget.")
@common_options
def bank_group() -> None:
    pass


@bank_group.command(
    "fund",
    epilog="""\b
Idempotent on the bank's reference: the same reference never funds twice.
Example:
  relance-wallet bank fund --key bank NAM-2026 25000 --reference DEP-2026-0042""",
)
@click.argument("campaign")
@click.argument("amount")
@click.option("--reference", required=True, help="The bank's reference of the deposit.")
@key_option
@common_options
def bank_fund(campaign: str, amount: str, reference: str, key_name: str) -> None:
    """Confirm a commune's euro deposit for a campaign (budget and escrow grow)."""
    cents = parse_euros(amount)
    done = _budget_change(key_name, "fund a campaign", t.Fund(campaign, cents, reference))
    emit(
        {"tx_id": done.tx_id, "height": done.height, "campaign": campaign, "amount_cents": cents},
        [f"{campaign} funded with {format_euros(cents)}", f"tx id  {done.tx_id}"],
    )


@bank_group.command(
    "settle",
    epilog="""\b
Examples:
  relance-wallet bank settle --key bank 5e3c...01 9a0b...77 --reference SEPA-2026-03-31-1
  relance-wallet bank settle --key bank --csv payouts.csv     (columns payout_id,bank_reference)
  relance-wallet bank settle --key bank --pending --reference SEPA-2026-03-31-2""",
)
@click.argument("payout_ids", nargs=-1)
@click.option("--reference", help="One bank transfer reference for all the payouts given.")
@click.option("--csv", "csv_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--pending", is_flag=True, help="Settle every pending payout (with --reference).")
@key_option
@common_options
def bank_settle(
    payout_ids: tuple[str, ...],
    reference: str | None,
    csv_file: Path | None,
    pending: bool,
    key_name: str,
) -> None:
    """Mark payouts paid with the bank's transfer reference (each exactly once)."""
    if pending and reference is None:
        raise WalletError(Exit.USAGE, "--pending needs --reference")
    if not pending:
        _settlements(payout_ids, reference, csv_file)  # check the input before any prompt
    client = settings().client()
    signer = unlock(key_name)
    if pending:
        authenticate(client, signer)
        rows = client.pages("/v1/payouts?settled=false")
        payout_ids += tuple(str(r.get("payout_id")) for r in rows if payout_is_pending(r))
        if not payout_ids and csv_file is None:
            emit({"settled": 0, "transactions": []}, ["no pending payouts"])
            return
    settlements = _settlements(payout_ids, reference, csv_file)
    batches = [
        settlements[i : i + SETTLEMENTS_PER_TX]
        for i in range(0, len(settlements), SETTLEMENTS_PER_TX)
    ]
    confirm(
        client.chain_id(),
        signer.public_key,
        key_name,
        Summary(f"settle {len(settlements)} payout(s)"),
    )
    items = [BatchItem(f"{len(b)} payouts", t.Settle(tuple(b))) for b in batches]
    outcomes = submit_many(client, signer, items, "settling")
    results = [{"tx_id": o.tx_id, "result": o.result, "height": o.height} for o in outcomes]
    refused = [o.result for o in outcomes if o.code is not Result.OK]
    failure = None
    if refused and len(refused) == len(outcomes):
        failure = WalletError(Exit.REJECTED, "the settlement was refused", refused[0])
    elif refused:
        failure = WalletError(Exit.PARTIAL, f"{len(refused)} settlement transaction(s) refused")
    settled = sum(len(b) for b, o in zip(batches, outcomes, strict=True) if o.code is Result.OK)
    emit(
        {"settled": settled, "transactions": results},
        [f"{o.result} {o.tx_id} block {o.height}" for o in outcomes],
        failure,
    )


def _settlements(
    payout_ids: tuple[str, ...], reference: str | None, csv_file: Path | None
) -> list[t.Settlement]:
    pairs: list[tuple[str, str]] = []
    if csv_file is not None:
        try:
            text = csv_file.read_text(encoding="utf-8-sig")
        except (FileNotFoundError, UnicodeDecodeError) as error:
            raise WalletError(Exit.USAGE, f"cannot read {csv_file}: {error}") from None
        pairs += [
            (row["payout_id"], row["bank_reference"])
            for _, row in read_csv(text, ("payout_id", "bank_reference"), csv_file.name)
        ]
    if payout_ids:
        if reference is None:
            raise WalletError(Exit.USAGE, "give --reference with payout ids")
        pairs += [(p, reference) for p in payout_ids]
    if not pairs:
        raise WalletError(Exit.USAGE, "give payout ids with --reference, or --csv")
    out = []
    for payout_id, ref in pairs:
        try:
            raw = bytes.fromhex(payout_id)
        except ValueError:
            raw = b""
        if len(raw) != 32 or not ref:
            raise WalletError(Exit.USAGE, f"bad settlement: {payout_id!r} {ref!r}")
        out.append(t.Settlement(Digest(raw), ref))
    return out


@bank_group.command(
    "withdraw",
    epilog="""\b
Writes the transfer back as a pain.001 file (withdraw-REFERENCE.xml, or --out)
once the ledger took the withdrawal: from the commune's escrow account at the
bank to the commune's own account, with the reference as its end-to-end id.
Example:
  relance-wallet bank withdraw --key bank NAM-2026 1200 --reference RET-2026-0007 \\
      --escrow-iban BE68539007547034 --to-iban BE71096123456769""",
)
@click.argument("campaign")
@click.argument("amount")
@click.option("--reference", required=True, help="The bank's reference of the transfer back.")
@click.option("--escrow-iban", required=True, help="The commune's escrow account (the debtor).")
@click.option("--to-iban", required=True, help="The commune's own account (the creditor).")
@click.option("--to-name", help="The creditor's name (default: the commune's, from the ledger).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Where to write the pain.001 file (default: withdraw-REFERENCE.xml here).",
)
@key_option
@common_options
def bank_withdraw(
    campaign: str,
    amount: str,
    reference: str,
    escrow_iban: str,
    to_iban: str,
    to_name: str | None,
    out: Path | None,
    key_name: str,
) -> None:
    """Return unallocated budget to the commune's bank account, and write its transfer."""
    cents = parse_euros(amount)
    path = out or Path(f"withdraw-{_file_safe(reference)}.xml")
    if path.exists():
        raise WalletError(Exit.USAGE, f"{path} exists: choose another --out")
    accounts = []
    for option, text in (("--escrow-iban", escrow_iban), ("--to-iban", to_iban)):
        try:
            accounts.append(refhash.parse_iban(text))
        except refhash.IbanError as exc:
            raise WalletError(Exit.USAGE, f"{option}: {exc}") from None
    client = settings().client()
    issuer, commune = _commune_of(client, campaign)
    try:  # built (and validated) before anything is signed
        built = pain001.withdrawal(
            issuer,
            pain001.Party(f"{commune} - escrow", accounts[0].iban, accounts[0].bic),
            pain001.Party(to_name or commune, accounts[1].iban, accounts[1].bic),
            cents,
            reference,
            datetime.datetime.now(datetime.UTC).date().isoformat(),
        )
    except pain001.Pain001Error as exc:
        raise WalletError(Exit.USAGE, f"no valid transfer file: {exc}") from None
    withdraw = t.Withdraw(campaign, cents, reference)
    done = _budget_change(key_name, "withdraw unallocated budget", withdraw)
    _write_new(path, built.xml)
    emit(
        {
            "tx_id": done.tx_id,
            "height": done.height,
            "amount_cents": cents,
            "file": str(path),
            "msg_id": built.msg_id,
        },
        [
            f"{format_euros(cents)} returned from {campaign}",
            f"tx id  {done.tx_id}",
            f"transfer file  {path} ({accounts[0].masked} -> {accounts[1].masked})",
        ],
    )


def _commune_of(client: NodeClient, campaign: str) -> tuple[bytes, str]:
    """The campaign's issuer key and name, from the ledger."""
    found = client.campaign(campaign)
    issuer_hex = found.get("issuer") if isinstance(found, dict) else None
    if not isinstance(issuer_hex, str):
        raise WalletError(Exit.USAGE, f"no campaign {campaign!r} on the ledger")
    name = client.account(bytes.fromhex(issuer_hex)).profile.get("name")
    return bytes.fromhex(issuer_hex), name if isinstance(name, str) and name else "Commune"


def _file_safe(reference: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in reference)[:64]


def _write_new(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file (never over another), synced."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    except OSError as exc:
        raise WalletError(Exit.USAGE, f"the withdrawal is on the ledger, but {exc}") from None
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _budget_change(key_name: str, action: str, payload: t.Fund | t.Withdraw) -> Submitted:
    """Sign and submit a deposit or a withdrawal of a campaign's budget, after confirmation."""
    summary = Summary(
        action, payload.campaign, payload.amount_cents, (("reference", payload.bank_reference),)
    )
    return sign_submit(settings().client(), unlock(key_name), key_name, payload, summary)
