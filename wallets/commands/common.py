"""Helpers shared by the role groups: codes from text or image, campaigns, receipts."""

from __future__ import annotations

from pathlib import Path

from wallets.client import Account, Json, NodeClient, Submitted
from wallets.exits import Exit, WalletError
from wallets.units import format_euros
from wallets.voucher import Voucher, parse_voucher, read_qr_image


def code_text(text: str | None, image: Path | None, what: str, scheme: str) -> str:
    """The code typed or pasted, or the one QR code of ``scheme`` found in an image file
    (a letter also carries a balance-link QR code, which is ignored)."""
    if text is not None and image is None:
        return text
    if image is None or text is not None:
        raise WalletError(Exit.USAGE, f"give the {what} as text or with --image, not both")
    codes = [c for c in read_qr_image(image) if c.upper().startswith(scheme + ":")]
    if len(codes) != 1:
        raise WalletError(Exit.USAGE, f"{image} holds {len(codes)} {what} QR codes; crop it to one")
    return codes[0]


def voucher_for(client: NodeClient, text: str) -> Voucher:
    voucher = parse_voucher(text)
    chain_id = client.chain_id()
    if not voucher.matches(chain_id):
        raise WalletError(
            Exit.USAGE, f"this voucher is for chain {voucher.chain_id}, the node runs {chain_id}"
        )
    return voucher


def pick_campaign(account: Account, given: str | None, what: str) -> str:
    """The campaign to spend from: the one given, or the only one with a balance."""
    if given is not None:
        return given
    codes = [b.key for b in account.balances if b.cents > 0]
    if len(codes) == 1:
        return codes[0]
    if not codes:
        raise WalletError(Exit.REJECTED, f"{what} has no balance", "INSUFFICIENT_FUNDS")
    raise WalletError(
        Exit.USAGE, f"{what} holds several campaigns ({', '.join(codes)}): --campaign"
    )


def pick_issuer(account: Account, given: str | None) -> bytes:
    """The issuer whose units to move: the one given, or the only one with a balance,
    or the merchant's registering issuer."""
    if given is not None:
        try:
            return bytes.fromhex(given)
        except ValueError:
            raise WalletError(Exit.USAGE, "--issuer is a public key in hex") from None
    keys = [b.key for b in account.balances if b.cents > 0]
    if len(keys) == 1:
        return bytes.fromhex(keys[0])
    if len(keys) > 1:
        raise WalletError(Exit.USAGE, "this merchant holds units of several issuers: --issuer")
    issuer = account.profile.get("issuer")
    if isinstance(issuer, str):
        return bytes.fromhex(issuer)
    raise WalletError(Exit.USAGE, "this key is not a merchant's")


def balance_of(account: Account, key: str) -> int:
    return sum(b.cents for b in account.balances if b.key == key)


def remaining_after(client: NodeClient, done: Submitted, payer: bytes, campaign: str) -> int | None:
    """What ``payer`` has left on ``campaign`` once ``done`` is in a block (None before)."""
    if done.height is None:
        return None
    return balance_of(client.account(payer), campaign)


def receipt(
    title: str,
    merchant: str,
    amount_cents: int,
    campaign: str,
    payer: str,
    done: Submitted,
    remaining_cents: int | None,
) -> tuple[dict[str, object], list[str]]:
    """A payment's receipt, with what the voucher (or holder) has left on the campaign."""
    data: dict[str, object] = {
        "tx_id": done.tx_id,
        "height": done.height,
        "merchant": merchant,
        "amount_cents": amount_cents,
        "campaign": campaign,
        "payer": payer,
        "remaining_cents": remaining_cents,
    }
    left = "once in a block" if remaining_cents is None else format_euros(remaining_cents)
    lines = [
        f"---- {title} ----",
        f"merchant   {merchant}",
        f"amount     {format_euros(amount_cents)}",
        f"campaign   {campaign}",
        f"payer      {payer}",
        f"left       {left}",
        f"block      {done.height}",
        f"tx id      {done.tx_id}",
        "-" * (len(title) + 10),
    ]
    return data, lines


def payout_is_pending(row: Json) -> bool:
    """Waiting for the bank: neither settled nor returned (a returned payout is closed)."""
    return not row.get("settled") and not row.get("returned_reason")


def payout_state(row: Json) -> str:
    reason = row.get("returned_reason")
    if reason:
        return f"returned by the bank ({reason}), units back in the balance"
    return str(row.get("bank_reference") or "") if row.get("settled") else "pending"
