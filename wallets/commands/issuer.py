"""``relance-wallet issuer``: a commune's merchants, campaigns, vouchers and letters."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Final

import click

from node.client.http_json import TxStatus
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol.codec import DecodeError
from node.protocol.crypto import PublicKey, Signer
from node.text import fmt
from wallets.book import (
    BookStatus,
    Entry,
    Household,
    VoucherBook,
    book_path,
    read_csv,
    read_households,
)
from wallets.client import Json, NodeClient
from wallets.commands.merchant import payout_ref_hash
from wallets.context import (
    BatchItem,
    Settings,
    Summary,
    common_options,
    confirm,
    emit,
    key_option,
    passphrase,
    quiet,
    settings,
    sign_submit,
    submit_many,
)
from wallets.exits import Exit, WalletError
from wallets.keystore import write_atomic
from wallets.letters import CampaignText, write_letters
from wallets.mail import Journal, MailOutcome, SmtpSettings, journal_path, send
from wallets.units import (
    format_address,
    format_euros,
    format_last_day,
    format_time,
    parse_address,
    parse_euros,
    parse_name,
    parse_time_ms,
)
from wallets.voucher import Voucher

ALLOCATIONS_PER_TX: Final = 1_000  # well under the protocol cap and the transaction size cap
MERCHANT_COLUMNS: Final = ("public_key", "name", "category", "zone", "payout_ref")
TRUE_WORDS: Final = ("1", "yes", "y", "true", "oui", "on")

SKIPPED: Final = "SKIPPED"  # a row the wallet did not send (already done): not a node result


@click.group("issuer", help="A commune: merchants, campaigns, allocations, letters, e-mails.")
@common_options
def issuer_group() -> None:
    pass


def _unlock(key_name: str) -> tuple[Signer, str]:
    store = settings().keystore()
    store.info(key_name)
    secret = passphrase(f"key {key_name!r}")
    return store.open(key_name, secret), secret


# --- merchants ---------------------------------------------------------------------------


@issuer_group.command(
    "register-merchants",
    epilog="""\b
