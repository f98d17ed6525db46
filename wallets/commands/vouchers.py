"""``relance-wallet issuer vouchers``: each voucher's status, by serial and channel.

The node knows, per campaign, every key the commune allocated to and its status
(``GET /v1/campaigns/<code>/vouchers``, the issuing commune only; the rules are
``node/api/voucher_status.py``). Serials and delivery channels are in the
commune's sealed voucher book, on its own machine. This command joins the two.

Statuses: ``untouched``, ``partly_used``, ``used``, ``reissued``, ``expired`` (the
node's), and two the book alone knows: ``not_allocated`` (the key was written to
the book but its allocation never reached the ledger) and ``unknown`` (the node
did not list the key: see ``complete``).
"""

from __future__ import annotations

import io
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click

from node.protocol import limits
from node.text.escape import csv_writer
from wallets.book import CHANNELS, BookStatus, VoucherBook
from wallets.client import Json, NodeClient
from wallets.commands.issuer import _open_book as open_book
from wallets.context import authenticate, common_options, emit, key_option, settings
from wallets.exits import Exit, WalletError
from wallets.keystore import write_atomic
from wallets.units import format_euros

NODE_STATUSES: Final = ("untouched", "partly_used", "used", "reissued", "expired")
BOOK_STATUSES: Final = ("not_allocated", "unknown")
STATUSES: Final = NODE_STATUSES + BOOK_STATUSES
CSV_COLUMNS: Final = (
    "serial",
    "channel",
    "status",
    "allocated_cents",
    "balance_cents",
    "public_key",
    "replaced_by",
    "replaces",
    "household_id",
)


@dataclass(frozen=True, slots=True)
class Row:
    serial: str  # "" for a key the node lists and the book does not have
    channel: str
    status: str
    allocated_cents: int
    balance_cents: int | None  # None: the node does not know the key
    public_key: str
    replaced_by: str  # a serial (or a key the book does not have)
    replaces: str
    household_id: str

    def as_json(self) -> dict[str, object]:
        return {name: getattr(self, name) for name in CSV_COLUMNS}


def node_statuses(client: NodeClient, campaign: str) -> tuple[dict[str, Json], bool]:
    """Every key the node lists for ``campaign``, and whether the list is complete."""
    path = f"/v1/campaigns/{urllib.parse.quote(campaign, safe='')}/vouchers"
    found: dict[str, Json] = {}
    cursor: str | None = None
    complete = True
    while len(found) < limits.VOUCHERS_STATUS_MAX:
        query = f"?limit={limits.VOUCHERS_PER_PAGE}"
        if cursor is not None:
            query += f"&cursor={urllib.parse.quote(cursor)}"
        body = client.get(path + query)
        items = body.get("items")
        if not isinstance(items, list):
            raise WalletError(Exit.UNREACHABLE, "the node's voucher status is not understood")
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("holder"), str):
                found[str(item["holder"])] = item
        complete = complete and body.get("complete") is True
        next_cursor = body.get("next_cursor")
        if not isinstance(next_cursor, str) or not items:
            break
        cursor = next_cursor
    return found, complete


def join(book: VoucherBook, on_node: dict[str, Json]) -> list[Row]:
    """The book's serials with the node's statuses; keys the book lacks come last."""
    serial_of = {e.public_key: e.serial for e in book.entries}
    rows: list[Row] = []
    for entry in book.entries:
        item = on_node.get(entry.public_key)
        if item is None:
            state = "not_allocated" if entry.status is BookStatus.NEW else "unknown"
            allocated, balance, replaced_by = entry.amount_cents, None, entry.replaced_by
        else:
            state = str(item.get("status"))
            allocated = _cents(item.get("allocated_cents"))
            balance = _cents(item.get("balance_cents"))
            key = item.get("replaced_by")
            replaced_by = serial_of.get(key, key) if isinstance(key, str) else ""
        rows.append(
            Row(
                entry.serial,
                entry.channel,
                state,
                allocated,
                balance,
                entry.public_key,
                replaced_by or "",
                entry.replaces,
                entry.row_id,
            )
        )
    for key, item in sorted(on_node.items()):
        if key not in serial_of:
            rows.append(
                Row(
                    "",
                    "",
                    str(item.get("status")),
                    _cents(item.get("allocated_cents")),
                    _cents(item.get("balance_cents")),
                    key,
                    "",
                    "",
                    "",
                )
            )
    return rows


