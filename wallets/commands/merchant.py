"""``relance-wallet merchant``: take payments, refund, pay suppliers, redeem."""

from __future__ import annotations

import time
from pathlib import Path

import click

from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey
from node.settlement import refhash
from wallets.client import Account, NodeClient
from wallets.commands.common import (
    balance_of,
    code_text,
    payout_is_pending,
    payout_state,
    pick_campaign,
    pick_issuer,
    receipt,
    remaining_after,
    voucher_for,
)
from wallets.context import (
    Summary,
    authenticate,
    common_options,
    emit,
    key_option,
    parse_key,
    settings,
    sign_submit,
    unlock,
)
from wallets.exits import Exit, WalletError
from wallets.units import format_euros, format_time, parse_euros
from wallets.voucher import (
    AUTHORIZATION_SCHEME,
    VOUCHER_SCHEME,
    is_voucher_uri,
    parse_authorization,
)


def payout_ref_hash(payout_reference: str) -> Digest:
    """What the ledger keeps of a payout reference given without a salt (an issuer's CSV, the
    ``auto-redeem`` option): ``refhash.ref_hash`` of its compact form, the legacy unsalted form
    the bank accepts."""
    normal = refhash.compact(payout_reference)
    if not normal:
        raise WalletError(Exit.USAGE, "the payout reference is empty")
    return Digest(refhash.ref_hash(normal, b""))


@click.group("merchant", help="A shop: charge vouchers, refund, pay suppliers, redeem.")
@common_options
def merchant_group() -> None:
    pass


def _merchant(client: NodeClient, key_name: str) -> tuple[bytes, Account]:
    public_key = settings().keystore().info(key_name).public_key
    account = client.account(public_key)
    if account.role != "merchant":
        raise WalletError(
            Exit.REJECTED, f"key {key_name!r} is not a registered merchant", "UNKNOWN_MERCHANT"
        )
    return public_key, account


@merchant_group.command(
    "charge",
    epilog="""\b
The voucher itself signs the payment: no passphrase is needed.
Examples:
  relance-wallet merchant charge --key shop RLV1:RELANCE-DEVNET-1:ABC...:WXYZ 12,50
  relance-wallet merchant charge --key shop --image scan.png 12.50 --yes --json""",
)
@click.argument("args", nargs=-1, required=True, metavar="[VOUCHER] AMOUNT")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False), help="A photo of the QR.")
@click.option("--campaign", help="Campaign to charge (default: the voucher's only one).")
@click.option("--memo", default="", help="A note on the receipt.")
@key_option
@common_options
def merchant_charge(
    args: tuple[str, ...], image: Path | None, campaign: str | None, memo: str, key_name: str
) -> None:
    """Charge AMOUNT euros to a voucher read from its QR (text or image); print a receipt."""
    if len(args) not in (1, 2):
        raise WalletError(Exit.USAGE, "expected [VOUCHER] AMOUNT")
    text = args[0] if len(args) == 2 else None
    cents = parse_euros(args[-1])
    client = settings().client()
    merchant_key, merchant = _merchant(client, key_name)
    bearer = voucher_for(client, code_text(text, image, "voucher", VOUCHER_SCHEME))
    signer = bearer.signer
    code = pick_campaign(client.account(signer.public_key), campaign, "the voucher")
    name = str(merchant.profile.get("name", key_name))
    done = sign_submit(
        client,
        signer,
        "voucher",
        t.Pay(code, PublicKey(merchant_key), cents, memo),
        Summary("charge a voucher", f"{merchant_key.hex()} ({name})", cents, (("campaign", code),)),
    )
    left = remaining_after(client, done, signer.public_key, code)
    data, lines = receipt("RECEIPT", name, cents, code, signer.public_key.hex(), done, left)
    emit(data, lines)