CSV columns: public_key,name,category,zone,payout_ref[,auto_redeem,street,postcode,town]
  (category is a NACE code such as 47.11; payout_ref is the IBAN, of which only
  the hash goes on the ledger; auto_redeem yes/no, default yes; the shop's address
  as the citizens' page shows it: street and number, postcode, town, or none)
Examples:
  relance-wallet issuer register-merchants --key namur merchants.csv
  relance-wallet issuer register-merchants --key namur merchants.csv --yes --json""",
)
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@key_option
@common_options
def issuer_register_merchants(csv_file: Path, key_name: str) -> None:
    """Register every merchant of a CSV file (those already registered are skipped)."""
    try:
        text = csv_file.read_text(encoding="utf-8-sig")
    except (FileNotFoundError, UnicodeDecodeError) as error:
        raise WalletError(Exit.USAGE, f"cannot read {csv_file}: {error}") from None
    rows = read_csv(text, MERCHANT_COLUMNS, csv_file.name)
    client = settings().client()
    signer, _ = _unlock(key_name)
    items, skipped = [], []
    for line, row in rows:
        payload = _merchant_payload(row, f"{csv_file.name} line {line}")
        if client.account(payload.merchant).role == "merchant":
            skipped.append(payload.name)
            continue
        items.append(BatchItem(payload.name, payload))
    results: list[dict[str, object]] = [
        {"merchant": name, "result": SKIPPED, "detail": "already registered"} for name in skipped
    ]
    if items:
        confirm(
            client.chain_id(),
            signer.public_key,
            key_name,
            Summary(f"register {len(items)} merchant(s)", details=(("file", str(csv_file)),)),
        )
        for outcome in submit_many(client, signer, items, "registering"):
            results.append(
                {"merchant": outcome.label, "result": outcome.result, "tx_id": outcome.tx_id}
            )
    _report(results, "merchant")


def _merchant_payload(row: dict[str, str], at: str) -> t.RegisterMerchant:
    """A registration from a row of named strings (a CSV line, or the options); ``at``
    says where it came from in an error."""
    try:
        key = bytes.fromhex(row["public_key"])
    except ValueError:
        key = b""
    if len(key) != 32:
        raise WalletError(Exit.USAGE, f"{at}: public_key must be 64 hex digits")
    if not row["name"] or not row["category"] or not row["zone"] or not row["payout_ref"]:
        raise WalletError(Exit.USAGE, f"{at}: name, category, zone and payout_ref are required")
    auto = row.get("auto_redeem", "yes").lower() or "yes"
    return t.RegisterMerchant(
        PublicKey(key),
        parse_name(row["name"], f"{at}: name"),
        row["category"],
        row["zone"],
        payout_ref_hash(row["payout_ref"]),
        auto in TRUE_WORDS,
        parse_address(
            row.get("street", ""), row.get("postcode", ""), row.get("town", ""), f"{at}: address"
        ),
    )


@issuer_group.command(
    "register-merchant",
    epilog="""\b
The shop's address (street and number, postcode, town) is what the citizens'
page shows under "where to spend": give all three, or none for a shop without a
fixed place. Many at once: relance-wallet issuer register-merchants FILE.csv
Examples:
  relance-wallet issuer register-merchant --key namur 3f1c… --name "Boulangerie Zoë" \\
      --category 10.71 --zone NAM-JAMBES --payout-ref BE68539007547034 \\
      --street "Rue de Dave 12" --postcode 5100 --town Jambes""",
)
@click.argument("merchant")
@click.option("--name", required=True, help="The shop's name, as the directory shows it.")
@click.option("--category", required=True, help="Its NACE code, such as 47.24.")
@click.option("--zone", required=True, help="One of your zones.")
@click.option("--payout-ref", required=True, help="Its payout IBAN (only its hash is signed).")
@click.option("--auto-redeem/--no-auto-redeem", default=True, show_default=True)
@click.option("--street", default="", help="Street and number, such as 'Rue de Fer 12'.")
@click.option("--postcode", default="", help="Postcode, such as 5000.")
@click.option("--town", default="", help="Town, such as Namur.")
@key_option
@common_options
def issuer_register_merchant(
    merchant: str,
    name: str,
    category: str,
    zone: str,
    payout_ref: str,
    auto_redeem: bool,
    street: str,
    postcode: str,
    town: str,
    key_name: str,
) -> None:
    """Register one merchant, with its shop's address."""
    row = {
        "public_key": merchant,
        "name": name,
        "category": category,
        "zone": zone,
        "payout_ref": payout_ref,
        "auto_redeem": "yes" if auto_redeem else "no",
        "street": street,
        "postcode": postcode,
        "town": town,
    }
    payload = _merchant_payload(row, "the command line")
    client = settings().client()
    signer, _ = _unlock(key_name)
    details = (
        ("name", payload.name),
        ("category", payload.category),
        ("zone", payload.zone),
        ("address", format_address(payload.address)),
        ("auto-redeem", "on" if payload.auto_redeem else "off"),
    )
    _submit_profile(client, signer, key_name, payload, "register a merchant", details)


def _submit_profile(
    client: NodeClient,
    signer: Signer,
    key_name: str,
    payload: t.RegisterMerchant | t.UpdateMerchant,
    what: str,
    details: tuple[tuple[str, str], ...],
) -> None:
    """Sign and submit a merchant's registration or update, after the confirmation of
    ``details``; print the merchant as signed (JSON: its address or null)."""
    done = sign_submit(client, signer, key_name, payload, Summary(what, "", None, details))
    where = payload.address
    profile = {
        "merchant": payload.merchant.hex(),
        "name": payload.name,
        "category": payload.category,
        "zone": payload.zone,
        "address": None
        if where.is_empty()
        else {"street": where.street, "postcode": where.postcode, "town": where.town},
    }
    emit(
        {"tx_id": done.tx_id, "height": done.height, **profile},
        [
            f"{payload.name}: {payload.category}, {payload.zone}, {format_address(where)}",
            f"tx id  {done.tx_id}",
        ],
    )


def _report(results: list[dict[str, object]], what: str) -> None:
    failed = [r for r in results if r["result"] not in (Result.OK.name, SKIPPED)]
    lines = [f"{r['result']:<24} {r[what]}" for r in results]
    counts = Counter(str(r["result"]) for r in results)
    lines.append(", ".join(f"{n} {k.lower()}" for k, n in sorted(counts.items())))
    failure = None
    if failed:
        failure = WalletError(Exit.PARTIAL, f"{len(failed)} of {len(results)} {what}(s) failed")
    emit({"results": results, "failed": len(failed)}, lines, failure)


def _merchant_key(text: str, who: str = "a merchant") -> PublicKey:
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise WalletError(Exit.USAGE, f"{who}'s public key is 64 hex digits")
    return PublicKey(key)


def _registered(client: NodeClient, merchant: str) -> tuple[PublicKey, Json]:
    """A merchant's key (hex argument) and its record as the node shows it."""
    key = _merchant_key(merchant)
    account = client.account(key)
    if account.role != "merchant":
        raise WalletError(Exit.REJECTED, "no merchant has this key", "UNKNOWN_MERCHANT")
    return PublicKey(key), account.profile


def _merchant_record(client: NodeClient, key: PublicKey) -> r.Merchant:
    """The merchant's whole ledger record (with its payout hash), as its proof shows it."""
    answer = client.get(f"/v1/proofs/accounts/{key.hex()}")
    if answer.get("key") != r.merchant_key(key).hex():  # the node proves another record
        raise WalletError(Exit.REJECTED, "no merchant has this key", "UNKNOWN_MERCHANT")
    try:
        return r.Merchant.decode(bytes.fromhex(str(answer["value"])))
    except (KeyError, ValueError, DecodeError):
        raise WalletError(
            Exit.UNREACHABLE, "the node's merchant record is not understood"
        ) from None


def _set_suspended(merchant: str, key_name: str, suspended: bool) -> None:
    client = settings().client()
    key, profile = _registered(client, merchant)
    signer, _ = _unlock(key_name)
    action = "suspend" if suspended else "reinstate"
    name = str(profile.get("name", ""))
    done = sign_submit(
        client,
        signer,
        key_name,
        t.SuspendMerchant(key, suspended),
        Summary(f"{action} a merchant", name, None, (("merchant", key.hex()),)),
    )
    emit(
        {
            "tx_id": done.tx_id,
            "height": done.height,
            "merchant": key.hex(),
            "active": not suspended,
        },
        [
            f"{name or key.hex()} is {'suspended' if suspended else 'active again'}",
            f"tx id  {done.tx_id}",
        ],
    )


@issuer_group.command(
    "suspend-merchant",
    epilog="""\b
A suspended merchant can no longer be paid, redeem or transfer; its balance stays.
Examples:
  relance-wallet issuer suspend-merchant --key namur 3f1c…
  relance-wallet issuer reinstate-merchant --key namur 3f1c…""",
)
@click.argument("merchant")
@key_option
@common_options
def issuer_suspend_merchant(merchant: str, key_name: str) -> None:
    """Suspend one of your merchants (by its public key)."""
    _set_suspended(merchant, key_name, True)


@issuer_group.command(
    "reinstate-merchant",
    epilog="""\b
Examples:
  relance-wallet issuer reinstate-merchant --key namur 3f1c…""",
)
@click.argument("merchant")
@key_option
@common_options
def issuer_reinstate_merchant(merchant: str, key_name: str) -> None:
    """Let a suspended merchant of yours take payments again."""
    _set_suspended(merchant, key_name, False)


@issuer_group.command(
    "update-merchant",
    epilog="""\b
What is not given stays as it is; the confirmation shows every field signed. A new
address is given whole (--street, --postcode and --town); --no-address removes it.
The payout IBAN is the merchant's to change, with the bank (relance-wallet settlement
register-iban), as is auto-redeem (relance-wallet merchant auto-redeem).
Examples:
  relance-wallet issuer update-merchant --key namur 3f1c… --category 47.24
  relance-wallet issuer update-merchant --key namur 3f1c… --name "Boulangerie Zoë" \\
      --zone NAM-JAMBES
  relance-wallet issuer update-merchant --key namur 3f1c… --street "Place de l'Ange 3" \\
      --postcode 5000 --town Namur""",
)
@click.argument("merchant")
@click.option("--name", help="The shop's name, as the directory shows it.")
@click.option("--category", help="Its NACE code, such as 47.24.")
@click.option("--zone", help="One of your zones.")
@click.option("--street", help="Street and number (with --postcode and --town).")
@click.option("--postcode", help="Postcode (with --street and --town).")
@click.option("--town", help="Town (with --street and --postcode).")
@click.option("--no-address", is_flag=True, help="Remove the shop's address.")
@key_option
@common_options
def issuer_update_merchant(
    merchant: str,
    name: str | None,
    category: str | None,
    zone: str | None,
    street: str | None,
    postcode: str | None,
    town: str | None,
    no_address: bool,
    key_name: str,
) -> None:
    """Change one of your merchants' name, category, zone or address."""
    parts = (street, postcode, town)
    given = any(part is not None for part in parts)
    if given and no_address:
        raise WalletError(Exit.USAGE, "give a new address or --no-address, not both")
    if name is None and category is None and zone is None and not given and not no_address:
        raise WalletError(
            Exit.USAGE,
            "give at least one of --name, --category, --zone, --street/--postcode/--town, "
            "--no-address",
        )
    client = settings().client()
    key = _merchant_key(merchant)
    current = _merchant_record(client, key)
    address = current.address
    if no_address:
        address = t.NO_ADDRESS
    elif given:
        if None in parts:
            raise WalletError(
                Exit.USAGE, "a new address is given whole: --street, --postcode, --town"
            )
        address = parse_address(street or "", postcode or "", town or "", "the address")
    payload = t.UpdateMerchant(
        key,
        current.name if name is None else parse_name(name, "--name"),
        current.category if category is None else category,
        current.zone if zone is None else zone,
        current.payout_ref_hash,
        current.auto_redeem,
        address,
    )

    def shown(old: str, new: str) -> str:
        return new if old == new else f"{old} -> {new}"

    # The update rewrites the whole record: every field signed is shown.
    details = (
        ("name", shown(current.name, payload.name)),
        ("category", shown(current.category, payload.category)),
        ("zone", shown(current.zone, payload.zone)),
        ("address", shown(format_address(current.address), format_address(payload.address))),
        ("payout hash", f"{current.payout_ref_hash.hex()[:16]}… (unchanged)"),
        ("auto-redeem", f"{'on' if current.auto_redeem else 'off'} (unchanged)"),
    )
    signer, _ = _unlock(key_name)
    _submit_profile(client, signer, key_name, payload, "update a merchant", details)


# --- campaigns ---------------------------------------------------------------------------


# --- regions ------------------------------------------------------------------------------


@issuer_group.command(
    "consent",
    epilog="""\b
A region's campaign may name your zones, and be spent at your shops there, only with
your consent. Each consent replaces the previous one given to that region;
--revoke withdraws it (your shops stop taking the region's vouchers at once; what
they already received stays theirs, paid out from the region's escrow).
Examples:
  relance-wallet issuer consent --key namur 9a3e… --zone NAM-CENTRE --zone NAM-JAMBES
  relance-wallet issuer consent --key namur 9a3e… --revoke""",
)
@click.argument("region")
@click.option("--zone", "zones", multiple=True, help="One of your zones (repeat).")
@click.option("--revoke", is_flag=True, help="Withdraw the consent given to this region.")
@key_option
@common_options
def issuer_consent(region: str, zones: tuple[str, ...], revoke: bool, key_name: str) -> None:
    """Let a region's campaigns be spent at your shops in some of your zones."""
    if revoke == bool(zones):
        raise WalletError(Exit.USAGE, "give --zone (one or more) or --revoke")
    if len(set(zones)) != len(zones):
        raise WalletError(Exit.USAGE, "a zone is given twice")
    region_key = _merchant_key(region, "a region")
    client = settings().client()
    if client.account(region_key).role != "issuer":
        raise WalletError(Exit.REJECTED, "no region or commune has this key", "UNKNOWN_ISSUER")
    signer, _ = _unlock(key_name)
    if region_key == signer.public_key:
        raise WalletError(Exit.USAGE, "a commune does not consent to itself")
    action = "revoke a region's consent" if revoke else "consent to a region's campaigns"
    details = (("region", region_key.hex()), ("zones", ", ".join(zones) or "none (revoked)"))
    done = sign_submit(
        client,
        signer,
        key_name,
        t.ConsentZones(region_key, zones),
        Summary(action, "", None, details),
    )
    emit(
        {
            "tx_id": done.tx_id,
            "height": done.height,
            "region": region_key.hex(),
            "zones": sorted(zones),
        },
        [
            f"consent to {region_key.hex()[:16]}…: {', '.join(sorted(zones)) or 'revoked'}",
            f"tx id  {done.tx_id}",
        ],
    )


def _campaign_file(s: Settings, chain_id: str, code: str) -> Path:
    return s.data_dir("campaigns", chain_id, f"{code}.json")


@issuer_group.command(
    "create-campaign",
    epilog="""\b
Times: ISO dates (2026-03-31: that whole day), ISO date-times, or +90d / -1d from now.
Examples:
  relance-wallet issuer create-campaign --key namur NAM-2026 --name "Chèques relance Namur" \\
      --zone NAM-CENTRE --category 47 --category 56 --from 2026-01-05 --until 2026-03-31 \\
      --max-per-holder 150
A region names its own zones and other communes' zones, where those communes
consented (relance-wallet issuer consent); the region's escrow pays the shops.""",
)
@click.argument("code")
@click.option("--name", required=True, help="The campaign's name, as letters show it.")
@click.option(
    "--zone",
    "zones",
    multiple=True,
    help="A zone where it may be spent (repeat): yours, or a consenting commune's.",
)
@click.option("--category", "categories", multiple=True, help="A NACE prefix (repeat).")
@click.option("--from", "valid_from", default="now", show_default=True, help="Start.")
@click.option("--until", "valid_until", required=True, help="End (exclusive time, or last day).")
@click.option("--max-per-holder", required=True, help="Most one holder may hold (EUR).")
@key_option
@common_options
def issuer_create_campaign(
    code: str,
    name: str,
    zones: tuple[str, ...],
    categories: tuple[str, ...],
    valid_from: str,
    valid_until: str,
    max_per_holder: str,
    key_name: str,
) -> None:
    """Create a campaign: where, on what, when, and how much per holder."""
    now_ms = time.time_ns() // 1_000_000
    start = parse_time_ms(valid_from, now_ms)
    end = parse_time_ms(valid_until, now_ms, end_of_day=True)
    if end <= start:
        raise WalletError(Exit.USAGE, "--until must be after --from")
    cap = parse_euros(max_per_holder)
    payload = t.CreateCampaign(code, parse_name(name, "--name"), zones, categories, start, end, cap)
    s = settings()
    client = s.client()
    signer, _ = _unlock(key_name)
    details = (
        ("code", code),
        ("zones", ", ".join(zones) or "the whole territory"),
        ("categories", ", ".join(categories) or "all"),
        ("valid", f"{format_time(start)} .. {format_time(end)}"),
        ("last valid day", format_last_day(end)),
        ("per holder", format_euros(cap)),
    )
    done = sign_submit(
        client, signer, key_name, payload, Summary("create a campaign", "", None, details)
    )
    record = {
        "code": code,
        "name": name,
        "issuer": signer.public_key.hex(),
        "zones": list(zones),
        "categories": list(categories),
        "valid_from_ms": start,
        "valid_until_ms": end,
        "last_valid_day": fmt.last_valid_day(end).isoformat(),
        "max_per_holder_cents": cap,
    }
    write_atomic(_campaign_file(s, client.chain_id(), code), json.dumps(record, indent=2).encode())
    emit(
        {"tx_id": done.tx_id, "height": done.height, "campaign": record},
        [
            f"campaign {code} created",
            f"last valid day  {format_last_day(end)} (vouchers work until {format_time(end)})",
            f"tx id  {done.tx_id}",
        ],
    )


def campaign_text(
    client: NodeClient, s: Settings, code: str, balance_url: str = ""
) -> CampaignText:
    """The campaign as letters describe it: from the node when it offers campaigns,
    else from the record kept when this wallet created it."""
    record = client.campaign(code)
    if record is None:
        path = _campaign_file(s, client.chain_id(), code)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise WalletError(
                Exit.USAGE,
                f"campaign {code} is unknown here (the node has no campaign route "
                "and this wallet did not create it)",
            ) from None
    if not isinstance(record, dict):
        raise WalletError(Exit.UNREACHABLE, "the campaign record is not understood")
    issuer = record.get("issuer")
    issuer_name = "Votre commune"
    if isinstance(issuer, str):
        account = client.account(bytes.fromhex(issuer))
        issuer_name = str(account.raw.get("name") or issuer_name)
    return CampaignText(
        code=code,
        name=str(record.get("name", code)),
        issuer_name=issuer_name,
        zones=tuple(str(z) for z in _list(record.get("zones"))),
        categories=tuple(str(c) for c in _list(record.get("categories"))),
        valid_from_ms=_int(record.get("valid_from_ms")),
        valid_until_ms=_int(record.get("valid_until_ms")),
        chain_id=client.chain_id(),
        balance_url=balance_url,
    )


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _int(value: object) -> int:
    if not isinstance(value, int):
        raise WalletError(Exit.UNREACHABLE, "the campaign record lacks its dates")
    return value


# --- allocation --------------------------------------------------------------------------


@issuer_group.command(
    "allocate",
    epilog="""\b
CSV columns: amount,zone,channel[,name,address,email,holder,household_id]
  channel app: holder = the citizen's app public key
  channel email / post: a voucher key is generated and kept in the encrypted
  voucher book; then use `issuer letters` and `issuer mail`.
A rerun skips the rows already allocated.
Examples:
  relance-wallet issuer allocate --key namur NAM-2026 households.csv
  relance-wallet issuer allocate --key namur NAM-2026 households.csv --yes --json""",
)
@click.argument("campaign")
@click.argument("csv_file", type=click.Path(path_type=Path, dir_okay=False))
@key_option
@common_options
def issuer_allocate(campaign: str, csv_file: Path, key_name: str) -> None:
    """Allocate pots to the households of a CSV file (app keys, e-mail and paper vouchers)."""
    households = read_households(csv_file)
    s = settings()
    client = s.client()
    chain_id = client.chain_id()
    signer, secret = _unlock(key_name)
    book = VoucherBook(book_path(s.home, chain_id, campaign), chain_id, campaign, secret)
    todo = _not_yet_allocated(client, book, _to_allocate(book, households))
    skipped = len(households) - len(todo)
    if not todo:
        emit(
            {"allocated": 0, "skipped": skipped, "book": str(book.path)},
            [f"nothing to allocate: the {skipped} row(s) were allocated before"],
        )
        return
    book.save()  # the keys are safe on disk before any money reaches them
    total = sum(e.amount_cents for e in todo)
    confirm(
        chain_id,
        signer.public_key,
        key_name,
        Summary(f"allocate to {len(todo)} household(s)", "", total, (("campaign", campaign),)),
    )
    chunks = [todo[i : i + ALLOCATIONS_PER_TX] for i in range(0, len(todo), ALLOCATIONS_PER_TX)]
    items = [_allocation_item(campaign, chunk) for chunk in chunks]

    def journal(index: int, signed: t.SignedTx) -> None:
        for entry in chunks[index]:
            book.update(entry, tx_id=signed.tx_id.hex())
        book.save()  # before it leaves: a rerun asks the node about this id

    outcomes = submit_many(client, signer, items, "allocating", journal)
    failures, allocated = [], 0
    for chunk, outcome in zip(chunks, outcomes, strict=True):
        if outcome.code is Result.OK:
            allocated += len(chunk)
            for entry in chunk:
                book.update(entry, status=BookStatus.ALLOCATED, tx_id=outcome.tx_id or "")
        else:
            failures.append(outcome.result)
    book.save()
    done = [e for e in book.entries if e.status is BookStatus.ALLOCATED]
    per_channel = Counter(e.channel for e in todo)
    data: dict[str, object] = {
        "campaign": campaign,
        "allocated": allocated,
        "skipped": skipped,
        "total_cents": total,
        "by_channel": dict(per_channel),
        "transactions": [
            {"tx_id": o.tx_id, "result": o.result, "height": o.height} for o in outcomes
        ],
        "book": str(book.path),
        "vouchers_in_book": len(done),
        "book_entries": len(book.entries),
    }
    lines = [
        f"allocated {data['allocated']} of {len(todo)} ({format_euros(total)}), skipped {skipped}",
        *[f"  {channel:<6} {n}" for channel, n in sorted(per_channel.items())],
        *[f"  tx {o.tx_id} {o.result} block {o.height}" for o in outcomes],
        f"voucher book: {book.path}",
    ]
    failure = None
    if failures and len(failures) == len(outcomes):
        failure = WalletError(Exit.REJECTED, "the allocation was refused", failures[0])
    elif failures:
        failure = WalletError(Exit.PARTIAL, f"{len(failures)} allocation transaction(s) refused")
    emit(data, lines, failure)


def _to_allocate(book: VoucherBook, households: list[Household]) -> list[Entry]:
    """The book's entry of each household not yet allocated: a new one, or one kept by an
    earlier run that did not finish."""
    known = book.by_row()
    todo: list[Entry] = []
    for household in households:
        entry = known.get(household.row_id)
        if entry is None:
            todo.append(book.add(household))
        elif entry.status is BookStatus.NEW:
            todo.append(entry)
    return todo


def _allocation_item(campaign: str, chunk: list[Entry]) -> BatchItem:
    allocations = tuple(
        t.Allocation(PublicKey(bytes.fromhex(e.public_key)), e.amount_cents, e.zone) for e in chunk
    )
    return BatchItem(f"{chunk[0].serial}..{chunk[-1].serial}", t.Allocate(campaign, allocations))


def _not_yet_allocated(client: NodeClient, book: VoucherBook, todo: list[Entry]) -> list[Entry]:
    """Entries an earlier run signed an allocation for (their ``tx_id``) are marked
    allocated when that transaction is in a block: a rerun never pays twice."""
    out = []
    committed: dict[str, bool] = {}
    for entry in todo:
        if entry.tx_id and entry.tx_id not in committed:
            status: TxStatus | None
            try:
                status = client.transaction(entry.tx_id).status
            except WalletError as error:
                if error.code != Exit.USAGE:  # 404: the node never saw it
                    raise
                status = None
            if status is TxStatus.PENDING:
                raise WalletError(Exit.PENDING, f"allocation {entry.tx_id} is still pending")
            committed[entry.tx_id] = status is TxStatus.COMMITTED
        if entry.tx_id and committed[entry.tx_id]:
            book.update(entry, status=BookStatus.ALLOCATED)
        else:
            out.append(entry)
    return out


def _vouchers(
    book: VoucherBook, chain_id: str, channel: str, serials: tuple[str, ...]
) -> list[tuple[Entry, Voucher]]:
    chosen = (
        [book.find(s) for s in serials]
        if serials
        else [e for e in book.entries if e.channel == channel and e.status is BookStatus.ALLOCATED]
    )
    out = []
    for entry in chosen:
        if not entry.seed:
            raise WalletError(Exit.USAGE, f"{entry.serial} is an app key, not a voucher")
        if entry.status is not BookStatus.ALLOCATED:
            raise WalletError(Exit.USAGE, f"{entry.serial} is {entry.status}, not deliverable")
        out.append((entry, Voucher(chain_id.upper(), bytes.fromhex(entry.seed))))
    return out


def _open_book(
    s: Settings, client: NodeClient, campaign: str, key_name: str
) -> tuple[VoucherBook, Signer]:
    """The campaign's voucher book, sealed under the issuer key's passphrase."""
    chain_id = client.chain_id()
    path = book_path(s.home, chain_id, campaign)
    if not path.exists():
        raise WalletError(Exit.USAGE, f"no voucher book for {campaign} here ({path})")
    signer, secret = _unlock(key_name)
    return VoucherBook(path, chain_id, campaign, secret), signer


@issuer_group.command(
    "letters",
    epilog="""\b
Examples:
  relance-wallet issuer letters --key namur NAM-2026 --out letters/          (one PDF each)
  relance-wallet issuer letters --key namur NAM-2026 --merged --out print.pdf
  relance-wallet issuer letters --key namur NAM-2026 --serial NAM-2026-000012 --out one/""",
)
@click.argument("campaign")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="Folder, or file.")
@click.option("--merged", is_flag=True, help="One PDF for the print shop instead of one each.")
@click.option("--serial", "serials", multiple=True, help="Only these serials (repeat).")
@click.option(
    "--balance-url",
    help="Public address of a node for the balance link printed on letters "
    "(default: --node; 'none' prints no link).",
)
@key_option
@common_options
def issuer_letters(
    campaign: str,
    out: Path,
    merged: bool,
    serials: tuple[str, ...],
    balance_url: str | None,
    key_name: str,
) -> None:
    """Print the paper letters (PDF) of the campaign's postal vouchers."""
    s = settings()
    client = s.client()
    book, _signer = _open_book(s, client, campaign, key_name)
    items = _vouchers(book, client.chain_id(), "post", serials)
    if not items:
        raise WalletError(Exit.USAGE, "no postal vouchers to print")
    link_base = client.url if balance_url is None else balance_url
    text = campaign_text(client, s, campaign, "" if link_base == "none" else link_base)
    with click.progressbar(
        length=len(items), label="letters", file=sys.stderr, hidden=quiet()
    ) as bar:
        paths = write_letters(items, text, out, merged, lambda entry: bar.update(1))
    emit(
        {"letters": len(items), "files": [str(p) for p in paths]},
        [f"{len(items)} letter(s) written: {out}"],
    )


