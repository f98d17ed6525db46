"""``relance-node settlement``: the bank operator's commands for its node home.

They work on the bank's local store (SQLite) and may run while the node runs.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
from pathlib import Path

import click

from node.settlement import banksim, camt, refhash
from node.settlement.journal import EscrowRow, FileState, JournalError, Schedule, open_journal
from node.settlement.reconcile import import_statement
from node.settlement.service import SETTLEMENT_DIR, SettingsError, read_settings, write_settings

BANK_KEY_FILE = "bank_key"

HomeOption = click.option(
    "--home",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The bank node's home directory.",
)


def _key(text: str, what: str) -> bytes:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise click.BadParameter(f"{what} is a public key of 64 hex digits")
    return key


@click.group(
    "settlement",
    help="The bank's settlement service: IBANs, pain.001 files, statements.\n\n"
    "Examples:\n\n"
    "  relance-node settlement init --home bank --bank-key bank.seed\n\n"
    "  relance-node settlement escrow --home bank ISSUER BE68539007547034\n\n"
    "  relance-node settlement import --home bank camt054.xml",
)
def settlement_group() -> None:
    pass


@settlement_group.command(help="Turn the settlement service on for this (bank) node home.")
@HomeOption
@click.option(
    "--bank-key",
    "key_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A file holding the bank account's 32-byte seed in hex (copied into the home).",
)
@click.option("--day-ms", default=86_400_000, show_default=True, help="Length of a schedule day.")
@click.option(
    "--default-schedule",
    type=click.Choice([s.value for s in Schedule]),
    default=Schedule.DAILY.value,
    show_default=True,
    help="Payout schedule of merchants that choose none (daily: one pain.001 a day per "
    "escrow account).",
)
def init(home: Path, key_path: Path, day_ms: int, default_schedule: str) -> None:
    seed = key_path.read_text(encoding="ascii").strip()
    fd = os.open(home / BANK_KEY_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(seed + "\n")
    write_settings(home, BANK_KEY_FILE, day_ms, Schedule(default_schedule))
    try:
        settings = read_settings(home)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    open_journal(settings.directory).close()
    click.echo(f"settlement on for {home}; restart the node to start the service")


@settlement_group.command(help="Set an issuer's escrow account at the bank (the files' debtor).")
@HomeOption
@click.argument("issuer")
@click.argument("iban")
@click.option("--name", default="Relance escrow", show_default=True, help="Account holder.")
def escrow(home: Path, issuer: str, iban: str, name: str) -> None:
    try:
        account = refhash.parse_iban(iban)
    except refhash.IbanError as exc:
        raise click.BadParameter(str(exc)) from None
    journal = open_journal(home / SETTLEMENT_DIR)
    try:
        journal.set_escrow(EscrowRow(_key(issuer, "ISSUER"), name, account.iban, account.bic))
    finally:
        journal.close()
    click.echo(f"escrow account of {issuer[:16]}: {account.masked}")


@settlement_group.command(help="Set a merchant's payout schedule (a local setting of the bank).")
@HomeOption
@click.argument("merchant")
@click.argument("schedule", type=click.Choice([s.value for s in Schedule]))
def schedule(home: Path, merchant: str, schedule: str) -> None:
    journal = open_journal(home / SETTLEMENT_DIR)
    try:
        if not journal.set_schedule(_key(merchant, "MERCHANT"), Schedule(schedule)):
            click.echo("error: this merchant has registered no IBAN", err=True)
            sys.exit(2)
    finally:
        journal.close()
    click.echo(f"{merchant[:16]}: {schedule}")


@settlement_group.command(
    "import",
    help="Import bank statements (camt.053, camt.054 or the confirmation CSV). Prints one "
    "JSON report per file; exits 1 if any entry does not match.",
)
@HomeOption
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
def import_command(home: Path, files: tuple[Path, ...]) -> None:
    journal = open_journal(home / SETTLEMENT_DIR)
    ok = True
    try:
        for path in files:
            try:
                statement = camt.parse(path.read_bytes())
            except camt.StatementError as exc:
                click.echo(f"error: {path}: {exc}", err=True)
                sys.exit(2)
            report = import_statement(journal, statement, time.time_ns() // 1_000_000)
            click.echo(report.to_json())
            ok = ok and report.ok
    finally:
        journal.close()
    sys.exit(0 if ok else 1)


@settlement_group.command(
    help="Put the held payouts of a failed file (see `status`: state failed, with its "
    "failure) back in the queue, once what made it fail is fixed. The service batches them "
    "into a new file at its next step.\n\nExample:\n\n"
    "  relance-node settlement release --home bank 12"
)
@HomeOption
@click.argument("file_id", type=click.IntRange(min=1))
def release(home: Path, file_id: int) -> None:
    journal = open_journal(home / SETTLEMENT_DIR)
    try:
        released = journal.release_file(file_id)
    except JournalError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    finally:
        journal.close()
    click.echo(f"file {file_id}: {released} payouts released")


@settlement_group.command(help="Counts of payouts per state, and the files written.")
@HomeOption
def status(home: Path) -> None:
    journal = open_journal(home / SETTLEMENT_DIR)
    try:
        body = {
            "payouts": journal.counts(),
            "files": [
                {
                    "file_id": f.file_id,
                    "name": f.name,
                    "state": f.state.value,
                    "transfers": f.transfers,
                    "total_cents": f.total_cents,
                    "failure": f.failure,
                }
                for f in journal.files(*FileState)
            ],
        }
    finally:
        journal.close()
    click.echo(json.dumps(body, indent=2))


@settlement_group.command(
    "simulate-bank",
    help="Devnet: execute pain.001 files as a bank would and write its camt or CSV answer.",
)
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--kind", type=click.Choice(["camt.054", "camt.053", "csv"]), default="camt.054")
@click.option("--reject", multiple=True, help="END_TO_END_ID=REASON: the bank returns it.")
@click.option("--date", "booked", help="Booking date (default today, UTC).")
def simulate_bank(
    files: tuple[Path, ...], out: Path, kind: str, reject: tuple[str, ...], booked: str | None
) -> None:
    day = booked or datetime.datetime.now(tz=datetime.UTC).date().isoformat()
    rejected = dict(item.split("=", 1) for item in reject)
    out.mkdir(parents=True, exist_ok=True)
    documents = banksim.statements([p.read_bytes() for p in files], day, kind, rejected)
    suffix = "csv" if kind == "csv" else "xml"
    for n, data in enumerate(documents, start=1):
        path = out / f"{kind}-{day}-{n}.{suffix}"
        path.write_bytes(data)
        click.echo(str(path))