@merchant_group.command(
    "complete",
    epilog="""\b
Examples:
  relance-wallet merchant complete --key shop RLA1:RELANCE-DEVNET-1:...:WXYZ 18,40
  relance-wallet merchant complete --key shop --image phone.png 18.40""",
)
@click.argument("args", nargs=-1, required=True, metavar="[AUTHORIZATION] AMOUNT")
@click.option("--image", type=click.Path(path_type=Path, dir_okay=False), help="A photo of the QR.")
@click.option("--memo", default="", help="A note on the receipt.")
@key_option
@common_options
def merchant_complete(args: tuple[str, ...], image: Path | None, memo: str, key_name: str) -> None:
    """Take AMOUNT euros under a holder's signed authorization (from its QR)."""
    if len(args) not in (1, 2):
        raise WalletError(Exit.USAGE, "expected [AUTHORIZATION] AMOUNT")
    text = args[0] if len(args) == 2 else None
    cents = parse_euros(args[-1])
    client = settings().client()
    signed = parse_authorization(code_text(text, image, "authorization", AUTHORIZATION_SCHEME))
    chain_id = client.chain_id()
    if signed.chain_id != chain_id.upper():
        raise WalletError(Exit.USAGE, f"this authorization is for chain {signed.chain_id}")
    auth = signed.authorization
    if not auth.verify(chain_id, signed.signature):
        raise WalletError(
            Exit.REJECTED, "the holder's signature does not verify", "BAD_AUTHORIZATION"
        )
    if auth.expires_ms < time.time_ns() // 1_000_000:
        raise WalletError(Exit.REJECTED, "the authorization has expired", "AUTHORIZATION_EXPIRED")
    if cents > auth.max_cents:
        raise WalletError(
            Exit.REJECTED,
            f"the holder authorized at most {format_euros(auth.max_cents)}",
            "AUTHORIZATION_EXCEEDED",
        )
    signer = unlock(key_name)
    merchant = client.account(signer.public_key)
    name = str(merchant.profile.get("name", key_name))
    done = sign_submit(
        client,
        signer,
        key_name,
        t.PayAuthorized(auth, signed.signature, cents, memo),
        Summary(
            "complete a holder's authorization",
            f"{signer.public_key.hex()} ({name})",
            cents,
            (
                ("holder", auth.holder.hex()),
                ("campaign", auth.campaign),
                ("expires", format_time(auth.expires_ms)),
            ),
        ),
    )
    left = remaining_after(client, done, auth.holder, auth.campaign)
    data, lines = receipt("RECEIPT", name, cents, auth.campaign, auth.holder.hex(), done, left)
    emit(data, lines)


@merchant_group.command(
    "refund",
    epilog="""\b
HOLDER is the holder's public key, or the voucher code it paid with.
Examples:
  relance-wallet merchant refund --key shop 7be1...90 5,00 --campaign NAM-2026
  relance-wallet merchant refund --key shop RLV1:RELANCE-DEVNET-1:ABC...:WXYZ 5""",
)
@click.argument("holder")
@click.argument("amount")
@click.option("--campaign", help="Campaign of the purchase (default: the holder's only one).")
@click.option("--memo", default="", help="Why (e.g. returned goods).")
@key_option
@common_options
def merchant_refund(
    holder: str, amount: str, campaign: str | None, memo: str, key_name: str
) -> None:
    """Give back (part of) a purchase to the same holder and campaign."""
    cents = parse_euros(amount)
    client = settings().client()
    if is_voucher_uri(holder):
        holder_key = bytes(voucher_for(client, holder).signer.public_key)
    else:
        holder_key = parse_key(holder, "the holder")
    if campaign is None:
        campaign = pick_campaign(client.account(holder_key), None, "the holder")
    signer = unlock(key_name)
    done = sign_submit(
        client,
        signer,
        key_name,
        t.Refund(PublicKey(holder_key), campaign, cents, memo),
        Summary("refund a holder", holder_key.hex(), cents, (("campaign", campaign),)),
    )
    emit(
        {"tx_id": done.tx_id, "height": done.height, "amount_cents": cents, "campaign": campaign},
        [f"refunded {format_euros(cents)}", f"tx id  {done.tx_id}", f"block  {done.height}"],
    )


@merchant_group.command(
    "transfer",
    epilog="""\b
Examples:
  relance-wallet merchant transfer --key shop 5c0d...aa 40,00 --memo "farine"
  relance-wallet merchant transfer --key shop 5c0d...aa 40 --issuer 12ab...""",
)
@click.argument("supplier")
@click.argument("amount")
@click.option("--issuer", help="Whose units (default: the only issuer whose units you hold).")
@click.option("--memo", default="", help="A note (e.g. the invoice number).")
@key_option
@common_options
def merchant_transfer(
    supplier: str, amount: str, issuer: str | None, memo: str, key_name: str
) -> None:
    """Pay a supplier (another registered merchant) in local units."""
    supplier_key = parse_key(supplier, "the supplier")
    cents = parse_euros(amount)
    client = settings().client()
    _, account = _merchant(client, key_name)
    issuer_key = pick_issuer(account, issuer)
    signer = unlock(key_name)
    supplier_account = client.account(supplier_key)
    name = str(supplier_account.profile.get("name", "not a registered merchant"))
    done = sign_submit(
        client,
        signer,
        key_name,
        t.Transfer(PublicKey(supplier_key), PublicKey(issuer_key), cents, memo),
        Summary(
            "pay a supplier",
            f"{supplier_key.hex()} ({name})",
            cents,
            (("issuer", issuer_key.hex()),),
        ),
    )
    emit(
        {"tx_id": done.tx_id, "height": done.height, "amount_cents": cents},
        [f"paid {format_euros(cents)} to {name}", f"tx id  {done.tx_id}", f"block  {done.height}"],
    )


