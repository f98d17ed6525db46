"""``relance-wallet holder``: a citizen's app wallet and paper vouchers."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Final

import click

from node.api import tokens
from node.ledger import tx as t
from node.ledger.tx import NONCE_BYTES, Authorization
from node.protocol.crypto import PublicKey
from wallets.client import Json, NodeClient
from wallets.commands.common import code_text, pick_campaign, remaining_after, voucher_for
from wallets.context import (
    Summary,
    authenticate,
    common_options,
    confirm,
    emit,
    key_option,
    parse_key,
    settings,
    sign_submit,
    unlock,
)
from wallets.exits import Exit, WalletError
from wallets.keystore import write_atomic
from wallets.units import (
    format_euros,
    format_last_day,
    format_time,
    parse_euros,
    parse_time_ms,
)
from wallets.voucher import VOUCHER_SCHEME, SignedAuthorization, qr_png, qr_text

NAMES_CACHED_MAX: Final = 1_000  # account names one listing keeps


@click.group("holder", help="A citizen's wallet: balance, history, pay, authorize, sweep.")
@common_options
def holder_group() -> None:
    pass


def _holder_key(key_name: str | None, voucher: str | None, client: NodeClient) -> tuple[bytes, str]:
    if voucher is not None and key_name is None:
        return voucher_for(client, voucher).signer.public_key, "voucher"
    if key_name is None or voucher is not None:
        raise WalletError(Exit.USAGE, "give --key NAME or --voucher CODE")
    return settings().keystore().info(key_name).public_key, key_name


@holder_group.command(
    "balance",
    epilog="""\b
Examples:
  relance-wallet holder balance --key alice
  relance-wallet holder balance --voucher RLV1:RELANCE-DEVNET-1:ABC...:WXYZ
  relance-wallet holder balance --key alice --json""",
)
@click.option("--key", "key_name", envvar="RELANCE_KEY", metavar="NAME", help="An app key.")
@click.option("--voucher", metavar="CODE", help="A paper or e-mail voucher code (RLV1:...).")
@click.option("--keys", "show_keys", is_flag=True, help="Show the public keys too.")
@common_options
def holder_balance(key_name: str | None, voucher: str | None, show_keys: bool) -> None:
    """Balance per campaign, with the campaign's and the commune's names (no passphrase
    needed)."""
    client = settings().client()
    public_key, label = _holder_key(key_name, voucher, client)
    account = client.account(public_key)
    names = PartyNames(client)
    rows: list[dict[str, object]] = []
    lines = [f"{label}  {public_key.hex()}" if show_keys else label]
    for b in account.balances:
        campaign = client.campaign(b.key) or {}
        name, until, issuer = (
            campaign.get("name"),
            campaign.get("valid_until_ms"),
            campaign.get("issuer"),
        )
        commune = names.of(issuer) if isinstance(issuer, str) else None
        last_day = format_last_day(until) if isinstance(until, int) else None
        rows.append(
            {
                "campaign": b.key,
                "cents": b.cents,
                "name": name,
                "issuer": issuer,
                "issuer_name": commune,
                "last_valid_day": last_day,
            }
        )
        shown = f"{name} ({b.key})" if isinstance(name, str) and name else b.key
        through = f"  valid through {last_day}" if last_day else ""
        lines.append(f"  {shown:<40} {format_euros(b.cents):>14}{through}")
        if commune:
            lines.append(f"    {commune}" + (f"  {issuer}" if show_keys else ""))
    total = sum(b.cents for b in account.balances)
    lines.append(f"  {'total':<40} {format_euros(total):>14}")
    emit(
        {
            "public_key": public_key.hex(),
            "role": account.role,
            "balances": rows,
            "total_cents": total,
        },
        lines,
    )


@holder_group.command(
    "history",
    epilog="""\b
