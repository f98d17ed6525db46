"""``relance-wallet verify``: check a node's answer against the genesis file alone.

Each command asks the node for a value with its proof (``/v1/proofs/...``)
and checks it with ``node.client.lightclient``: the commit certificate against the
validator set in force at its height, then the proof against the certified
root. That set comes from the genesis file, through the validator changes
since (``/v1/validators``: each later set with the certified header that
handed over to it, checked against the set before). The anchor's
``validator_set_bytes`` sent by the node is never trusted. A node whose
answer does not verify is reported as lying, with the reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NoReturn

import click

from node.client.lightclient import (
    CertifiedHeader,
    Handover,
    ItemProof,
    NodeLied,
    PartialTx,
    ValidatorsAt,
    anchor_from_json,
    follow_validator_changes,
    handover_from_json,
    verify_campaign,
    verify_holder,
    verify_merchant,
    verify_payout,
    verify_transaction,
    verify_transaction_items,
)
from node.ledger import records as r
from node.ledger.tx import Allocation, Item
from node.protocol import limits, merkle
from node.protocol.codec import DecodeError
from node.protocol.genesis import Genesis, GenesisError, parse
from node.protocol.state_tree import StateProof, decode_proof
from wallets.client import Json
from wallets.context import authenticate, common_options, settings, unlock
from wallets.exits import Exit, WalletError
from wallets.units import format_euros

LIED = Exit.UNREACHABLE  # "answered something unexpected"; a lie is the worst of those


@click.group("verify", help="Check a node's answer with its proof, trusting only genesis.")
@common_options
def verify_group() -> None:
    pass


def _genesis_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--genesis",
        "genesis_path",
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="The chain's genesis file: the only thing trusted.",
    )(function)


@verify_group.command("balance", help="A holder's balances (or a merchant's), proven.")
@_genesis_option
@click.argument("public_key")
@common_options
def verify_balance(genesis_path: Path, public_key: str) -> None:
    """Example: relance-wallet verify balance --genesis genesis.toml 3f1c…"""
    genesis, key = _genesis(genesis_path), _hex(public_key, 32, "public key")
    answer = settings().client().get(f"/v1/proofs/accounts/{key.hex()}")
    value, proof, anchor = _state_answer(answer)
    validators_at = _validators_at(genesis)
    try:
        holder = verify_holder(genesis, anchor, key, value, proof, validators_at)
        balances = [{"campaign": c, "cents": n} for c, n in holder.balances]
    except NodeLied as lie:
        merchant_key = r.merchant_key(key).hex()
        if answer.get("key") != merchant_key:
            _lied(lie)
        try:
            merchant = verify_merchant(genesis, anchor, key, value, proof, validators_at)
        except NodeLied as lie2:
            _lied(lie2)
        holder_balances = [] if merchant is None else merchant.balances
        names = {i.public_key: i.name for i in genesis.issuers}
        balances = [
            {"issuer": i.hex(), "issuer_name": names.get(i), "cents": n} for i, n in holder_balances
        ]
    _say(anchor, {"verified": True, "public_key": key.hex(), "balances": balances})


@verify_group.command(
    "payout", help="A payout: amount, and whether the bank settled or returned it."
)
@_genesis_option
@click.argument("payout_id")
@common_options
def verify_payout_command(genesis_path: Path, payout_id: str) -> None:
    genesis, pid = _genesis(genesis_path), _hex(payout_id, 32, "payout id")
    value, proof, anchor = _state_answer(settings().client().get(f"/v1/proofs/payouts/{pid.hex()}"))
    try:
        payout = verify_payout(genesis, anchor, pid, value, proof, _validators_at(genesis))
    except NodeLied as lie:
        _lied(lie)
    found: Json = {"verified": True, "payout_id": pid.hex(), "exists": payout is not None}
    if payout is not None:
        found |= {
            "amount_cents": payout.amount_cents,
            "settled": payout.settled,
            "bank_reference": payout.bank_reference,
            "returned": payout.returned,
            "returned_reason": payout.returned_reason or None,
        }
    _say(anchor, found)


@verify_group.command("campaign", help="A campaign's rules and totals, proven.")
@_genesis_option
@click.argument("code")
@common_options
def verify_campaign_command(genesis_path: Path, code: str) -> None:
    genesis = _genesis(genesis_path)
    value, proof, anchor = _state_answer(settings().client().get(f"/v1/proofs/campaigns/{code}"))
    try:
        campaign = verify_campaign(genesis, anchor, code, value, proof, _validators_at(genesis))
    except NodeLied as lie:
        _lied(lie)
    found: Json = {"verified": True, "campaign": code, "exists": campaign is not None}
    if campaign is not None:
        found |= {"funded_cents": campaign.funded_cents, "spent_cents": campaign.spent_cents}
    _say(anchor, found)


@verify_group.command(
    "tx",
    help="A transaction's inclusion in a certified block. Of an allocate or settle that "
    "is not yours, the node shows only your items: each is checked under the signed body.",
)
@_genesis_option
@click.argument("tx_id")
@click.option("--tx-hex", help="The transaction's bytes, if the node does not show them to you.")
@click.option(
    "--key",
    "key_name",
    metavar="NAME",
    help="Ask as this keystore key: a party (or an auditor) sees its transactions, or its "
    "items of one (the wallet signs a short-lived token).",
)
@common_options
def verify_tx(genesis_path: Path, tx_id: str, tx_hex: str | None, key_name: str | None) -> None:
    """Example: relance-wallet verify tx --genesis genesis.toml --key alice 5e3c…"""
    genesis, tid = _genesis(genesis_path), _hex(tx_id, 32, "transaction id")
    client = settings().client()
    if key_name is not None:
        authenticate(client, unlock(key_name))
    answer = client.get(f"/v1/proofs/transactions/{tid.hex()}")
    try:
        data = bytes.fromhex(str(tx_hex or answer.get("tx") or ""))
        siblings = tuple(bytes.fromhex(s) for s in answer["siblings"])  # type: ignore[attr-defined]
        index, size = answer["index"], answer["size"]
        anchor = anchor_from_json(answer["anchor"])
        partial = None if data else _partial(answer)
    except (KeyError, TypeError, ValueError, DecodeError):
        _lied(NodeLied("the answer is not a well-formed inclusion proof"))
    if not isinstance(index, int) or not isinstance(size, int):
        _lied(NodeLied("the inclusion proof has no index or size"))
    proof = merkle.InclusionProof(index, size, siblings)
    if partial is not None:
        _verify_items(genesis, tid, anchor, proof, *partial)
        return
    if not data:
        raise WalletError(
            Exit.USAGE,
            "the node shows this transaction's bytes to its readers only: give --key NAME "
            "(a party's or an auditor's key) or --tx-hex",
        )
    try:
        signed = verify_transaction(genesis, anchor, data, proof, _validators_at(genesis))
    except NodeLied as lie:
        _lied(lie)
    if signed.tx_id != tid:
        _lied(NodeLied("the proven transaction is not the one asked for"))
    kind = signed.tx.payload.KIND.name.lower()
    _say(anchor, {"verified": True, "tx_id": tid.hex(), "index": index, "kind": kind})


def _partial(answer: Json) -> tuple[PartialTx, list[ItemProof]] | None:
    """A list transaction shown in part (``body`` and the reader's ``items``), if so."""
    if answer.get("body") is None:
        return None
    shown = PartialTx(
        bytes.fromhex(str(answer["body"])),
        bytes.fromhex(str(answer["signature"])),
        bytes.fromhex(str(answer["items_digest"])),
    )
    count, items = answer["item_count"], answer["items"]
    if not isinstance(count, int) or not isinstance(items, list):
        raise TypeError("no item count or items")
    if len(items) > limits.ALLOCATIONS_PER_TX_MAX:
        raise ValueError("more items than a transaction holds")
    out = []
    for item in items:
        path = tuple(bytes.fromhex(s) for s in item["siblings"])
        at = merkle.InclusionProof(int(item["index"]), count, path)
        out.append(ItemProof(bytes.fromhex(str(item["item"])), at))
    return shown, out


def _verify_items(
    genesis: Genesis,
    tid: bytes,
    anchor: CertifiedHeader,
    proof: merkle.InclusionProof,
    shown: PartialTx,
    items: list[ItemProof],
) -> None:
    try:
        committed, found = verify_transaction_items(
            genesis, anchor, shown, proof, items, _validators_at(genesis)
        )
    except NodeLied as lie:
        _lied(lie)
    if committed.tx_id != tid:
        _lied(NodeLied("the proven transaction is not the one asked for"))
    listed: list[Json] = [{"index": n, **_item_fields(item)} for n, item in found]
    _say(
        anchor,
        {
            "verified": True,
            "tx_id": tid.hex(),
            "index": proof.index,
            "kind": committed.kind.name.lower(),
            "item_count": committed.item_count,
            "items": listed,
        },
    )


def _item_fields(item: Item) -> Json:
    if isinstance(item, Allocation):
        return {"holder": item.holder.hex(), "amount_cents": item.amount_cents, "zone": item.zone}
    return {"payout_id": item.payout_id.hex(), "bank_reference": item.bank_reference}


# --- plumbing ----------------------------------------------------------------------


def _genesis(path: Path) -> Genesis:
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (GenesisError, OSError) as exc:
        raise WalletError(Exit.USAGE, f"genesis: {exc}") from None


def _hex(text: str, length: int, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != length:
        raise WalletError(Exit.USAGE, f"a {what} is {length} bytes of hex")
    return raw


def _validators_at(genesis: Genesis) -> ValidatorsAt:
    """The validator set of every height, from genesis through the node's handovers."""
    client = settings().client()
    handovers: list[Handover] = []
    cursor: str | None = None
    for _ in range(limits.LIGHT_CLIENT_ERA_PAGES_MAX):
        page = client.get("/v1/validators" + (f"?cursor={cursor}" if cursor else ""))
        try:
            items, following = page["items"], page.get("next_cursor")
            if not isinstance(items, list) or not (following is None or isinstance(following, str)):
                raise TypeError("not a page")
            handovers += [handover_from_json(item) for item in items if item["first_height"] != 1]
            cursor = following
        except (KeyError, TypeError, ValueError, DecodeError):
            _lied(NodeLied("the list of validator sets is not well formed"))
        if cursor is None:
            break
    else:
        _lied(NodeLied(f"more than {limits.LIGHT_CLIENT_ERA_PAGES_MAX} pages of validator sets"))
    try:
        return follow_validator_changes(genesis, handovers)
    except NodeLied as lie:
        _lied(lie)


def _state_answer(answer: Json) -> tuple[bytes | None, StateProof, CertifiedHeader]:
    try:
        raw = answer.get("value")
        value = None if raw is None else bytes.fromhex(str(raw))
        proof = decode_proof(bytes.fromhex(str(answer["proof"])))
        return value, proof, anchor_from_json(answer["anchor"])
    except (KeyError, TypeError, ValueError, DecodeError):
        _lied(NodeLied("the answer is not a well-formed state proof"))


def _lied(lie: NodeLied) -> NoReturn:
    raise WalletError(LIED, f"THE NODE LIED: {lie.reason}", "NODE_LIED")


def _say(anchor: CertifiedHeader, found: Json) -> None:
    found = {**found, "height": anchor.header.height, "block_hash": anchor.header.hash().hex()}
    if settings().json:
        click.echo(json.dumps(found))
        return
    click.echo(
        f"VERIFIED against the validators in force at height {anchor.header.height}, "
        "from the genesis file"
    )
    for name, value in found.items():
        if name != "verified":
            click.echo("\n".join(_human(name, value)))


def _human(name: str, value: object) -> list[str]:
    """One field for people: amounts in euros, each balance on its own line (no repr)."""
    if isinstance(value, int) and not isinstance(value, bool) and name.endswith("_cents"):
        return [f"  {name.removesuffix('_cents')}: {format_euros(value)}"]
    if value is None or isinstance(value, (str, int, bool)):
        shown = (
            "—"
            if value is None
            else ("yes" if value is True else "no" if value is False else value)
        )
        return [f"  {name}: {shown}"]
    if name == "balances" and isinstance(value, list):
        rows = [f"  {name}:"] if value else [f"  {name}: none"]
        for row in value:
            if isinstance(row, dict):
                label = row.get("campaign") or row.get("issuer_name") or row.get("issuer")
                cents = row.get("cents")
                amount = format_euros(cents) if isinstance(cents, int) else "?"
                rows.append(f"    {label}  {amount}")
        return rows
    return [f"  {name}: {json.dumps(value, ensure_ascii=False)}"]
