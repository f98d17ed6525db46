"""``relance-wallet bank``: confirm deposits, settle payouts, return unspent budget."""

from __future__ import annotations

from pathlib import Path
from typing import Final

import click

from node.crypto import Digest
from node.ledger import tx as t
from wallets.book import read_csv
from wallets.client import Submitted
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
    refused = [o.result for o in outcomes if o.result != "OK"]
    failure = None
    if refused and len(refused) == len(outcomes):
        failure = WalletError(Exit.REJECTED, "the settlement was refused", refused[0])
    elif refused:
        failure = WalletError(Exit.PARTIAL, f"{len(refused)} settlement transaction(s) refused")
    settled = sum(len(b) for b, o in zip(batches, outcomes, strict=True) if o.result == "OK")
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
Example:
  relance-wallet bank withdraw --key bank NAM-2026 1200 --reference RET-2026-0007""",
)
@click.argument("campaign")
@click.argument("amount")
@click.option("--reference", required=True, help="The bank's reference of the transfer back.")
@key_option
@common_options
def bank_withdraw(campaign: str, amount: str, reference: str, key_name: str) -> None:
    """Return unallocated budget to the commune's bank account."""
    cents = parse_euros(amount)
    withdraw = t.Withdraw(campaign, cents, reference)
    done = _budget_change(key_name, "withdraw unallocated budget", withdraw)
    emit(
        {"tx_id": done.tx_id, "height": done.height, "amount_cents": cents},
        [f"{format_euros(cents)} returned from {campaign}", f"tx id  {done.tx_id}"],
    )


def _budget_change(key_name: str, action: str, payload: t.Fund | t.Withdraw) -> Submitted:
    """Sign and submit a deposit or a withdrawal of a campaign's budget, after confirmation."""
    summary = Summary(
        action, payload.campaign, payload.amount_cents, (("reference", payload.bank_reference),)
    )
    return sign_submit(settings().client(), unlock(key_name), key_name, payload, summary)