@issuer_group.command(
    "mail",
    epilog="""\b
The SMTP password comes from RELANCE_SMTP_PASSWORD or a prompt. Reruns skip what
the journal says was sent.
Examples:
  relance-wallet issuer mail --key namur NAM-2026 --smtp-host smtp.namur.be \\
      --smtp-port 587 --starttls --smtp-user relance --from "Ville de Namur <relance@namur.be>"
  relance-wallet issuer mail --key namur NAM-2026 --smtp-host 127.0.0.1 --smtp-port 2525 \\
      --from relance@example.be --json""",
)
@click.argument("campaign")
@click.option("--smtp-host", required=True, help="SMTP server.")
@click.option("--smtp-port", default=587, show_default=True, type=click.IntRange(1, 65535))
@click.option("--starttls", is_flag=True, help="Upgrade the connection with STARTTLS.")
@click.option("--tls", is_flag=True, help="Implicit TLS (usually port 465).")
@click.option("--smtp-user", help="Log in with this user name.")
@click.option(
    "--smtp-cafile",
    type=click.Path(exists=True, dir_okay=False),
    help="Also trust this CA bundle (PEM) for the server's certificate.",
)
@click.option("--from", "sender", required=True, help="The From address.")
@click.option(
    "--balance-url",
    help="Public address of a node for the balance link in each mail "
    "(default: --node; 'none' for no link).",
)
@click.option("--serial", "serials", multiple=True, help="Only these serials (repeat).")
@click.option("--report", type=click.Path(path_type=Path, dir_okay=False), help="Save the report.")
@key_option
@common_options
def issuer_mail(
    campaign: str,
    smtp_host: str,
    smtp_port: int,
    starttls: bool,
    tls: bool,
    smtp_user: str | None,
    smtp_cafile: str | None,
    sender: str,
    balance_url: str | None,
    serials: tuple[str, ...],
    report: Path | None,
    key_name: str,
) -> None:
    """E-mail the campaign's e-mail vouchers, the QR inline; report what was sent and failed."""
    s = settings()
    client = s.client()
    book, _signer = _open_book(s, client, campaign, key_name)
    items = _vouchers(book, client.chain_id(), "email", serials)
    link_base = client.url if balance_url is None else balance_url
    text = campaign_text(client, s, campaign, "" if link_base == "none" else link_base)
    password = None
    if smtp_user is not None:
        password = os.environ.get("RELANCE_SMTP_PASSWORD") or click.prompt(
            "SMTP password", hide_input=True, err=True
        )
    smtp = SmtpSettings(
        smtp_host, smtp_port, sender, smtp_user, password, starttls, tls, smtp_cafile
    )
    journal = Journal(journal_path(s.home, client.chain_id(), campaign))
    with click.progressbar(
        length=len(items), label="e-mails", file=sys.stderr, hidden=quiet()
    ) as bar:

        def advance(outcome: MailOutcome) -> None:
            bar.update(1)

        outcomes = send(items, text, smtp, journal, advance)
    rows = [
        {"serial": o.serial, "email": o.email, "status": o.status, "detail": o.detail}
        for o in outcomes
    ]
    counts = Counter(o.status for o in outcomes)
    summary = {k: counts.get(k, 0) for k in ("sent", "skipped", "failed")}
    if report is not None:
        write_atomic(
            report,
            json.dumps(
                {"campaign": campaign, "summary": summary, "items": rows},
                indent=2,
                ensure_ascii=False,
            ).encode(),
        )
    lines = [f"{o.status:<8} {o.serial}  {o.email}  {o.detail}" for o in outcomes]
    lines.append(
        f"sent {summary['sent']}, skipped {summary['skipped']}, failed {summary['failed']}"
    )
    failure = None
    if summary["failed"]:
        failure = WalletError(
            Exit.PARTIAL, f"{summary['failed']} e-mail(s) not sent (see the report)"
        )
    emit({"summary": summary, "items": rows, "journal": str(journal.path)}, lines, failure)


