"""The voucher ledger against a small model written from DESIGN.md.

The model is plain dicts (budgets, balances per (holder, campaign) and per
(merchant, issuer), payouts, escrow, what each holder paid each merchant,
used references and authorizations, sequences). For every transaction it
computes the set of result codes the transaction violates: an empty set
means it must apply, otherwise the ledger must reject it with one of them
(the model does not fix the order of the checks, so where only one rule is
broken the code is exact). Blocks are all-or-nothing: the model steps a copy
and keeps it only when every transaction of the block applies. After every
block the decoded ledger state must equal the model, and the whole-state
invariants must hold.

Where DESIGN.md is silent the model takes the policy written at the top of
``node/ledger/rules.py`` (a suspended merchant may still refund, transfer and
redeem; a refund is not bound by the per-holder maximum) and the natural
reading elsewhere: a campaign is open on ``[valid_from, valid_until)``,
allocation is allowed until ``valid_until``, sweeps and refunds need the
campaign not closed (not necessarily open), one reference space serves fund
and withdraw.
"""

from __future__ import annotations

import copy
from collections import Counter as Tally
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BANK_KINDS, HOLDER_KINDS, MERCHANT_KINDS
from node.protocol import limits
from node.protocol.crypto import Digest, Domain, PublicKey, Signer, digest
from tests.ledger.invariants import (
    DecodedState,
    check_invariants,
    check_sequences_monotonic,
    decode_state,
)
from tests.ledger.world import CHAIN_ID, DAY_MS, World, signer

HOUR_MS = 3_600_000
AMOUNT_MAX = limits.AMOUNT_MAX_CENTS
R = Result

# --- fixed keys: a small pool so failures shrink to a few names ------------------

NAMES = (
    "bank",
    "namur",
    "liege",
    "auditor",
    *(f"h{i}" for i in range(5)),
    *(f"m{i}" for i in range(5)),
)
KEYS: dict[str, Signer] = {name: signer(name) for name in NAMES}
PK: dict[str, PublicKey] = {name: key.public_key for name, key in KEYS.items()}
NAME_OF: dict[bytes, str] = {pk: name for name, pk in PK.items()}
TERRITORY: dict[str, tuple[str, ...]] = {"namur": ("NA-1", "NA-2"), "liege": ("LG-1",)}
FOREIGN_ZONE: dict[str, str] = {"namur": "LG-1", "liege": "NA-1"}
UNKNOWN_PAYOUT = Digest(digest(b"no such payout"))


def name_of(pk: bytes) -> str:
    return NAME_OF.get(pk, pk.hex()[:8])


def zone_for(issuer: str, pick: int) -> str:
    """``pick`` 0..2: one of ``issuer``'s own zones; 3: a zone outside its territory."""
    own = TERRITORY.get(issuer, ("NA-1",))
    if pick >= 3:
        return FOREIGN_ZONE.get(issuer, "XX-9")
    return own[pick % len(own)]


def is_amount(cents: int) -> bool:
    return 0 < cents <= AMOUNT_MAX


# --- the model -------------------------------------------------------------------


@dataclass
class MCampaign:
    issuer: bytes
    zones: tuple[str, ...]
    categories: tuple[str, ...]
    valid_from_ms: int
    valid_until_ms: int
    cap: int
    closed: bool = False
    budget: int = 0
    funded: int = 0
    allocated: int = 0
    spent: int = 0
    refunded: int = 0
    returned: int = 0
    withdrawn: int = 0


@dataclass
class MMerchant:
    issuer: bytes
    name: str
    category: str
    zone: str
    auto_redeem: bool
    active: bool = True


@dataclass
class MPayout:
    merchant: bytes
    issuer: bytes
    amount: int
    settled: bool = False
    returned: bool = False  # the bank's transfer was rejected: the units went back


@dataclass
class Op:
    """One transaction to put in a block, and what the model needs to know about it."""

    name: str
    key: Signer
    payload: t.Payload
    sender: bytes = b""  # when set, signed by ``key`` for another sender (bad signature)
    chain_id: str = CHAIN_ID
    sequence_offset: int = 0
    auth_signature_ok: bool = True
    replay: bytes = b""  # wire bytes of an already applied transaction
    replay_sequence: int = 0

    @property
    def sender_pk(self) -> bytes:
        return self.sender or self.key.public_key

    def wire(self, sequence: int) -> tuple[bytes, Digest]:
        if self.replay:
            decoded = t.decode_tx(self.replay, CHAIN_ID)
            assert isinstance(decoded, t.SignedTx)
            return self.replay, decoded.tx_id
        tx = t.Tx(self.chain_id, PublicKey(self.sender_pk), sequence, self.payload)
        body = tx.body()
        signature = self.key.sign(Domain.TX, self.chain_id, body)
        return t.SignedTx(tx, body, signature, digest(body)).encode(), digest(body)

    def forged(self) -> Result | None:
        if self.chain_id != CHAIN_ID:
            return R.WRONG_CHAIN
        if self.sender and self.sender != self.key.public_key:
            return R.BAD_SIGNATURE
        return None


Fails = set[Result]