Examples:
  relance-wallet holder history --key alice
  relance-wallet holder history --voucher RLV1:... --json""",
)
@click.option("--key", "key_name", envvar="RELANCE_KEY", metavar="NAME", help="An app key.")
@click.option("--voucher", metavar="CODE", help="A voucher code (RLV1:...).")
@click.option("--keys", "show_keys", is_flag=True, help="Show keys and transaction ids too.")
@common_options
def holder_history(key_name: str | None, voucher: str | None, show_keys: bool) -> None:
    """Payments, refunds and sweeps of this key, newest first (a private read: the wallet
    signs a short-lived token, or the voucher a balance code)."""
    client = settings().client()
    if voucher is not None and key_name is None:
        bearer = voucher_for(client, voucher).signer
        public_key, label = bearer.public_key, "voucher"
        expires_ms = time.time_ns() // 1_000_000 + 600_000
        client.authenticate(
            balance_code=tokens.make_balance_code(bearer, client.chain_id(), expires_ms)
        )
    elif key_name is not None and voucher is None:
        signer = unlock(key_name)
        public_key, label = signer.public_key, key_name
        authenticate(client, signer)
    else:
        raise WalletError(Exit.USAGE, "give --key NAME or --voucher CODE")
    rows = client.pages(f"/v1/accounts/{public_key.hex()}/transactions")
    names = PartyNames(client)
    lines = [f"{label}  {public_key.hex()}" if show_keys else label]
    for row in rows:
        other = counterparty(row, public_key.hex())
        row["counterparty"], row["counterparty_name"] = other, names.of(other)
        amount = row.get("amount_cents")
        shown = format_euros(amount) if isinstance(amount, int) else ""
        party = row["counterparty_name"] or (other[:8] + "…" if other else "")
        line = (
            f"  {format_time(_int(row.get('time_ms')))}  {row.get('kind', ''):<14} "
            f"{shown:>12}  {row.get('campaign') or '':<12}  {party}"
        )
        if show_keys:
            line += f"  {other}  tx {row.get('tx_id', '')}"
        lines.append(line)
    if not rows:
        lines.append("  no transactions")
    emit({"public_key": public_key.hex(), "items": rows}, lines)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def counterparty(row: Json, me: str) -> str:
    """The other party of a history row: the merchant paid or refunding, the commune
    allocating; "" when none."""
    for field in ("merchant", "sender", "holder"):
        value = row.get(field)
        if isinstance(value, str) and value and value != me:
            return value
    return ""


class PartyNames:
    """Names of accounts (merchants, communes, the bank) read once each from the node."""

    def __init__(self, client: NodeClient) -> None:
        self._client = client
        self._names: dict[str, str | None] = {}

    def of(self, key: str) -> str | None:
        if not key:
            return None
        if key not in self._names:
            if len(self._names) >= NAMES_CACHED_MAX:
                self._names.clear()
            try:
                raw = self._client.account(bytes.fromhex(key)).raw
            except (ValueError, WalletError):
                raw = {}
            name = raw.get("name")
            self._names[key] = name if isinstance(name, str) and name else None
        return self._names[key]


@holder_group.command(
    "pay",
    epilog="""\b
Examples:
  relance-wallet holder pay --key alice 3f9a...e1 12,50
  relance-wallet holder pay --key alice 3f9a...e1 12.50 --campaign NAM-2026 --memo pain --yes""",
)
@click.argument("merchant")
@click.argument("amount")
@click.option("--campaign", help="Campaign to spend from (default: the only one held).")
@click.option("--memo", default="", help="A short note for the merchant.")
@key_option
@common_options
def holder_pay(merchant: str, amount: str, campaign: str | None, memo: str, key_name: str) -> None:
    """Pay AMOUNT euros to the MERCHANT (public key in hex)."""
    merchant_key = parse_key(merchant, "the merchant")
    cents = parse_euros(amount)
    client = settings().client()
    signer = unlock(key_name)
    code = pick_campaign(client.account(signer.public_key), campaign, f"key {key_name!r}")
    payload = t.Pay(code, PublicKey(merchant_key), cents, memo)
    name = _merchant_name(client, merchant_key)
    done = sign_submit(
        client,
        signer,
        key_name,
        payload,
        Summary("pay a merchant", f"{merchant_key.hex()} ({name})", cents, (("campaign", code),)),
    )
    left = remaining_after(client, done, signer.public_key, code)
    emit(
        {
            "tx_id": done.tx_id,
            "height": done.height,
            "amount_cents": cents,
            "campaign": code,
            "remaining_cents": left,
        },
        [
            f"paid {format_euros(cents)} to {name}",
            f"left   {'once in a block' if left is None else format_euros(left)} on {code}",
            f"tx id  {done.tx_id}",
            f"block  {done.height}",
        ],
    )


def _merchant_name(client: NodeClient, key: bytes) -> str:
    account = client.account(key)
    name = account.profile.get("name")
    return str(name) if account.role == "merchant" and name else "not a registered merchant"


@holder_group.command(
    "authorize",
    epilog="""\b