# --- after the fact ------------------------------------------------------------------------


@issuer_group.command(
    "reissue",
    epilog="""\b
The lost voucher's remaining balance moves to a new voucher (new serial); the
old one is then worth nothing. For an app key, give the citizen's new key with --to.
Examples:
  relance-wallet issuer reissue --key namur NAM-2026 NAM-2026-000012 --out new-letter.pdf
  relance-wallet issuer reissue --key namur NAM-2026 NAM-2026-000040 --to 7be1...90""",
)
@click.argument("campaign")
@click.argument("serial")
@click.option("--to", "to_key", help="Move to this public key instead of a new voucher.")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), help="Print its letter.")
@key_option
@common_options
def issuer_reissue(
    campaign: str, serial: str, to_key: str | None, out: Path | None, key_name: str
) -> None:
    """Reissue a lost voucher by its serial number."""
    s = settings()
    client = s.client()
    book, signer = _open_book(s, client, campaign, key_name)
    lost = book.find(serial)
    if lost.status is BookStatus.LOST:
        raise WalletError(Exit.USAGE, f"{lost.serial} was already reissued as {lost.replaced_by}")
    remaining = sum(
        b.cents
        for b in client.account(bytes.fromhex(lost.public_key)).balances
        if b.key == campaign
    )
    if remaining == 0:
        raise WalletError(Exit.REJECTED, f"{lost.serial} holds nothing any more", "NOTHING_TO_MOVE")
    new = book.replacement(lost)
    if to_key is not None:
        new = book.update(new, public_key=to_key.lower(), seed="", channel="app")
    new = book.update(new, amount_cents=remaining)
    book.save()
    payload = t.Reissue(
        campaign,
        PublicKey(bytes.fromhex(lost.public_key)),
        PublicKey(bytes.fromhex(new.public_key)),
    )
    done = sign_submit(
        client,
        signer,
        key_name,
        payload,
        Summary(
            "reissue a lost voucher",
            f"{new.public_key} ({new.serial})",
            remaining,
            (("lost", lost.serial), ("campaign", campaign)),
        ),
    )
    book.update(lost, status=BookStatus.LOST, replaced_by=new.serial)
    new = book.update(new, status=BookStatus.ALLOCATED, tx_id=done.tx_id)
    book.save()
    files = []
    if out is not None and new.seed:
        text = campaign_text(client, s, campaign, client.url)
        files = write_letters(
            [(new, Voucher(client.chain_id().upper(), bytes.fromhex(new.seed)))],
            text,
            out,
            merged=True,
        )
    emit(
        {
            "tx_id": done.tx_id,
            "height": done.height,
            "lost": lost.serial,
            "serial": new.serial,
            "public_key": new.public_key,
            "amount_cents": remaining,
            "letter": str(files[0]) if files else None,
        },
        [
            f"{lost.serial} reissued as {new.serial} ({format_euros(remaining)})",
            f"tx id  {done.tx_id}",
            *[f"letter {f}" for f in files],
        ],
    )