@merchant_group.command(
    "redeem",
    epilog="""\b
Examples:
  relance-wallet merchant redeem --key shop 120,00
  relance-wallet merchant redeem --key shop --all --json""",
)
@click.argument("amount", required=False)
@click.option("--all", "everything", is_flag=True, help="Redeem the whole balance.")
@click.option("--issuer", help="Whose units (default: the only issuer whose units you hold).")
@key_option
@common_options
def merchant_redeem(
    amount: str | None, everything: bool, issuer: str | None, key_name: str
) -> None:
    """Turn units into a payout in euros to your bank account (the payout id is the tx id)."""
    client = settings().client()
    _, account = _merchant(client, key_name)
    issuer_key = pick_issuer(account, issuer)
    if everything == (amount is not None):
        raise WalletError(Exit.USAGE, "give an AMOUNT or --all")
    cents = balance_of(account, issuer_key.hex()) if amount is None else parse_euros(amount)
    if cents <= 0:
        raise WalletError(Exit.REJECTED, "nothing to redeem", "INSUFFICIENT_FUNDS")
    signer = unlock(key_name)
    done = sign_submit(
        client,
        signer,
        key_name,
        t.Redeem(PublicKey(issuer_key), cents),
        Summary(
            "redeem into a payout", "your payout account", cents, (("issuer", issuer_key.hex()),)
        ),
    )
    emit(
        {
            "tx_id": done.tx_id,
            "payout_id": done.tx_id,
            "height": done.height,
            "amount_cents": cents,
        },
        [f"payout of {format_euros(cents)} opened", f"payout id  {done.tx_id}"],
    )


@merchant_group.command(
    "payouts",
    epilog="""\b
Examples:
  relance-wallet merchant payouts --key shop
  relance-wallet merchant payouts --key shop --json""",
)
@key_option
@common_options
def merchant_payouts(key_name: str) -> None:
    """Your payouts and whether the bank has settled them (a private read: the wallet
    signs a short-lived token)."""
    client = settings().client()
    signer = unlock(key_name)
    authenticate(client, signer)
    rows = client.pages(f"/v1/payouts?merchant={signer.public_key.hex()}")
    lines = []
    for row in rows:
        cents = row.get("amount_cents", 0)
        amount = format_euros(cents) if isinstance(cents, int) else "?"
        lines.append(f"{row.get('payout_id', '')}  {amount:>14}  {payout_state(row)}")
    pending = sum(_int(r.get("amount_cents")) for r in rows if payout_is_pending(r))
    returned = sum(_int(r.get("amount_cents")) for r in rows if r.get("returned_reason"))
    lines.append(f"{len(rows)} payout(s), {format_euros(pending)} not yet settled")
    if returned:
        lines.append(f"{format_euros(returned)} returned by the bank, back in your balance")
    emit({"payouts": rows, "pending_cents": pending, "returned_cents": returned}, lines)


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


@merchant_group.command(
    "auto-redeem",
    epilog="""\b
With auto-redeem on, every payment becomes a payout to your bank at once.
Examples:
  relance-wallet merchant auto-redeem --key shop off --payout-ref "BE71 0961 2345 6769"
  relance-wallet merchant auto-redeem --key shop on --payout-ref BE71096123456769""",
)
@click.argument("state", type=click.Choice(["on", "off"]))
@click.option(
    "--payout-ref",
    help="Your payout IBAN as registered (the ledger keeps only its hash; required unless "
    "the node shows the hash).",
)
@key_option
@common_options
def merchant_auto_redeem(state: str, payout_ref: str | None, key_name: str) -> None:
    """Switch auto-redeem on or off."""
    client = settings().client()
    merchant_key, account = _merchant(client, key_name)
    shown = account.profile.get("payout_ref_hash")
    if payout_ref is not None:
        ref_hash = payout_ref_hash(payout_ref)
    elif isinstance(shown, str):
        ref_hash = Digest(bytes.fromhex(shown))
    else:
        raise WalletError(Exit.USAGE, "give --payout-ref (your payout IBAN as registered)")
    payload = t.UpdateMerchant(
        PublicKey(merchant_key),
        str(account.profile.get("name", "")),
        str(account.profile.get("category", "")),
        str(account.profile.get("zone", "")),
        ref_hash,
        state == "on",
    )
    signer = unlock(key_name)
    done = sign_submit(client, signer, key_name, payload, Summary(f"switch auto-redeem {state}"))
    emit(
        {"tx_id": done.tx_id, "height": done.height, "auto_redeem": state == "on"},
        [f"auto-redeem is {state}", f"tx id  {done.tx_id}"],
    )