Shows a QR code the merchant scans with `relance-wallet merchant complete`.
Examples:
  relance-wallet holder authorize --key alice --max 30 --expires +15m
  relance-wallet holder authorize --key alice --max 30 --merchant 3f9a...e1 --png auth.png""",
)
@click.option("--max", "max_amount", required=True, help="The most the merchant may take (EUR).")
@click.option("--merchant", help="Only this merchant may complete it (default: any eligible).")
@click.option("--expires", default="+15m", show_default=True, help="Expiry (e.g. +15m, ISO time).")
@click.option("--campaign", help="Campaign to spend from (default: the only one held).")
@click.option("--png", type=click.Path(path_type=Path, dir_okay=False), help="Also save the QR.")
@key_option
@common_options
def holder_authorize(
    max_amount: str,
    merchant: str | None,
    expires: str,
    campaign: str | None,
    png: Path | None,
    key_name: str,
) -> None:
    """Sign a spending authorization and show it as a QR code for a merchant to complete."""
    cents = parse_euros(max_amount)
    merchant_key = b"" if merchant is None else parse_key(merchant, "the merchant")
    now_ms = time.time_ns() // 1_000_000
    expires_ms = parse_time_ms(expires, now_ms)
    if expires_ms <= now_ms:
        raise WalletError(Exit.USAGE, "the expiry must be in the future")
    client = settings().client()
    signer = unlock(key_name)
    chain_id = client.chain_id()
    code = pick_campaign(client.account(signer.public_key), campaign, f"key {key_name!r}")
    recipient = merchant_key.hex() if merchant_key else "any eligible merchant"
    confirm(
        chain_id,
        signer.public_key,
        key_name,
        Summary(
            "authorize a payment",
            recipient,
            cents,
            (("campaign", code), ("expires", format_time(expires_ms))),
        ),
    )
    authorization = Authorization(
        signer.public_key, code, merchant_key, cents, expires_ms, os.urandom(NONCE_BYTES)
    )
    signed = SignedAuthorization(
        chain_id.upper(), authorization, authorization.sign(signer, chain_id)
    )
    uri = signed.uri()
    if png is not None:
        write_atomic(png, qr_png(uri), 0o600)
    emit(
        {
            "authorization": uri,
            "authorization_id": authorization.authorization_id.hex(),
            "max_cents": cents,
            "expires_ms": expires_ms,
            "campaign": code,
            "png": None if png is None else str(png),
        },
        [qr_text(uri), uri, f"up to {format_euros(cents)}, until {format_time(expires_ms)}"],
    )


@holder_group.command(
    "sweep",
    epilog="""\b
Examples:
  relance-wallet holder sweep --key alice RLV1:RELANCE-DEVNET-1:ABC...:WXYZ
  relance-wallet holder sweep --key alice --image letter-photo.png""",
)
@click.argument("voucher", required=False)
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False), help="A photo of the QR.")
@key_option
@common_options
def holder_sweep(voucher: str | None, image: Path | None, key_name: str) -> None:
    """Move a paper or e-mail voucher's whole balance into your app key."""
    client = settings().client()
    bearer = voucher_for(client, code_text(voucher, image, "voucher", VOUCHER_SCHEME))
    target = settings().keystore().info(key_name).public_key
    account = client.account(bearer.signer.public_key)
    held = [b for b in account.balances if b.cents > 0]
    if not held:
        raise WalletError(Exit.REJECTED, "this voucher holds nothing", "NOTHING_TO_MOVE")
    moved = []
    for balance in held:
        payload = t.Sweep(balance.key, PublicKey(target))
        done = sign_submit(
            client,
            bearer.signer,
            "voucher",
            payload,
            Summary(
                "sweep a voucher",
                f"{target.hex()} ({key_name})",
                balance.cents,
                (("campaign", balance.key),),
            ),
        )
        moved.append({"campaign": balance.key, "cents": balance.cents, "tx_id": done.tx_id})
    emit(
        {"moved": moved, "to": target.hex()},
        [
            f"moved {format_euros(int(str(m['cents'])))} ({m['campaign']}) tx {m['tx_id']}"
            for m in moved
        ],
    )