@issuer_group.command(
    "close",
    epilog="""\b
Only after the campaign's end; unspent balances return to its budget.
Example:
  relance-wallet issuer close --key namur NAM-2026""",
)
@click.argument("campaign")
@key_option
@common_options
def issuer_close(campaign: str, key_name: str) -> None:
    """Close a campaign after its end date."""
    client = settings().client()
    signer, _ = _unlock(key_name)
    done = sign_submit(
        client,
        signer,
        key_name,
        t.CloseCampaign(campaign),
        Summary("close a campaign", "", None, (("campaign", campaign),)),
    )
    emit(
        {"tx_id": done.tx_id, "height": done.height}, [f"{campaign} closed", f"tx id  {done.tx_id}"]
    )


@issuer_group.command(
    "campaign-report",
    epilog="""\b
Examples:
  relance-wallet issuer campaign-report --key namur NAM-2026
  relance-wallet issuer campaign-report --key namur NAM-2026 --balances --json""",
)
@click.argument("campaign")
@click.option("--balances", is_flag=True, help="Also read every voucher's remaining balance.")
@key_option
@common_options
def issuer_report(campaign: str, balances: bool, key_name: str) -> None:
    """What the campaign allocated per channel, and what is left (totals from the node
    when it offers campaigns)."""
    s = settings()
    client = s.client()
    book, _signer = _open_book(s, client, campaign, key_name)
    live = [e for e in book.entries if e.status is BookStatus.ALLOCATED]
    per: dict[str, dict[str, int]] = defaultdict(lambda: {"count": 0, "allocated_cents": 0})
    for entry in live:
        per[entry.channel]["count"] += 1
        per[entry.channel]["allocated_cents"] += entry.amount_cents
    if balances:
        with click.progressbar(live, label="balances", file=sys.stderr, hidden=quiet()) as bar:
            for entry in bar:
                account = client.account(bytes.fromhex(entry.public_key))
                left = sum(b.cents for b in account.balances if b.key == campaign)
                per[entry.channel]["remaining_cents"] = (
                    per[entry.channel].get("remaining_cents", 0) + left
                )
    totals = client.campaign(campaign)
    lost = sum(1 for e in book.entries if e.status is BookStatus.LOST)
    data: dict[str, object] = {
        "campaign": campaign,
        "by_channel": dict(per),
        "lost_reissued": lost,
        "ledger": totals,
    }
    lines = [f"campaign {campaign}"]
    for channel, row in sorted(per.items()):
        line = (
            f"  {channel:<6} {row['count']:>6} vouchers  {format_euros(row['allocated_cents']):>16}"
        )
        if "remaining_cents" in row:
            line += f"  left {format_euros(row['remaining_cents'])}"
        lines.append(line)
    lines.append(f"  reissued after loss: {lost}")
    if totals is None:
        lines.append("  (this node offers no campaign totals yet)")
    else:
        lines += [f"  {k}: {v}" for k, v in totals.items() if k.endswith("_cents")]
    emit(data, lines)