@dataclass
class Model:
    """DESIGN.md's ledger as dicts. Each ``_kind`` method returns the codes
    violated; when there are none it applies the effect."""

    bank: bytes
    issuers: dict[bytes, tuple[str, ...]]
    auditors: set[bytes]
    escrow: dict[bytes, int]
    redeemed: dict[bytes, int]
    settled: dict[bytes, int]
    campaigns: dict[str, MCampaign] = field(default_factory=dict)
    merchants: dict[bytes, MMerchant] = field(default_factory=dict)
    units: dict[tuple[bytes, bytes], int] = field(default_factory=dict)  # (merchant, issuer)
    holders: set[bytes] = field(default_factory=set)  # keys with a holder record
    balance: dict[tuple[bytes, str], int] = field(default_factory=dict)  # (holder, campaign)
    paid: dict[tuple[bytes, bytes, str], int] = field(default_factory=dict)
    payouts: dict[bytes, MPayout] = field(default_factory=dict)
    payout_order: list[bytes] = field(default_factory=list)
    references: dict[str, int] = field(default_factory=dict)
    used_authorizations: set[bytes] = field(default_factory=set)
    seq: dict[bytes, int] = field(default_factory=dict)
    # (region, commune) -> the commune's zones where the region's campaigns may be spent
    consents: dict[tuple[bytes, bytes], tuple[str, ...]] = field(default_factory=dict)

    @staticmethod
    def genesis() -> Model:
        issuers = {PK["namur"]: TERRITORY["namur"], PK["liege"]: TERRITORY["liege"]}
        return Model(
            bank=PK["bank"],
            issuers=issuers,
            auditors={PK["auditor"]},
            escrow=dict.fromkeys(issuers, 0),
            redeemed=dict.fromkeys(issuers, 0),
            settled=dict.fromkeys(issuers, 0),
        )

    # --- small helpers ------------------------------------------------------------

    def has_role(self, pk: bytes) -> bool:
        return pk == self.bank or pk in self.issuers or pk in self.merchants or pk in self.auditors

    def zone_owner(self, zone: str) -> bytes | None:
        return next((pk for pk, zones in self.issuers.items() if zone in zones), None)

    def consented(self, region: bytes, commune: bytes, zone: str) -> bool:
        return zone in self.consents.get((region, commune), ())

    def bal(self, holder: bytes, code: str) -> int:
        return self.balance.get((holder, code), 0)

    def _add(self, table: dict[Any, int], key: object, cents: int) -> None:
        value = table.get(key, 0) + cents
        assert value >= 0, "model bug: negative"
        if value:
            table[key] = value
        else:
            table.pop(key, None)

    def pending(self, issuer: bytes) -> int:
        return sum(
            p.amount
            for p in self.payouts.values()
            if p.issuer == issuer and not p.settled and not p.returned
        )

    def _open_payout(self, payout_id: bytes, merchant: bytes, issuer: bytes, cents: int) -> None:
        assert payout_id not in self.payouts, "model bug: payout id reused"
        self.payouts[payout_id] = MPayout(merchant, issuer, cents)
        self.payout_order.append(payout_id)
        self.redeemed[issuer] += cents

    # --- one transaction ------------------------------------------------------------

    def sender_role_ok(self, kind: t.Kind, pk: bytes) -> bool:
        """DESIGN.md's signer column (a merchant may also update its own record)."""
        if kind in HOLDER_KINDS:
            return not self.has_role(pk)
        if kind in BANK_KINDS:
            return pk == self.bank
        if kind in MERCHANT_KINDS:
            return pk in self.merchants
        return pk in self.issuers or (kind == t.Kind.UPDATE_MERCHANT and pk in self.merchants)

    def step(self, op: Op, sequence: int, tx_id: bytes, now: int) -> Fails:
        forged = op.forged()
        if forged is not None:
            return {forged}
        sender = op.sender_pk
        kind = op.payload.KIND
        if not self.sender_role_ok(kind, sender):
            return {R.NOT_AUTHORIZED}
        if sequence != self.seq.get(sender, 0):
            return {R.BAD_SEQUENCE}
        method: Callable[[bytes, Any, bytes, int, Op], Fails] = getattr(
            self, "_" + kind.name.lower()
        )
        fails = method(sender, op.payload, tx_id, now, op)
        if not fails:
            self.seq[sender] = self.seq.get(sender, 0) + 1
        return fails

    # merchants

    def _register_merchant(
        self, sender: bytes, p: t.RegisterMerchant, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        fails: Fails = set()
        if self.has_role(p.merchant) or p.merchant in self.holders:
            fails.add(R.ACCOUNT_EXISTS)
        if p.zone not in self.issuers[sender]:
            fails.add(R.INVALID_ZONE)
        if not fails:
            self.merchants[p.merchant] = MMerchant(
                sender, p.name, p.category, p.zone, p.auto_redeem
            )
        return fails

    def _update_merchant(
        self, sender: bytes, p: t.UpdateMerchant, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        m = self.merchants.get(p.merchant)
        if m is None:
            return {R.UNKNOWN_MERCHANT}
        fails: Fails = set()
        if sender not in (m.issuer, p.merchant):
            fails.add(R.NOT_AUTHORIZED)
        profile = (p.name, p.category, p.zone) != (m.name, m.category, m.zone)
        if sender == p.merchant and profile:
            fails.add(R.NOT_AUTHORIZED)
        if p.zone not in self.issuers[m.issuer]:
            fails.add(R.INVALID_ZONE)
        if not fails:
            m.name, m.category, m.zone, m.auto_redeem = p.name, p.category, p.zone, p.auto_redeem
        return fails

    def _suspend_merchant(
        self, sender: bytes, p: t.SuspendMerchant, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        m = self.merchants.get(p.merchant)
        if m is None:
            return {R.UNKNOWN_MERCHANT}
        if sender != m.issuer:
            return {R.NOT_AUTHORIZED}
        m.active = not p.suspended
        return set()

    # campaigns and the bank

    def _create_campaign(
        self, sender: bytes, p: t.CreateCampaign, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        fails: Fails = set()
        if p.campaign in self.campaigns:
            fails.add(R.CAMPAIGN_EXISTS)
        if len(set(p.zones)) != len(p.zones) or len(set(p.categories)) != len(p.categories):
            fails.add(R.DUPLICATE_ENTRY)
        for z in p.zones:
            owner = self.zone_owner(z)
            if owner is None:
                fails.add(R.INVALID_ZONE)
            elif owner != sender and not self.consented(sender, owner, z):
                fails.add(R.ZONE_NOT_CONSENTED)
        if p.valid_from_ms >= p.valid_until_ms:
            fails.add(R.INVALID_FIELD)
        if not is_amount(p.max_per_holder_cents):
            fails.add(R.BAD_AMOUNT)
        if not fails:
            self.campaigns[p.campaign] = MCampaign(
                issuer=sender,
                zones=tuple(sorted(p.zones)) if p.zones else self.issuers[sender],
                categories=tuple(sorted(p.categories)),
                valid_from_ms=p.valid_from_ms,
                valid_until_ms=p.valid_until_ms,
                cap=p.max_per_holder_cents,
            )
        return fails

    def _fund(self, sender: bytes, p: t.Fund, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not is_amount(p.amount_cents):
            fails.add(R.BAD_AMOUNT)
        if p.bank_reference in self.references:
            fails.add(R.DUPLICATE_REFERENCE)
        c = self.campaigns.get(p.campaign)
        if c is None:
            return fails | {R.UNKNOWN_CAMPAIGN}
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        if not fails:
            self.references[p.bank_reference] = p.amount_cents
            c.budget += p.amount_cents
            c.funded += p.amount_cents
            self.escrow[c.issuer] += p.amount_cents
        return fails

    def _withdraw(self, sender: bytes, p: t.Withdraw, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not is_amount(p.amount_cents):
            fails.add(R.BAD_AMOUNT)
        if p.bank_reference in self.references:
            fails.add(R.DUPLICATE_REFERENCE)
        c = self.campaigns.get(p.campaign)
        if c is None:
            return fails | {R.UNKNOWN_CAMPAIGN}
        if p.amount_cents > c.budget:
            fails.add(R.INSUFFICIENT_BUDGET)
        if not fails:
            self.references[p.bank_reference] = p.amount_cents
            c.budget -= p.amount_cents
            c.withdrawn += p.amount_cents
            self.escrow[c.issuer] -= p.amount_cents
        return fails

    def _allocate(self, sender: bytes, p: t.Allocate, tx_id: bytes, now: int, op: Op) -> Fails:
        c = self.campaigns.get(p.campaign)
        if c is None:
            return {R.UNKNOWN_CAMPAIGN}
        fails: Fails = set()
        if c.issuer != sender:
            fails.add(R.NOT_AUTHORIZED)
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        if now >= c.valid_until_ms:
            fails.add(R.CAMPAIGN_NOT_ACTIVE)
        if not p.allocations:
            fails.add(R.INVALID_FIELD)
        if any(not is_amount(a.amount_cents) for a in p.allocations):
            fails.add(R.BAD_AMOUNT)
        if len({a.holder for a in p.allocations}) != len(p.allocations):
            fails.add(R.DUPLICATE_ENTRY)
        if any(a.zone not in self.issuers[sender] and a.zone not in c.zones for a in p.allocations):
            fails.add(R.INVALID_ZONE)
        total = sum(a.amount_cents for a in p.allocations)
        if total > c.budget:
            fails.add(R.INSUFFICIENT_BUDGET)
        for a in p.allocations:
            if self.has_role(a.holder):
                fails.add(R.NOT_A_HOLDER)
            if self.bal(a.holder, p.campaign) + a.amount_cents > c.cap:
                fails.add(R.HOLDER_CAP_EXCEEDED)
        if not fails:
            for a in p.allocations:
                self._add(self.balance, (a.holder, p.campaign), a.amount_cents)
                self.holders.add(a.holder)
            c.budget -= total
            c.allocated += total
        return fails

    def _close_campaign(
        self, sender: bytes, p: t.CloseCampaign, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        c = self.campaigns.get(p.campaign)
        if c is None:
            return {R.UNKNOWN_CAMPAIGN}
        fails: Fails = set()
        if c.issuer != sender:
            fails.add(R.NOT_AUTHORIZED)
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        if now < c.valid_until_ms:
            fails.add(R.CAMPAIGN_STILL_RUNNING)
        if not fails:
            returned = 0
            for key in [k for k in self.balance if k[1] == p.campaign]:
                returned += self.balance.pop(key)
            c.budget += returned
            c.returned += returned
            c.closed = True
        return fails

    def _settle(self, sender: bytes, p: t.Settle, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not p.settlements:
            fails.add(R.INVALID_FIELD)
        if len({s.payout_id for s in p.settlements}) != len(p.settlements):
            fails.add(R.DUPLICATE_ENTRY)
        for s in p.settlements:
            if not s.bank_reference.strip():
                fails.add(R.INVALID_FIELD)
            payout = self.payouts.get(s.payout_id)
            if payout is None:
                fails.add(R.UNKNOWN_PAYOUT)
            elif payout.settled:
                fails.add(R.PAYOUT_ALREADY_SETTLED)
            elif payout.returned:
                fails.add(R.PAYOUT_RETURNED)
        if not fails:
            for s in p.settlements:
                payout = self.payouts[s.payout_id]
                payout.settled = True
                self.escrow[payout.issuer] -= payout.amount
                self.settled[payout.issuer] += payout.amount
        return fails

    # holders

    def _spend_fails(
        self, payer: bytes, code: str, merchant_pk: bytes, cents: int, now: int
    ) -> Fails:
        fails: Fails = set()
        if not is_amount(cents):
            fails.add(R.BAD_AMOUNT)
        if self.has_role(payer):
            fails.add(R.NOT_AUTHORIZED)
        elif cents > self.bal(payer, code):
            fails.add(R.INSUFFICIENT_FUNDS)
        c = self.campaigns.get(code)
        if c is None:
            return fails | {R.UNKNOWN_CAMPAIGN}
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        if not c.valid_from_ms <= now < c.valid_until_ms:
            fails.add(R.CAMPAIGN_NOT_ACTIVE)
        m = self.merchants.get(merchant_pk)
        if m is None:
            return fails | {R.UNKNOWN_MERCHANT}
        if not m.active:
            fails.add(R.MERCHANT_SUSPENDED)
        in_category = not c.categories or any(m.category.startswith(x) for x in c.categories)
        if m.zone not in c.zones or not in_category:
            fails.add(R.MERCHANT_NOT_ELIGIBLE)
        elif m.issuer != c.issuer and not self.consented(c.issuer, m.issuer, m.zone):
            fails.add(R.ZONE_NOT_CONSENTED)
        return fails

    def _spend(self, payer: bytes, code: str, merchant_pk: bytes, cents: int, tx_id: bytes) -> None:
        c = self.campaigns[code]
        m = self.merchants[merchant_pk]
        if m.issuer != c.issuer:
            event("regional payment at another issuer's shop")
        self._add(self.balance, (payer, code), -cents)
        self._add(self.paid, (payer, merchant_pk, code), cents)
        c.spent += cents
        if m.auto_redeem:
            self._open_payout(tx_id, merchant_pk, c.issuer, cents)
        else:
            self._add(self.units, (merchant_pk, c.issuer), cents)

    def _pay(self, sender: bytes, p: t.Pay, tx_id: bytes, now: int, op: Op) -> Fails:
        fails = self._spend_fails(sender, p.campaign, p.merchant, p.amount_cents, now)
        if not fails:
            self._spend(sender, p.campaign, p.merchant, p.amount_cents, tx_id)
        return fails

    def _pay_authorized(
        self, sender: bytes, p: t.PayAuthorized, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        a = p.authorization
        fails: Fails = set()
        if a.merchant and a.merchant != sender:
            fails.add(R.BAD_AUTHORIZATION)
        if now > a.expires_ms:
            fails.add(R.AUTHORIZATION_EXPIRED)
        if p.amount_cents > a.max_cents:
            fails.add(R.AUTHORIZATION_EXCEEDED)
        if a.authorization_id in self.used_authorizations:
            fails.add(R.AUTHORIZATION_USED)
        if not op.auth_signature_ok:
            fails.add(R.BAD_AUTHORIZATION)
        fails |= self._spend_fails(a.holder, a.campaign, sender, p.amount_cents, now)
        if not fails:
            self._spend(a.holder, a.campaign, sender, p.amount_cents, tx_id)
            self.used_authorizations.add(a.authorization_id)
        return fails

    def _move_fails(self, code: str, source: bytes, target: bytes) -> Fails:
        fails: Fails = set()
        if source == target:
            fails.add(R.SELF_TRANSFER)
        if self.has_role(target):
            fails.add(R.NOT_A_HOLDER)
        c = self.campaigns.get(code)
        if c is None:
            return fails | {R.UNKNOWN_CAMPAIGN}
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        cents = self.bal(source, code)
        if cents == 0:
            fails.add(R.NOTHING_TO_MOVE)
        elif self.bal(target, code) + cents > c.cap:
            fails.add(R.HOLDER_CAP_EXCEEDED)
        return fails

    def _move(self, code: str, source: bytes, target: bytes) -> None:
        cents = self.balance.pop((source, code))
        self._add(self.balance, (target, code), cents)
        self.holders.add(target)

    def _sweep(self, sender: bytes, p: t.Sweep, tx_id: bytes, now: int, op: Op) -> Fails:
        fails = self._move_fails(p.campaign, sender, p.to)
        if not fails:
            self._move(p.campaign, sender, p.to)
        return fails

    def _reissue(self, sender: bytes, p: t.Reissue, tx_id: bytes, now: int, op: Op) -> Fails:
        c = self.campaigns.get(p.campaign)
        if c is None:
            return {R.UNKNOWN_CAMPAIGN}
        fails = self._move_fails(p.campaign, p.lost, p.replacement)
        if c.issuer != sender:
            fails.add(R.NOT_AUTHORIZED)
        if not fails:
            self._move(p.campaign, p.lost, p.replacement)
        return fails

    # merchants' money

    def _refund(self, sender: bytes, p: t.Refund, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not is_amount(p.amount_cents):
            fails.add(R.BAD_AMOUNT)
        c = self.campaigns.get(p.campaign)
        if c is None:
            return fails | {R.UNKNOWN_CAMPAIGN}
        if c.closed:
            fails.add(R.CAMPAIGN_CLOSED)
        if p.amount_cents > self.paid.get((p.holder, sender, p.campaign), 0):
            fails.add(R.REFUND_EXCEEDS_PAYMENTS)
        if p.amount_cents > self.units.get((sender, c.issuer), 0):
            fails.add(R.INSUFFICIENT_FUNDS)
        if not fails:
            self._add(self.units, (sender, c.issuer), -p.amount_cents)
            self._add(self.paid, (p.holder, sender, p.campaign), -p.amount_cents)
            self._add(self.balance, (p.holder, p.campaign), p.amount_cents)
            self.holders.add(p.holder)
            c.refunded += p.amount_cents
        return fails

    def _transfer(self, sender: bytes, p: t.Transfer, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not is_amount(p.amount_cents):
            fails.add(R.BAD_AMOUNT)
        if p.to == sender:
            fails.add(R.SELF_TRANSFER)
        supplier = self.merchants.get(p.to)
        if supplier is None:
            fails.add(R.UNKNOWN_MERCHANT)
        elif not supplier.active:
            fails.add(R.MERCHANT_SUSPENDED)
        if p.amount_cents > self.units.get((sender, p.issuer), 0):
            fails.add(R.INSUFFICIENT_FUNDS)
        if not fails:
            self._add(self.units, (sender, p.issuer), -p.amount_cents)
            self._add(self.units, (p.to, p.issuer), p.amount_cents)
        return fails

    def _redeem(self, sender: bytes, p: t.Redeem, tx_id: bytes, now: int, op: Op) -> Fails:
        fails: Fails = set()
        if not is_amount(p.amount_cents):
            fails.add(R.BAD_AMOUNT)
        if p.amount_cents > self.units.get((sender, p.issuer), 0):
            fails.add(R.INSUFFICIENT_FUNDS)
        if not fails:
            self._add(self.units, (sender, p.issuer), -p.amount_cents)
            self._open_payout(tx_id, sender, p.issuer, p.amount_cents)
        return fails

    def _consent_zones(
        self, sender: bytes, p: t.ConsentZones, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        fails: Fails = set()
        if p.region == sender:
            fails.add(R.SELF_TRANSFER)
        elif p.region not in self.issuers:
            fails.add(R.UNKNOWN_ISSUER)
        if len(set(p.zones)) != len(p.zones):
            fails.add(R.DUPLICATE_ENTRY)
        if any(z not in self.issuers[sender] for z in p.zones):
            fails.add(R.INVALID_ZONE)
        if not fails:
            if p.zones:
                self.consents[(p.region, sender)] = tuple(sorted(p.zones))
            else:
                self.consents.pop((p.region, sender), None)
        return fails

    def _return_payout(
        self, sender: bytes, p: t.ReturnPayout, tx_id: bytes, now: int, op: Op
    ) -> Fails:
        fails: Fails = set()
        if not p.reason.strip() or " " in p.reason:
            fails.add(R.INVALID_FIELD)
        if not p.bank_reference.strip():
            fails.add(R.INVALID_FIELD)
        payout = self.payouts.get(p.payout_id)
        if payout is None:
            fails.add(R.UNKNOWN_PAYOUT)
        elif payout.settled:
            fails.add(R.PAYOUT_ALREADY_SETTLED)
        elif payout.returned:
            fails.add(R.PAYOUT_RETURNED)
        if not fails and payout is not None:
            payout.returned = True
            self._add(self.units, (payout.merchant, payout.issuer), payout.amount)
            self.redeemed[payout.issuer] -= payout.amount
        return fails

    # --- the model as comparable plain data ---------------------------------------------

    def view(self) -> dict[str, Any]:
        merchants = {}
        for pk, m in self.merchants.items():
            units = {name_of(i): c for (mk, i), c in self.units.items() if mk == pk}
            merchants[name_of(pk)] = (
                name_of(m.issuer),
                m.name,
                m.category,
                m.zone,
                m.auto_redeem,
                m.active,
                self.seq.get(pk, 0),
                units,
            )
        holders = {}
        for pk in self.holders:
            rows = {code: c for (h, code), c in self.balance.items() if h == pk}
            holders[name_of(pk)] = (self.seq.get(pk, 0), rows)
        assert all(h in self.holders for h, _ in self.balance), "model bug: balance w/o holder"
        return {
            "bank": self.seq.get(self.bank, 0),
            "issuers": {
                name_of(pk): (
                    self.escrow[pk],
                    self.pending(pk),
                    self.redeemed[pk],
                    self.settled[pk],
                    self.seq.get(pk, 0),
                )
                for pk in self.issuers
            },
            "campaigns": {
                code: (
                    name_of(c.issuer),
                    c.zones,
                    c.categories,
                    c.valid_from_ms,
                    c.valid_until_ms,
                    c.cap,
                    c.closed,
                    c.budget,
                    sum(v for (_, k), v in self.balance.items() if k == code),
                    c.funded,
                    c.allocated,
                    c.spent,
                    c.refunded,
                    c.returned,
                    c.withdrawn,
                )
                for code, c in self.campaigns.items()
            },
            "merchants": merchants,
            "holders": holders,
            "paid": {(name_of(h), name_of(m), c): v for (h, m, c), v in self.paid.items()},
            "payouts": {
                pid.hex()[:12]: (
                    name_of(p.merchant),
                    name_of(p.issuer),
                    p.amount,
                    p.settled,
                    p.returned,
                )
                for pid, p in self.payouts.items()
            },
            "references": dict(self.references),
            "authorizations": set(self.used_authorizations),
            "consents": {(name_of(g), name_of(c)): z for (g, c), z in self.consents.items()},
        }


def ledger_view(s: DecodedState) -> dict[str, Any]:
    """The decoded ledger state in the shape of ``Model.view``."""
    return {
        "bank": next(iter(s.banks.values())).sequence,
        "issuers": {
            name_of(pk): (
                i.escrow_cents,
                i.pending_cents,
                i.redeemed_cents,
                i.settled_cents,
                i.sequence,
            )
            for pk, i in s.issuers.items()
        },
        "campaigns": {
            code: (
                name_of(c.issuer),
                c.zones,
                c.categories,
                c.valid_from_ms,
                c.valid_until_ms,
                c.max_per_holder_cents,
                c.closed,
                c.budget_cents,
                c.outstanding_cents,
                c.funded_cents,
                c.allocated_cents,
                c.spent_cents,
                c.refunded_cents,
                c.returned_cents,
                c.withdrawn_cents,
            )
            for code, c in s.campaigns.items()
        },
        "merchants": {
            name_of(pk): (
                name_of(m.issuer),
                m.name,
                m.category,
                m.zone,
                m.auto_redeem,
                m.active,
                m.sequence,
                {name_of(i): c for i, c in m.balances},
            )
            for pk, m in s.merchants.items()
        },
        "holders": {name_of(pk): (h.sequence, dict(h.balances)) for pk, h in s.holders.items()},
        "paid": {(name_of(h), name_of(m), c): v for (h, m, c), v in s.spent.items()},
        "payouts": {
            pid.hex()[:12]: (
                name_of(p.merchant),
                name_of(p.issuer),
                p.amount_cents,
                p.settled,
                p.returned,
            )
            for pid, p in s.payouts.items()
        },
        "references": dict(s.references),
        "authorizations": set(s.authorizations),
        "consents": {(name_of(g), name_of(c)): z for (g, c), z in s.consents.items()},
    }


# --- strategies ----------------------------------------------------------------------
#
# Arguments are drawn blind, then the builders resolve them against the model:
# a ``pick`` below SMART takes one of the state's relevant candidates (a holder
# with a balance, a merchant with units, an existing campaign with its issuer as
# sender...) when there is one; otherwise the raw names drawn are used, which
# produces the wrong-sender, unknown-entity and empty-balance cases. Amounts are
# drawn as a percentage of the relevant limit (balance, budget, paid...), so most
# are valid and some overspend by a little.

SMART = 7


def choose(pick: int, candidates: list[Any], fallback: Any) -> Any:
    if pick < SMART and candidates:
        return candidates[pick % len(candidates)]
    return fallback


def scaled(limit: int, pct: int) -> int:
    """``pct`` 1..100: that share of ``limit`` (at least 1); above 100: a little more
    than ``limit``; -1 and 0 as such; -2: above the protocol's amount cap."""
    if pct == -2:
        return AMOUNT_MAX + 1
    if pct <= 0:
        return pct
    if pct <= 100:
        return max(1, limit * pct // 100)
    return limit + pct - 100


picks = st.integers(0, 9)
pcts = st.integers(-2, 125)
fund_amounts = st.integers(-2, 20_000).map(lambda x: AMOUNT_MAX + 1 if x == -2 else x)
issuer_senders = st.sampled_from(("namur", "liege", "namur", "liege", "bank"))
bank_senders = st.sampled_from(("bank", "bank", "bank", "namur"))
merchant_senders = st.sampled_from(("m0", "m1", "m2", "m3", "m4", "h0"))
holder_senders = st.sampled_from(("h0", "h1", "h2", "h3", "h4", "m4", "auditor"))
holder_targets = st.sampled_from(("h0", "h1", "h2", "h3", "h4", "m4", "namur"))
merchant_targets = st.sampled_from(("m0", "m1", "m2", "m3", "m4", "h4", "namur"))
merchants = st.sampled_from(("m0", "m1", "m2", "m3", "m4", "h0"))
issuers = st.sampled_from(("namur", "liege"))
campaigns = st.sampled_from(("C0", "C1", "C2"))
zone_picks = st.integers(0, 3)
merchant_categories = st.sampled_from(("47.11", "47.21", "56.10"))
campaign_categories = st.sampled_from(("47", "47.11", "56"))

OPS: dict[str, st.SearchStrategy[tuple[Any, ...]]] = {
    "register_merchant": st.tuples(
        issuer_senders, merchant_targets, zone_picks, merchant_categories, st.booleans()
    ),
    "update_merchant": st.tuples(
        picks,
        st.sampled_from(("issuer", "self", "other")),
        merchants,
        st.none() | zone_picks,
        st.none() | merchant_categories,
        st.booleans(),
    ),
    "suspend_merchant": st.tuples(picks, issuer_senders, merchants, st.booleans()),
    "create_campaign": st.tuples(
        issuer_senders,
        campaigns,
        st.lists(zone_picks, max_size=2),
        st.lists(campaign_categories, max_size=2),
        st.sampled_from((0, -HOUR_MS, DAY_MS)),
        st.sampled_from((10 * DAY_MS, DAY_MS, 30 * DAY_MS, 0)),
        st.sampled_from((3000, 800, 20_000, 0)),
    ),
    "fund": st.tuples(picks, bank_senders, campaigns, fund_amounts, picks),
    "allocate": st.tuples(
        picks,
        issuer_senders,
        campaigns,
        st.lists(st.tuples(holder_targets, pcts, zone_picks), min_size=0, max_size=4),
    ),
    "pay": st.tuples(picks, holder_senders, campaigns, picks, merchants, pcts),
    "pay_authorized": st.tuples(
        picks,
        holder_targets,
        campaigns,
        picks,
        merchant_senders,
        st.sampled_from(("any", "self", "self", "other")),
        pcts,
        st.sampled_from((HOUR_MS, DAY_MS, DAY_MS, -1)),
        pcts,
        st.sampled_from((True, True, True, True, False)),
        st.sampled_from((None, None, None, 0, 1)),  # reuse an earlier authorization
    ),
    "sweep": st.tuples(picks, holder_senders, campaigns, holder_targets),
    "refund": st.tuples(picks, merchant_senders, holder_targets, campaigns, pcts),
    "reissue": st.tuples(picks, issuer_senders, holder_targets, campaigns, holder_targets),
    "transfer": st.tuples(picks, merchant_senders, issuers, picks, merchants, pcts),
    "redeem": st.tuples(picks, merchant_senders, issuers, pcts),
    "settle": st.tuples(
        bank_senders,
        st.lists(st.integers(0, 7), min_size=1, max_size=3),
        st.sampled_from(("plain", "plain", "plain", "plain", "twice", "empty")),
        st.sampled_from(("bt-1", "bt-2", "bt-3", "bt-4", " ")),
    ),
    "return_payout": st.tuples(
        bank_senders,
        st.integers(0, 7),
        st.sampled_from(("AC04", "AC04", "AC01", "MS03", " ", "closed account")),
        st.sampled_from(("RLF1T1", "RLF1T2", "RLF2T1", "")),
    ),
    "close_campaign": st.tuples(picks, issuer_senders, campaigns),
    "consent_zones": st.tuples(
        issuer_senders,
        st.sampled_from(("liege", "namur", "liege", "namur", "m0")),
        st.sampled_from(("all", "all", "all", "one", "revoke", "foreign", "twice", "self")),
    ),
    "withdraw": st.tuples(picks, bank_senders, campaigns, pcts, picks),
    "forged": st.tuples(
        st.sampled_from(("signature", "chain", "replay", "future")), st.integers(0, 5)
    ),
}

any_op = st.one_of(
    [st.tuples(st.just(name), args) for name, args in OPS.items()]
    + [st.tuples(st.just("repeat"), st.just(()))]  # the previous transaction again
)


# --- the machine ------------------------------------------------------------------------


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.world = World()
        self.model = Model.genesis()
        self.applied: list[bytes] = []  # wire bytes of every applied transaction
        self.authorizations: list[tuple[t.Authorization, bytes, bool]] = []
        self.nonces = 0
        self.fresh_references = 0

    # --- candidates from the model ---------------------------------------------------------

    @staticmethod
    def funded(sim: Model) -> list[tuple[str, str]]:
        """(holder, campaign) pairs with a balance."""
        return sorted((name_of(h), code) for (h, code), v in sim.balance.items() if v > 0)

    @staticmethod
    def owned_campaigns(sim: Model) -> list[tuple[str, str]]:
        """(issuer, campaign) of every campaign."""
        return sorted((name_of(c.issuer), code) for code, c in sim.campaigns.items())

    @staticmethod
    def merchant_names(sim: Model) -> list[str]:
        return sorted(name_of(pk) for pk in sim.merchants)

    @staticmethod
    def eligible(sim: Model, code: str) -> list[str]:
        """Active merchants in the campaign's zones and categories."""
        c = sim.campaigns.get(code)
        if c is None:
            return []
        return sorted(
            name_of(pk)
            for pk, m in sim.merchants.items()
            if m.active
            and m.zone in c.zones
            and (m.issuer == c.issuer or sim.consented(c.issuer, m.issuer, m.zone))
            and (not c.categories or any(m.category.startswith(x) for x in c.categories))
        )

    def shop(self, sim: Model, code: str, pick: int, fallback: str) -> str:
        """Mostly an eligible merchant, sometimes a registered ineligible one, else ``fallback``."""
        eligible = self.eligible(sim, code)
        if pick < 4 and eligible:
            return choose(pick, eligible, fallback)  # type: ignore[no-any-return]
        others = [m for m in self.merchant_names(sim) if m not in eligible]
        return choose(pick, others, fallback)  # type: ignore[no-any-return]

    @staticmethod
    def with_units(sim: Model) -> list[tuple[str, str]]:
        """(merchant, issuer) rows with units."""
        return sorted((name_of(m), name_of(i)) for (m, i), v in sim.units.items() if v > 0)

    def reference(self, sim: Model, pick: int) -> str:
        """Mostly a fresh bank reference; sometimes one already used (or about to be)."""
        if pick < SMART:
            self.fresh_references += 1
            return f"ref-{self.fresh_references}"
        return choose(pick - SMART, sorted(sim.references), "ref-1")  # type: ignore[no-any-return]

    # --- building transactions from drawn arguments ---------------------------------------

    def build(self, sim: Model, name: str, args: tuple[Any, ...]) -> Op:
        builder: Callable[..., Op] = getattr(self, "build_" + name)
        return builder(sim, *args)

    def build_register_merchant(
        self, sim: Model, who: str, target: str, zone: int, category: str, auto: bool
    ) -> Op:
        payload = t.RegisterMerchant(
            PK[target],
            f"Shop {target}",
            category,
            zone_for(who, zone),
            digest(b"iban:" + target.encode()),
            auto,
        )
        return Op("register_merchant", KEYS[who], payload)

    def build_update_merchant(
        self,
        sim: Model,
        pick: int,
        mode: str,
        target: str,
        zone: int | None,
        cat: str | None,
        auto: bool,
    ) -> Op:
        target = choose(pick, self.merchant_names(sim), target)
        m = sim.merchants.get(PK[target])
        issuer = name_of(m.issuer) if m else "namur"
        who = {"issuer": issuer, "self": target, "other": "liege" if issuer == "namur" else "namur"}
        payload = t.UpdateMerchant(
            PK[target],
            m.name if m else f"Shop {target}",
            cat if cat is not None else (m.category if m else "47.11"),
            zone_for(issuer, zone) if zone is not None else (m.zone if m else "NA-1"),
            digest(b"iban:" + target.encode()),
            auto,
        )
        return Op("update_merchant", KEYS[who[mode]], payload)

    def build_suspend_merchant(
        self, sim: Model, pick: int, who: str, target: str, suspended: bool
    ) -> Op:
        target = choose(pick, self.merchant_names(sim), target)
        m = sim.merchants.get(PK[target])
        if m is not None and pick < SMART:
            who = name_of(m.issuer)
        return Op("suspend_merchant", KEYS[who], t.SuspendMerchant(PK[target], suspended))

    def build_create_campaign(
        self,
        sim: Model,
        who: str,
        code: str,
        zones: list[int],
        categories: list[str],
        start_ms: int,
        length_ms: int,
        cap: int,
    ) -> Op:
        start = self.world.time_ms + start_ms
        payload = t.CreateCampaign(
            code,
            f"Campaign {code}",
            tuple(zone_for(who, z) for z in zones),
            tuple(categories),
            start,
            start + length_ms,
            cap,
        )
        return Op("create_campaign", KEYS[who], payload)

    def build_fund(
        self, sim: Model, pick: int, who: str, code: str, cents: int, ref_pick: int
    ) -> Op:
        code = choose(pick, sorted(sim.campaigns), code)
        return Op("fund", KEYS[who], t.Fund(code, cents, self.reference(sim, ref_pick)))

    def build_withdraw(
        self, sim: Model, pick: int, who: str, code: str, pct: int, ref_pick: int
    ) -> Op:
        code = choose(pick, sorted(sim.campaigns), code)
        budget = sim.campaigns[code].budget if code in sim.campaigns else 100
        payload = t.Withdraw(code, scaled(budget, pct), self.reference(sim, ref_pick))
        return Op("withdraw", KEYS[who], payload)

    def build_allocate(
        self, sim: Model, pick: int, who: str, code: str, rows: list[tuple[str, int, int]]
    ) -> Op:
        who, code = choose(pick, self.owned_campaigns(sim), (who, code))
        c = sim.campaigns.get(code)
        share = 1000 if c is None else min(c.budget // max(1, len(rows)), c.cap)
        allocations = tuple(
            t.Allocation(PK[h], scaled(share, pct), zone_for(who, z)) for h, pct, z in rows
        )
        return Op("allocate", KEYS[who], t.Allocate(code, allocations))

    def build_pay(
        self, sim: Model, pick: int, who: str, code: str, m_pick: int, merchant: str, pct: int
    ) -> Op:
        who, code = choose(pick, self.funded(sim), (who, code))
        merchant = self.shop(sim, code, m_pick, merchant)
        cents = scaled(sim.bal(PK[who], code), pct)
        return Op("pay", KEYS[who], t.Pay(code, PK[merchant], cents, "memo"))

    def build_pay_authorized(
        self,
        sim: Model,
        pick: int,
        holder: str,
        code: str,
        m_pick: int,
        who: str,
        bound: str,
        max_pct: int,
        expires_in_ms: int,
        pct: int,
        signature_ok: bool,
        reuse: int | None,
    ) -> Op:
        holder, code = choose(pick, self.funded(sim), (holder, code))
        who = self.shop(sim, code, m_pick, who)
        if reuse is not None and self.authorizations:
            # Mostly by the merchant it names (or the one drawn, for "any"): a replay.
            auth, signature, signature_ok = self.authorizations[
                -1 - reuse % len(self.authorizations)
            ]
            if auth.merchant and m_pick < SMART:
                who = name_of(auth.merchant)
        else:
            other = "m1" if who == "m0" else "m0"
            merchant = {"any": b"", "self": PK[who], "other": PK[other]}[bound]
            self.nonces += 1
            auth = t.Authorization(
                PK[holder],
                code,
                merchant,
                scaled(sim.bal(PK[holder], code), max_pct),
                self.world.time_ms + expires_in_ms,
                digest(b"nonce%d" % self.nonces)[: t.NONCE_BYTES],
            )
            signed_by = KEYS[holder] if signature_ok else KEYS["h3" if holder != "h3" else "h2"]
            signature = auth.sign(signed_by, CHAIN_ID)
            self.authorizations.append((auth, signature, signature_ok))
        limit = min(auth.max_cents, sim.bal(auth.holder, auth.campaign))
        cents = scaled(limit, pct) if pct <= 100 else auth.max_cents + pct - 100
        payload = t.PayAuthorized(auth, signature, cents, "memo")
        return Op("pay_authorized", KEYS[who], payload, auth_signature_ok=signature_ok)

    def build_consent_zones(self, sim: Model, who: str, region: str, mode: str) -> Op:
        if mode == "self":
            region = who
        elif who == region:
            region = "liege" if who == "namur" else "namur"
        own = TERRITORY.get(who, ("NA-1",))
        zones = {
            "all": own, "one": own[-1:], "revoke": (), "foreign": (zone_for(who, 3),),
            "twice": (own[0], own[0]), "self": own,
        }[mode]  # fmt: skip
        return Op("consent_zones", KEYS[who], t.ConsentZones(PK[region], tuple(zones)))

    def build_sweep(self, sim: Model, pick: int, who: str, code: str, to: str) -> Op:
        who, code = choose(pick, self.funded(sim), (who, code))
        return Op("sweep", KEYS[who], t.Sweep(code, PK[to]))

    def build_refund(self, sim: Model, pick: int, who: str, holder: str, code: str, pct: int) -> Op:
        candidates = sorted((name_of(m), name_of(h), c) for (h, m, c) in sim.paid)
        who = choose(pick, self.merchant_names(sim), who)
        who, holder, code = choose(pick, candidates, (who, holder, code))
        cents = scaled(sim.paid.get((PK[holder], PK[who], code), 0), pct)
        return Op("refund", KEYS[who], t.Refund(PK[holder], code, cents, "memo"))

    def build_reissue(self, sim: Model, pick: int, who: str, lost: str, code: str, new: str) -> Op:
        lost, code = choose(pick, self.funded(sim), (lost, code))
        if pick < SMART and code in sim.campaigns:
            who = name_of(sim.campaigns[code].issuer)
        return Op("reissue", KEYS[who], t.Reissue(code, PK[lost], PK[new]))

    def build_transfer(
        self, sim: Model, pick: int, who: str, issuer: str, to_pick: int, to: str, pct: int
    ) -> Op:
        who = choose(pick, self.merchant_names(sim), who)
        who, issuer = choose(pick, self.with_units(sim), (who, issuer))
        to = choose(to_pick, self.merchant_names(sim), to)
        cents = scaled(sim.units.get((PK[who], PK[issuer]), 0), pct)
        return Op("transfer", KEYS[who], t.Transfer(PK[to], PK[issuer], cents, "memo"))

    def build_redeem(self, sim: Model, pick: int, who: str, issuer: str, pct: int) -> Op:
        who = choose(pick, self.merchant_names(sim), who)
        who, issuer = choose(pick, self.with_units(sim), (who, issuer))
        cents = scaled(sim.units.get((PK[who], PK[issuer]), 0), pct)
        return Op("redeem", KEYS[who], t.Redeem(PK[issuer], cents))

    def build_settle(self, sim: Model, who: str, picks: list[int], mode: str, ref: str) -> Op:
        """Unsettled payouts first (newest first), then settled ones; 7 is an unknown id."""
        unsettled = [p for p in reversed(sim.payout_order) if not sim.payouts[p].settled]
        settled = [p for p in reversed(sim.payout_order) if sim.payouts[p].settled]
        order = unsettled + settled
        ids: list[Digest] = []
        for i in picks:
            chosen = UNKNOWN_PAYOUT if i == 7 or not order else Digest(order[i % len(order)])
            if chosen not in ids:
                ids.append(chosen)
        if mode == "twice":
            ids.append(ids[0])
        elif mode == "empty":
            ids = []
        payload = t.Settle(tuple(t.Settlement(i, ref) for i in ids))
        return Op("settle", KEYS[who], payload)

    def build_return_payout(self, sim: Model, who: str, pick: int, reason: str, ref: str) -> Op:
        """Open payouts first (newest first), then closed ones; 7 is an unknown id."""
        open_ = [
            p
            for p in reversed(sim.payout_order)
            if not sim.payouts[p].settled and not sim.payouts[p].returned
        ]
        closed = [p for p in reversed(sim.payout_order) if p not in open_]
        order = open_ + closed
        chosen = UNKNOWN_PAYOUT if pick == 7 or not order else Digest(order[pick % len(order)])
        return Op("return_payout", KEYS[who], t.ReturnPayout(chosen, reason, ref))

    def build_close_campaign(self, sim: Model, pick: int, who: str, code: str) -> Op:
        who, code = choose(pick, self.owned_campaigns(sim), (who, code))
        return Op("close_campaign", KEYS[who], t.CloseCampaign(code))

    def build_forged(self, sim: Model, mode: str, pick: int) -> Op:
        fund = t.Fund("C0", 100, f"forged-{pick}")
        if mode == "signature":
            return Op("forged", KEYS["namur"], fund, sender=PK["bank"])
        if mode == "chain":
            return Op("forged", KEYS["bank"], fund, chain_id="relance-other")
        if mode == "replay" and self.applied:
            raw = self.applied[-1 - pick % len(self.applied)]
            decoded = t.decode_tx(raw, CHAIN_ID)
            assert isinstance(decoded, t.SignedTx)
            return Op(
                "forged",
                KEYS[name_of(decoded.tx.sender)],
                decoded.tx.payload,
                replay=raw,
                replay_sequence=decoded.tx.sequence,
            )
        return Op("forged", KEYS["bank"], fund, sequence_offset=1 + pick)

    # --- one block --------------------------------------------------------------------------

    def run_block(self, descriptions: list[tuple[str, tuple[Any, ...]]]) -> None:
        sim = copy.deepcopy(self.model)
        now = self.world.time_ms
        before = self.world.view.items()
        in_block: Tally[bytes] = Tally()
        datas: list[bytes] = []
        expected: list[tuple[str, Fails]] = []
        last: tuple[Op, int, bytes, Digest] | None = None
        for name, args in descriptions:
            if name == "repeat" and last is not None:
                # The very same transaction bytes again in the same block.
                op, sequence, data, tx_id = last
                expected.append(("repeat", sim.step(op, sequence, tx_id, now)))
                datas.append(data)
                continue
            op = (
                self.build(sim, name, args)
                if name != "repeat"
                else self.build_forged(sim, "future", 0)
            )
            sender = op.sender_pk
            if op.replay:
                sequence = op.replay_sequence
            else:
                sequence = self.model.seq.get(sender, 0) + in_block[sender] + op.sequence_offset
            in_block[sender] += 1
            data, tx_id = op.wire(sequence)
            expected.append((op.name, sim.step(op, sequence, tx_id, now)))
            datas.append(data)
            last = (op, sequence, data, tx_id)

        outcome = self.world.apply(*datas)
        for (name, want), got in zip(expected, outcome.outcomes, strict=True):
            event(f"{name}: {got.result.name}")
            if want:
                assert got.result in want, (
                    f"{name}: ledger says {got.result.name}, the model expects one of "
                    f"{sorted(w.name for w in want)}"
                )
            else:
                assert got.result == R.OK, f"{name}: ledger says {got.result.name}, model OK"
        after = self.world.view.items()
        if outcome.all_ok:
            if len(datas) > 1:
                event("multi-transaction block applied")
            self.model = sim
            self.applied.extend(datas)
            applied = Tally(o.sender for o in outcome.outcomes if o.sender is not None)
        else:
            assert after == before, "a rejected block changed the state"
            applied = Tally()
        check_sequences_monotonic(before, after, applied)
        check_invariants(after)
        self.world.check_record_cache()
        got_view = ledger_view(decode_state(after))
        want_view = self.model.view()
        for section, want_section in want_view.items():
            assert got_view[section] == want_section, f"state differs from the model: {section}"

    # --- rules ----------------------------------------------------------------------------

    @initialize(setup=st.sampled_from(("plain", "plain", "regional", "none")))
    def baseline(self, setup: str) -> None:
        """Optionally start from two campaigns with funds, holders and merchants; with
        ``regional``, also Namur's consent to Liège and Liège's campaign C1 in LG-1 and
        Namur's NA-1, spent at Namur's m0."""
        if setup == "none":
            return
        self.run_block(
            [
                ("register_merchant", ("namur", "m0", 0, "47.11", False)),
                ("register_merchant", ("namur", "m1", 1, "56.10", True)),
                ("register_merchant", ("liege", "m2", 0, "47.21", False)),
                ("create_campaign", ("namur", "C0", [], [], 0, 3 * DAY_MS, 3000)),
                ("create_campaign", ("liege", "C2", [], ["47"], 0, 30 * DAY_MS, 800)),
                ("fund", (9, "bank", "C0", 10_000, 0)),
                ("fund", (9, "bank", "C2", 2_000, 0)),
                ("allocate", (9, "namur", "C0", [("h0", 50, 0), ("h1", 30, 1)])),
                ("allocate", (9, "liege", "C2", [("h1", 100, 0), ("h2", 60, 0)])),
            ]
        )
        self.run_block(
            [
                ("pay", (9, "h0", "C0", 9, "m0", 20)),
                ("pay", (9, "h1", "C0", 9, "m1", 30)),
                ("pay", (9, "h1", "C2", 9, "m2", 50)),
            ]
        )
        if setup == "regional":
            self.run_block(
                [
                    ("consent_zones", ("namur", "liege", "all")),
                    ("create_campaign", ("liege", "C1", [0, 3], [], 0, 30 * DAY_MS, 3000)),
                    ("fund", (9, "bank", "C1", 5_000, 0)),
                    ("allocate", (9, "liege", "C1", [("h3", 50, 3), ("h2", 40, 0)])),
                ]
            )
            self.run_block([("pay", (9, "h3", "C1", 0, "m0", 40))])

    @rule(dt=st.sampled_from((HOUR_MS, DAY_MS, 3 * DAY_MS, 12 * DAY_MS, 12 * DAY_MS)))
    def advance_time(self, dt: int) -> None:
        self.world.time_ms += dt

    @rule(pick=picks, edge=st.sampled_from(("until", "until", "from", "just before until")))
    def advance_to_a_campaign_edge(self, pick: int, edge: str) -> None:
        """Block time lands exactly on (or 1 ms before) a campaign's window edge."""
        windows = [
            (c.valid_from_ms, c.valid_until_ms) for _, c in sorted(self.model.campaigns.items())
        ]
        if not windows:
            return
        valid_from, valid_until = windows[pick % len(windows)]
        target = {"until": valid_until, "from": valid_from, "just before until": valid_until - 1}
        self.world.time_ms = max(self.world.time_ms, target[edge])

    @rule(args=OPS["register_merchant"])
    def register_merchant(self, args: tuple[Any, ...]) -> None:
        self.run_block([("register_merchant", args)])

    @rule(args=OPS["update_merchant"])
    def update_merchant(self, args: tuple[Any, ...]) -> None:
        self.run_block([("update_merchant", args)])

    @rule(args=OPS["suspend_merchant"])
    def suspend_merchant(self, args: tuple[Any, ...]) -> None:
        self.run_block([("suspend_merchant", args)])

    @rule(args=OPS["consent_zones"])
    def consent_zones(self, args: tuple[Any, ...]) -> None:
        self.run_block([("consent_zones", args)])

    @rule(args=OPS["create_campaign"])
    def create_campaign(self, args: tuple[Any, ...]) -> None:
        self.run_block([("create_campaign", args)])

    @rule(args=OPS["fund"])
    def fund(self, args: tuple[Any, ...]) -> None:
        self.run_block([("fund", args)])

    @rule(args=OPS["allocate"])
    def allocate(self, args: tuple[Any, ...]) -> None:
        self.run_block([("allocate", args)])

    @rule(args=OPS["pay"])
    def pay(self, args: tuple[Any, ...]) -> None:
        self.run_block([("pay", args)])

    @rule(args=OPS["pay_authorized"])
    def pay_authorized(self, args: tuple[Any, ...]) -> None:
        self.run_block([("pay_authorized", args)])

    @rule(args=OPS["sweep"])
    def sweep(self, args: tuple[Any, ...]) -> None:
        self.run_block([("sweep", args)])

    @rule(args=OPS["refund"])
    def refund(self, args: tuple[Any, ...]) -> None:
        self.run_block([("refund", args)])

    @rule(args=OPS["reissue"])
    def reissue(self, args: tuple[Any, ...]) -> None:
        self.run_block([("reissue", args)])

    @rule(args=OPS["transfer"])
    def transfer(self, args: tuple[Any, ...]) -> None:
        self.run_block([("transfer", args)])

    @rule(args=OPS["redeem"])
    def redeem(self, args: tuple[Any, ...]) -> None:
        self.run_block([("redeem", args)])

    @rule(args=OPS["settle"])
    def settle(self, args: tuple[Any, ...]) -> None:
        self.run_block([("settle", args)])

    @rule(args=OPS["return_payout"])
    def return_payout(self, args: tuple[Any, ...]) -> None:
        self.run_block([("return_payout", args)])

    @rule(args=OPS["close_campaign"])
    def close_campaign(self, args: tuple[Any, ...]) -> None:
        self.run_block([("close_campaign", args)])

    @rule(args=OPS["withdraw"])
    def withdraw(self, args: tuple[Any, ...]) -> None:
        self.run_block([("withdraw", args)])

    @rule(args=OPS["forged"])
    def forged(self, args: tuple[Any, ...]) -> None:
        self.run_block([("forged", args)])

    @rule(ops=st.lists(any_op, min_size=2, max_size=4))
    def block(self, ops: list[tuple[str, tuple[Any, ...]]]) -> None:
        self.run_block(ops)


LedgerMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],  # the machine is shared; speed is not tested
)
TestLedgerModel = pytest.mark.slow(LedgerMachine.TestCase)  # 200 runs of 40 steps: ~25 s
