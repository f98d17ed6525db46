"""The auditor's own books: running totals rebuilt from each block's state changes.

``Books`` keeps, per issuer and per campaign, the sums the money invariant of
DESIGN.md is stated over (unallocated budgets, holder balances, merchant
units, unsettled payouts) and updates them from the writes of every block,
so the invariant is checked after every block at the cost of the block's
changes, not of the whole state. It also checks what a change may never do
(a payout deleted, changed after it was settled or returned, settled or
returned twice; a holder above a campaign's cap), and tallies the figures of
the treasurer's report. A returned payout (the bank's transfer was rejected)
is closed: its amount is back in the merchant's balance, so it counts
neither as pending nor as settled, and no longer as redeemed.

Pure: written against the ledger's record decoders, it shares no code with
the rules it cross-checks. Imports ``node.ledger.records`` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from node.ledger import records as r
from node.protocol.codec import DecodeError

_CAMPAIGN = r.Prefix.CAMPAIGN.value
_HOLDER = r.Prefix.HOLDER.value
_MERCHANT = r.Prefix.MERCHANT.value
_PAYOUT = r.Prefix.PAYOUT.value
_ISSUER = r.Prefix.ISSUER.value


_R = TypeVar("_R", r.Holder, r.Payout, r.Campaign)


class BooksError(ValueError):
    """A change or a total breaks a rule; the message says which record."""


@dataclass
class CampaignTally:
    """Figures of one campaign, summed from the transactions of the history."""

    issuer: bytes
    funded: int = 0
    allocated: int = 0
    spent: int = 0
    refunded: int = 0
    withdrawn: int = 0
    redeemed_direct: int = 0  # payments that became payouts at once (auto-redeem), net of returns
    settled_direct: int = 0  # of those, settled by the bank


@dataclass
class IssuerTally:
    redeemed: int = 0  # payouts opened (auto-redeem and redemptions) minus those returned
    settled: int = 0
    returned: int = 0  # payouts the bank returned to the merchants' balances
    funded: int = 0
    withdrawn: int = 0


@dataclass
class Books:
    """Running totals, keyed by issuer public key or campaign code."""

    issuers: dict[bytes, r.Issuer] = field(default_factory=dict)
    campaigns: dict[str, r.Campaign] = field(default_factory=dict)
    budgets: Counter[bytes] = field(default_factory=Counter)
    holders: Counter[bytes] = field(default_factory=Counter)  # holder balances per issuer
    held: Counter[str] = field(default_factory=Counter)  # holder balances per campaign
    merchant_units: Counter[bytes] = field(default_factory=Counter)
    unsettled: Counter[bytes] = field(default_factory=Counter)
    payouts_settled: int = 0
    payouts_opened: int = 0
    payouts_returned: int = 0
    holder_caps_checked: int = 0
    campaign_tallies: dict[str, CampaignTally] = field(default_factory=dict)
    issuer_tallies: dict[bytes, IssuerTally] = field(default_factory=dict)
    direct_payouts: dict[bytes, str] = field(default_factory=dict)  # payout id -> campaign
    # Each holder's rows as last seen, so a change decodes only the new record.
    _holder_rows: dict[bytes, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    _written: Mapping[bytes, r.Record | None] = field(default_factory=dict)

    @classmethod
    def from_state(cls, items: Mapping[bytes, bytes]) -> Books:
        books = cls()
        books.apply({k: v for k, v in items.items()}, lambda _key: None)
        books.check(set(books.issuers), set(books.campaigns))
        return books

    # --- changes ---------------------------------------------------------------

    def apply(
        self,
        writes: Mapping[bytes, bytes | None],
        old: Callable[[bytes], bytes | None],
        records: Mapping[bytes, r.Record | None] | None = None,
    ) -> tuple[set[bytes], set[str]]:
        """Account for ``writes`` (``old`` reads the value before them).

        ``records`` may give the written records already decoded (the re-execution's
        ``changes()``, whose encodings are ``writes``): they are not decoded again.
        Returns the issuers and campaigns whose totals moved. Campaign records
        go first so that holder rows of a campaign created in the same block
        find their issuer.
        """
        self._written = {} if records is None else records
        touched_issuers: set[bytes] = set()
        touched_campaigns: set[str] = set()
        ordered = sorted(writes, key=lambda k: k[:1] != _CAMPAIGN)
        for key in ordered:
            prefix = key[:1]
            if prefix not in (_CAMPAIGN, _HOLDER, _MERCHANT, _PAYOUT, _ISSUER):
                continue
            before, after = old(key), writes[key]
            try:
                self._change(key, prefix, before, after, touched_issuers, touched_campaigns)
            except DecodeError as exc:
                raise BooksError(f"{_describe(key)}: record does not decode ({exc})") from None
        return touched_issuers, touched_campaigns

    def _change(
        self,
        key: bytes,
        prefix: bytes,
        before: bytes | None,
        after: bytes | None,
        issuers: set[bytes],
        campaigns: set[str],
    ) -> None:
        if prefix == _CAMPAIGN:
            self._campaign(key[1:].decode(), before, after, issuers, campaigns)
        elif prefix == _HOLDER:
            self._holder(key, before, after, issuers, campaigns)
        elif prefix == _MERCHANT:
            for sign, raw in ((-1, before), (1, after)):
                if raw is not None:
                    for issuer, cents in r.Merchant.decode(raw).balances:
                        self.merchant_units[issuer] += sign * cents
                        issuers.add(issuer)
        elif prefix == _PAYOUT:
            self._payout(key, before, after, issuers)
        else:
            if after is None:
                raise BooksError(f"{_describe(key)} was deleted")
            self.issuers[key[1:]] = r.Issuer.decode(after)
            issuers.add(key[1:])

    def _campaign(
        self,
        code: str,
        before: bytes | None,
        after: bytes | None,
        issuers: set[bytes],
        campaigns: set[str],
    ) -> None:
        if after is None:
            raise BooksError(f"campaign {code} was deleted")
        new = self._after(r.campaign_key(code), after, r.Campaign)
        if before is not None:
            old = r.Campaign.decode(before)
            self.budgets[old.issuer] -= old.budget_cents
            fixed = ("issuer", "zones", "categories", "valid_from_ms", "valid_until_ms")
            for name in (*fixed, "max_per_holder_cents"):
                if getattr(old, name) != getattr(new, name):
                    raise BooksError(f"campaign {code}: rule {name} changed after creation")
            if old.closed and not new.closed:
                raise BooksError(f"campaign {code} reopened after closing")
        self.budgets[new.issuer] += new.budget_cents
        self.campaigns[code] = new
        self.campaign_tallies.setdefault(code, CampaignTally(new.issuer))
        issuers.add(new.issuer)
        campaigns.add(code)

    def _after(self, key: bytes, raw: bytes, kind: type[_R]) -> _R:
        """The record written at ``key``: as re-execution decoded it, else from ``raw``."""
        found = self._written.get(key)
        return found if isinstance(found, kind) else kind.decode(raw)

    def _holder(
        self,
        key: bytes,
        before: bytes | None,
        after: bytes | None,
        issuers: set[bytes],
        campaigns: set[str],
    ) -> None:
        old_rows = self._holder_rows.pop(key, None)
        if old_rows is None and before is not None:
            old_rows = r.Holder.decode(before).balances
        new_rows = () if after is None else self._after(key, after, r.Holder).balances
        if after is not None:
            self._holder_rows[key] = new_rows
        for sign, rows in ((-1, old_rows or ()), (1, new_rows)):
            for code, cents in rows:
                campaign = self.campaigns.get(code)
                if campaign is None:
                    raise BooksError(f"{_describe(key)} holds units of unknown campaign {code}")
                if sign > 0:
                    self.holder_caps_checked += 1
                    if cents > campaign.max_per_holder_cents:
                        raise BooksError(
                            f"{_describe(key)} holds {cents} in {code}, above the campaign's "
                            f"maximum per holder {campaign.max_per_holder_cents}"
                        )
                self.held[code] += sign * cents
                self.holders[campaign.issuer] += sign * cents
                issuers.add(campaign.issuer)
                campaigns.add(code)

    def _payout(
        self, key: bytes, before: bytes | None, after: bytes | None, issuers: set[bytes]
    ) -> None:
        name = _describe(key)
        if after is None:
            raise BooksError(f"{name} was deleted")
        new = self._after(key, after, r.Payout)
        if new.settled != (new.settled_ms > 0):
            raise BooksError(f"{name}: settlement reference and time disagree")
        if new.settled and new.returned:
            raise BooksError(f"{name} is both settled and returned")
        if before is None:
            self.payouts_opened += 1
            if new.settled or new.returned:
                raise BooksError(f"{name} was opened already settled or returned")
            self.unsettled[new.issuer] += new.amount_cents
            self.issuer_tally(new.issuer).redeemed += new.amount_cents
            issuers.add(new.issuer)
            return
        old = r.Payout.decode(before)
        same = (old.merchant, old.issuer, old.amount_cents, old.created_ms)
        if same != (new.merchant, new.issuer, new.amount_cents, new.created_ms):
            raise BooksError(f"{name}: merchant, issuer, amount or time changed")
        if old.settled:
            raise BooksError(f"{name} was settled twice ({old.bank_reference!r} before)")
        if old.returned:
            raise BooksError(f"{name} changed after it was returned ({old.returned_reason})")
        if new.returned:
            self._returned(key, new, issuers)
            return
        if not new.settled:
            return
        self.payouts_settled += 1
        self.unsettled[new.issuer] -= new.amount_cents
        self.issuer_tally(new.issuer).settled += new.amount_cents
        campaign = self.direct_payouts.get(key[1:])
        if campaign is not None:
            self.campaign_tallies[campaign].settled_direct += new.amount_cents
        issuers.add(new.issuer)

    def _returned(self, key: bytes, new: r.Payout, issuers: set[bytes]) -> None:
        """The bank returned the payout: closed, its amount back in the merchant's balance."""
        self.payouts_returned += 1
        self.unsettled[new.issuer] -= new.amount_cents
        tally = self.issuer_tally(new.issuer)
        tally.redeemed -= new.amount_cents
        tally.returned += new.amount_cents
        campaign = self.direct_payouts.get(key[1:])
        if campaign is not None:
            self.campaign_tallies[campaign].redeemed_direct -= new.amount_cents
        issuers.add(new.issuer)

    # --- checks ----------------------------------------------------------------

    def check(self, issuers: set[bytes], campaigns: set[str]) -> None:
        """The money invariant for every touched issuer and campaign."""
        for code in sorted(campaigns):
            campaign = self.campaigns[code]
            if campaign.outstanding_cents != self.held[code]:
                raise BooksError(
                    f"campaign {code}: outstanding {campaign.outstanding_cents} != "
                    f"sum of holder balances {self.held[code]}"
                )
        for pk in sorted(issuers):
            issuer = self.issuers.get(pk)
            if issuer is None:
                raise BooksError(f"units of unknown issuer {pk.hex()[:16]}")
            if issuer.pending_cents != self.unsettled[pk]:
                raise BooksError(
                    f"issuer {issuer.name}: pending {issuer.pending_cents} != "
                    f"sum of unsettled payouts {self.unsettled[pk]}"
                )
            total = self.budgets[pk] + self.holders[pk] + self.merchant_units[pk]
            total += self.unsettled[pk]
            if issuer.escrow_cents != total:
                raise BooksError(
                    f"issuer {issuer.name}: escrow {issuer.escrow_cents} != budgets "
                    f"{self.budgets[pk]} + holders {self.holders[pk]} + merchants "
                    f"{self.merchant_units[pk]} + pending {self.unsettled[pk]} = {total}"
                )

    def issuer_tally(self, pk: bytes) -> IssuerTally:
        return self.issuer_tallies.setdefault(pk, IssuerTally())


def _describe(key: bytes) -> str:
    """A record named for people: its type and a short key."""
    prefix, rest = key[:1], key[1:]
    try:
        kind = r.Prefix(prefix).name.lower()
    except ValueError:
        kind = f"record {prefix!r}"
    if prefix == _CAMPAIGN:
        return f"campaign {rest.decode(errors='replace')}"
    return f"{kind} {rest.hex()[:16]}" if rest else kind


describe_key = _describe