def _cents(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise WalletError(Exit.UNREACHABLE, "the node's voucher status is not understood")
    return value


def write_csv(rows: list[Row], path: Path) -> None:
    out = io.StringIO()
    writer = csv_writer(out)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row.as_json().values()])
    write_atomic(path, out.getvalue().encode("utf-8"))


@click.command(
    "vouchers",
    epilog="""\b
Statuses: untouched, partly_used, used, reissued, expired (from the ledger);
not_allocated, unknown (from the voucher book alone: never allocated, or not
listed by the node). The CSV holds no name, address or e-mail (those stay in the book).
Examples:
  relance-wallet issuer vouchers --key namur NAM-2026
  relance-wallet issuer vouchers --key namur NAM-2026 --status untouched --channel post
  relance-wallet issuer vouchers --key namur NAM-2026 --csv vouchers.csv --json""",
)
@click.argument("campaign")
@click.option(
    "--status",
    "wanted",
    multiple=True,
    type=click.Choice(STATUSES),
    help="Only these statuses (repeat).",
)
@click.option(
    "--channel",
    "channels",
    multiple=True,
    type=click.Choice(CHANNELS),
    help="Only these delivery channels (repeat).",
)
@click.option(
    "--csv",
    "csv_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the rows shown to this CSV file.",
)
@key_option
@common_options
def vouchers_command(
    campaign: str,
    wanted: tuple[str, ...],
    channels: tuple[str, ...],
    csv_file: Path | None,
    key_name: str,
) -> None:
    """Each voucher's status by serial: untouched, partly used, used, reissued, expired."""
    s = settings()
    client = s.client()
    book, signer = open_book(s, client, campaign, key_name)
    authenticate(client, signer)
    on_node, complete = node_statuses(client, campaign)
    rows = join(book, on_node)
    by_status = Counter(row.status for row in rows)
    by_channel: dict[str, Counter[str]] = {c: Counter() for c in CHANNELS}
    for row in rows:
        if row.channel in by_channel:
            by_channel[row.channel][row.status] += 1
    shown = [
        row
        for row in rows
        if (not wanted or row.status in wanted) and (not channels or row.channel in channels)
    ]
    if csv_file is not None:
        write_csv(shown, csv_file)
    counts = {state: by_status.get(state, 0) for state in STATUSES}
    data: dict[str, object] = {
        "campaign": campaign,
        "complete": complete,
        "counts": counts,
        "by_channel": {c: {k: n for k, n in sorted(v.items())} for c, v in by_channel.items()},
        "items": [row.as_json() for row in shown],
        "csv": None if csv_file is None else str(csv_file),
    }
    lines = [
        f"{row.serial or '(not in the book)':<20} {row.channel or '-':<6} {row.status:<14}"
        f" {format_euros(row.allocated_cents):>12}"
        f"  left {'?' if row.balance_cents is None else format_euros(row.balance_cents)}"
        for row in shown
    ]
    lines.append("  ".join(f"{state} {n}" for state, n in counts.items() if n))
    for channel, per in by_channel.items():
        if per:
            lines.append(f"  {channel}: " + ", ".join(f"{k} {n}" for k, n in sorted(per.items())))
    if not complete:
        lines.append("the node listed part of the campaign only (a cap was reached)")
    if csv_file is not None:
        lines.append(f"written to {csv_file}")
    emit(data, lines)
