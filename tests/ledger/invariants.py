"""Whole-state invariants of the ledger, checked from the raw key-value items.

``decode_state`` decodes every key with ``node.ledger.records`` (an unknown
prefix or a record that does not decode is itself a failure);
``check_invariants`` asserts the money rules of DESIGN.md ("Money and
invariants") over the decoded state; ``check_sequences_monotonic`` compares
the account sequences of two states.

Test helper only: raises ``AssertionError`` with a message naming the
record that breaks a rule.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from node.crypto import PUBLIC_KEY_BYTES
from node.ledger import records as r

P = r.Prefix


@dataclass
class DecodedState:
    """Every record of a state, by type, with the key parts split out."""

    params: r.Params | None = None
    banks: dict[bytes, r.Bank] = field(default_factory=dict)
    issuers: dict[bytes, r.Issuer] = field(default_factory=dict)
    merchants: dict[bytes, r.Merchant] = field(default_factory=dict)
    holders: dict[bytes, r.Holder] = field(default_factory=dict)
    auditors: dict[bytes, r.Auditor] = field(default_factory=dict)
    campaigns: dict[str, r.Campaign] = field(default_factory=dict)
    # (holder, merchant, campaign) -> net cents paid
    spent: dict[tuple[bytes, bytes, str], int] = field(default_factory=dict)
    payouts: dict[bytes, r.Payout] = field(default_factory=dict)
    references: dict[str, int] = field(default_factory=dict)
    authorizations: dict[bytes, int] = field(default_factory=dict)
    # (campaign, holder) markers
    markers: set[tuple[str, bytes]] = field(default_factory=set)

    def sequences(self) -> dict[bytes, int]:
        """Every account's next sequence (bank, issuers, merchants, holders)."""
        out: dict[bytes, int] = {}
        for table in (self.banks, self.issuers, self.merchants, self.holders):
            for pk, record in table.items():
                assert pk not in out, f"key {pk.hex()} has two sequence-carrying roles"
                out[pk] = record.sequence
        return out


def _pk(raw: bytes, what: str) -> bytes:
    assert len(raw) == PUBLIC_KEY_BYTES, f"{what}: key part is {len(raw)} bytes"
    return raw


def decode_state(items: Mapping[bytes, bytes]) -> DecodedState:
    """Decode every item; fails on any key or value the records module rejects."""
    s = DecodedState()
    for key, value in items.items():
        assert key, "empty key"
        prefix, rest = key[:1], key[1:]
        if prefix == P.PARAMS.value:
            assert rest == b"", "params key with a suffix"
            s.params = r.Params.decode(value)
        elif prefix == P.BANK.value:
            s.banks[_pk(rest, "bank")] = r.Bank.decode(value)
        elif prefix == P.ISSUER.value:
            s.issuers[_pk(rest, "issuer")] = r.Issuer.decode(value)
        elif prefix == P.MERCHANT.value:
            s.merchants[_pk(rest, "merchant")] = r.Merchant.decode(value)
        elif prefix == P.HOLDER.value:
            s.holders[_pk(rest, "holder")] = r.Holder.decode(value)
        elif prefix == P.AUDITOR.value:
            s.auditors[_pk(rest, "auditor")] = r.Auditor.decode(value)
        elif prefix == P.CAMPAIGN.value:
            s.campaigns[rest.decode()] = r.Campaign.decode(value)
        elif prefix == P.SPENT_AT.value:
            holder = rest[:PUBLIC_KEY_BYTES]
            merchant = rest[PUBLIC_KEY_BYTES : 2 * PUBLIC_KEY_BYTES]
            code = rest[2 * PUBLIC_KEY_BYTES :].decode()
            assert code, "spent-at key without a campaign"
            s.spent[(holder, merchant, code)] = r.Counter.decode(value).value
        elif prefix == P.PAYOUT.value:
            assert len(rest) == 32, "payout id is not a digest"
            s.payouts[rest] = r.Payout.decode(value)
        elif prefix == P.REFERENCE.value:
            s.references[rest.decode()] = r.Counter.decode(value).value
        elif prefix == P.AUTHORIZATION.value:
            assert len(rest) == 32, "authorization id is not a digest"
            s.authorizations[rest] = r.Counter.decode(value).value
        elif prefix == P.CAMPAIGN_HOLDER.value:
            code, sep, holder = rest.partition(b"\x00")
            assert sep, "campaign-holder marker without separator"
            s.markers.add((code.decode(), _pk(holder, "marker")))
            assert r.Counter.decode(value).value == 1, "marker value is not 1"
        else:
            raise AssertionError(f"unknown key prefix {prefix!r}")
    return s


def _check_rows(owner: str, rows: tuple[tuple[object, int], ...]) -> None:
    keys = [k for k, _ in rows]
    assert keys == sorted(keys), f"{owner}: balance rows not sorted"  # type: ignore[type-var]
    assert len(set(keys)) == len(keys), f"{owner}: duplicate balance rows"
    for k, cents in rows:
        assert cents > 0, f"{owner}: balance row {k!r} is {cents} (zero/negative rows are dropped)"


def _check_non_negative(what: str, record: object) -> None:
    for f in fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if isinstance(value, int) and not isinstance(value, bool):
            assert value >= 0, f"{what}.{f.name} is negative: {value}"


def check_invariants(items: Mapping[bytes, bytes]) -> None:
    """Assert DESIGN.md's money invariants over a whole state."""
    s = decode_state(items)
    assert s.params is not None, "no params"
    assert s.params.bank in s.banks, "params name a bank that has no record"

    for pk, issuer in s.issuers.items():
        _check_non_negative(f"issuer {pk.hex()[:8]}", issuer)
    for code, campaign in s.campaigns.items():
        _check_non_negative(f"campaign {code}", campaign)
        assert campaign.issuer in s.issuers, f"campaign {code}: unknown issuer"
        assert campaign.valid_from_ms < campaign.valid_until_ms, f"campaign {code}: empty window"
    for pk, merchant in s.merchants.items():
        _check_non_negative(f"merchant {pk.hex()[:8]}", merchant)
        _check_rows(f"merchant {pk.hex()[:8]}", merchant.balances)
        assert merchant.issuer in s.issuers, f"merchant {pk.hex()[:8]}: unknown issuer"
        for issuer_pk, _ in merchant.balances:
            assert issuer_pk in s.issuers, f"merchant {pk.hex()[:8]}: units of unknown issuer"
    for pk, holder in s.holders.items():
        name = f"holder {pk.hex()[:8]}"
        _check_non_negative(name, holder)
        _check_rows(name, holder.balances)
        for role in (s.banks, s.issuers, s.merchants, s.auditors):
            assert pk not in role, f"{name} also has a role"
        for code, _ in holder.balances:
            assert code in s.campaigns, f"{name}: balance in unknown campaign {code}"
            assert (code, pk) in s.markers, f"{name}: balance in {code} without a marker"
    for payout_id, payout in s.payouts.items():
        _check_non_negative(f"payout {payout_id.hex()[:8]}", payout)
        assert payout.amount_cents > 0, "payout of zero"
        assert payout.issuer in s.issuers, "payout of unknown issuer"
        assert payout.merchant in s.merchants, "payout to unknown merchant"
        assert payout.settled == (payout.settled_ms > 0), "payout settlement fields disagree"
    for spent_key, cents in s.spent.items():
        assert cents > 0, f"spent-at row {spent_key!r} kept at {cents}"
        assert spent_key[2] in s.campaigns, "spent-at row for unknown campaign"
    for reference, cents in s.references.items():
        assert cents > 0, f"reference {reference!r} stored with {cents}"
    for code, _holder in s.markers:
        assert code in s.campaigns, f"marker for unknown campaign {code}"
        assert not s.campaigns[code].closed, f"marker kept after campaign {code} closed"

    # Holder balances per campaign; merchant units and pending payouts per issuer.
    held: Tally[str] = Tally()
    for holder in s.holders.values():
        for code, cents in holder.balances:
            held[code] += cents
    units: Tally[bytes] = Tally()
    for merchant in s.merchants.values():
        for issuer_pk, cents in merchant.balances:
            units[issuer_pk] += cents
    unsettled: Tally[bytes] = Tally()
    for payout in s.payouts.values():
        if not payout.settled:
            unsettled[payout.issuer] += payout.amount_cents

    for code, campaign in s.campaigns.items():
        assert campaign.outstanding_cents == held[code], (
            f"campaign {code}: outstanding {campaign.outstanding_cents} != "
            f"sum of holder balances {held[code]}"
        )
        if campaign.closed:
            assert held[code] == 0, f"closed campaign {code} still has holder balances"

    for pk, issuer in s.issuers.items():
        budgets = sum(c.budget_cents for c in s.campaigns.values() if c.issuer == pk)
        holders = sum(held[code] for code, c in s.campaigns.items() if c.issuer == pk)
        assert issuer.pending_cents == unsettled[pk], (
            f"issuer {issuer.name}: pending {issuer.pending_cents} != "
            f"unsettled payouts {unsettled[pk]}"
        )
        total = budgets + holders + units[pk] + issuer.pending_cents
        assert issuer.escrow_cents == total, (
            f"issuer {issuer.name}: escrow {issuer.escrow_cents} != budgets {budgets} "
            f"+ holders {holders} + merchants {units[pk]} + pending {issuer.pending_cents}"
        )
    for issuer_pk in units:
        assert issuer_pk in s.issuers, "merchant units of an unknown issuer"


def check_sequences_monotonic(
    before: Mapping[bytes, bytes],
    after: Mapping[bytes, bytes],
    applied: Mapping[bytes, int] | None = None,
) -> None:
    """No account's sequence decreases; none disappears.

    With ``applied`` (sender -> number of its transactions applied between the
    two states), each sequence increases by exactly that number, and every
    other account's sequence stays the same.
    """
    old = decode_state(before).sequences()
    new = decode_state(after).sequences()
    for pk, seq in old.items():
        assert pk in new, f"account {pk.hex()[:8]} disappeared"
        assert new[pk] >= seq, f"account {pk.hex()[:8]} sequence went {seq} -> {new[pk]}"
    if applied is None:
        return
    for pk in set(old) | set(new) | set(applied):
        grew = new.get(pk, 0) - old.get(pk, 0)
        expected = applied.get(pk, 0)
        assert grew == expected, (
            f"account {pk.hex()[:8]} sequence grew by {grew}, {expected} transactions applied"
        )
