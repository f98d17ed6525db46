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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields

from node.ledger import records as r
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES
from node.protocol.genesis import VALIDATOR_ROLES

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
    validators: r.Validators | None = None
    # validator node key -> its next sequence (evidence and governance senders)
    nodes: dict[bytes, int] = field(default_factory=dict)
    # zone code -> owning issuer
    zones: dict[str, bytes] = field(default_factory=dict)
    # (validator, height, round, step) -> height the evidence was committed
    evidence: dict[tuple[bytes, int, int, int], int] = field(default_factory=dict)
    # first height -> the validator set in force from that height on
    eras: dict[int, tuple[r.Validator, ...]] = field(default_factory=dict)
    # (region, commune) -> the commune's zones consented to the region
    consents: dict[tuple[bytes, bytes], tuple[str, ...]] = field(default_factory=dict)

    def sequences(self) -> dict[bytes, int]:
        """Every key's next sequence: its account's (bank, issuer, merchant, holder)
        plus its validator node sequence, which is separate but also bumped by
        exactly one per applied transaction of that key."""
        out: dict[bytes, int] = {}
        for table in (self.banks, self.issuers, self.merchants, self.holders):
            for pk, record in table.items():
                assert pk not in out, f"key {pk.hex()} has two sequence-carrying roles"
                out[pk] = record.sequence
        for pk, seq in self.nodes.items():
            out[pk] = out.get(pk, 0) + seq
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
        elif prefix == P.VALIDATORS.value:
            assert rest == b"", "validators key with a suffix"
            s.validators = r.Validators.decode(value)
        elif prefix == P.NODE.value:
            s.nodes[_pk(rest, "node")] = r.Counter.decode(value).value
        elif prefix == P.ZONE.value:
            s.zones[rest.decode()] = r.ZoneOwner.decode(value).issuer
        elif prefix == P.EVIDENCE.value:
            assert len(rest) == PUBLIC_KEY_BYTES + 8 + 4 + 1, "evidence key of a wrong length"
            validator = rest[:PUBLIC_KEY_BYTES]
            height = int.from_bytes(rest[PUBLIC_KEY_BYTES : PUBLIC_KEY_BYTES + 8], "big")
            round_ = int.from_bytes(rest[PUBLIC_KEY_BYTES + 8 : PUBLIC_KEY_BYTES + 12], "big")
            step = rest[-1]
            s.evidence[(validator, height, round_, step)] = r.Counter.decode(value).value
        elif prefix == P.VALIDATOR_HISTORY.value:
            assert len(rest) == 8, "validator era key is not a height"
            s.eras[int.from_bytes(rest, "big")] = r.ValidatorEra.decode(value).validators
        elif prefix == P.CONSENT.value:
            assert len(rest) == 2 * PUBLIC_KEY_BYTES, "consent key is not two keys"
            region, commune = rest[:PUBLIC_KEY_BYTES], rest[PUBLIC_KEY_BYTES:]
            s.consents[(region, commune)] = r.Consent.decode(value).zones
        elif prefix == P.UPGRADE.value:
            assert rest == b"", "upgrade key with a suffix"
            r.Upgrade.decode(value)
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


_DECODERS: dict[bytes, Callable[[bytes], r.Record]] = {
    P.PARAMS.value: r.Params.decode,
    P.BANK.value: r.Bank.decode,
    P.ISSUER.value: r.Issuer.decode,
    P.MERCHANT.value: r.Merchant.decode,
    P.HOLDER.value: r.Holder.decode,
    P.AUDITOR.value: r.Auditor.decode,
    P.CAMPAIGN.value: r.Campaign.decode,
    P.SPENT_AT.value: r.Counter.decode,
    P.PAYOUT.value: r.Payout.decode,
    P.REFERENCE.value: r.Counter.decode,
    P.AUTHORIZATION.value: r.Counter.decode,
    P.CAMPAIGN_HOLDER.value: r.Counter.decode,
    P.VALIDATORS.value: r.Validators.decode,
    P.NODE.value: r.Counter.decode,
    P.ZONE.value: r.ZoneOwner.decode,
    P.EVIDENCE.value: r.Counter.decode,
    P.VALIDATOR_HISTORY.value: r.ValidatorEra.decode,
    P.CONSENT.value: r.Consent.decode,
    P.UPGRADE.value: r.Upgrade.decode,
}


def _check_canonical(items: Mapping[bytes, bytes]) -> None:
    """Every stored value is the one encoding of its record (state is compared byte for byte)."""
    for key, value in items.items():
        decode = _DECODERS.get(key[:1])
        assert decode is not None, f"unknown key prefix {key[:1]!r}"
        assert decode(value).encode() == value, f"value of {key!r} is not canonical"


def check_invariants(items: Mapping[bytes, bytes]) -> None:
    """Assert DESIGN.md's money invariants over a whole state."""
    _check_canonical(items)
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
        assert not (payout.settled and payout.returned), "payout both settled and returned"
    for spent_key, cents in s.spent.items():
        assert cents > 0, f"spent-at row {spent_key!r} kept at {cents}"
        assert spent_key[2] in s.campaigns, "spent-at row for unknown campaign"
    for reference, cents in s.references.items():
        assert cents > 0, f"reference {reference!r} stored with {cents}"
    for code, _holder in s.markers:
        assert code in s.campaigns, f"marker for unknown campaign {code}"
        assert not s.campaigns[code].closed, f"marker kept after campaign {code} closed"
    _check_validators(s)
    for (region, commune), zones in s.consents.items():
        assert region in s.issuers and commune in s.issuers, "consent of an unknown issuer"
        assert region != commune, "an issuer consents to itself"
        assert zones, "an empty consent is kept (it should be deleted)"
        assert zones == tuple(sorted(set(zones))), "consent zones not sorted and unique"
        assert all(s.zones.get(z) == commune for z in zones), "consent of another's zone"

    # Holder balances per campaign; merchant units and pending payouts per issuer.
    held: Tally[str] = Tally()
    for holder in s.holders.values():
        for code, cents in holder.balances:
            held[code] += cents
    units: Tally[bytes] = Tally()
    for merchant in s.merchants.values():
        for issuer_pk, cents in merchant.balances:
            units[issuer_pk] += cents
    # A returned payout is closed: its units are back in the merchant's balance, so it
    # counts neither as pending nor as settled (nor as redeemed).
    unsettled: Tally[bytes] = Tally()
    settled: Tally[bytes] = Tally()
    for payout in s.payouts.values():
        if payout.settled:
            settled[payout.issuer] += payout.amount_cents
        elif not payout.returned:
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
        assert issuer.settled_cents == settled[pk], (
            f"issuer {issuer.name}: settled {issuer.settled_cents} != settled payouts {settled[pk]}"
        )
        assert issuer.redeemed_cents == issuer.pending_cents + issuer.settled_cents, (
            f"issuer {issuer.name}: redeemed {issuer.redeemed_cents} != pending "
            f"{issuer.pending_cents} + settled {issuer.settled_cents}"
        )
        total = budgets + holders + units[pk] + issuer.pending_cents
        assert issuer.escrow_cents == total, (
            f"issuer {issuer.name}: escrow {issuer.escrow_cents} != budgets {budgets} "
            f"+ holders {holders} + merchants {units[pk]} + pending {issuer.pending_cents}"
        )
    for issuer_pk in units:
        assert issuer_pk in s.issuers, "merchant units of an unknown issuer"


def _check_validator_list(what: str, validators: tuple[r.Validator, ...]) -> None:
    keys = [v.public_key for v in validators]
    assert len(set(keys)) == len(keys), f"{what}: a validator appears twice"
    for v in validators:
        assert 1 <= v.power <= limits.VALIDATOR_POWER_MAX, f"{what}: power {v.power}"
        assert v.role in VALIDATOR_ROLES, f"{what}: role {v.role!r}"


def _check_validators(s: DecodedState) -> None:
    """The validator set, its scheduled change, the zone index, evidence and node sequences."""
    v = s.validators
    assert v is not None, "no validator set"
    assert 1 <= len(v.current) <= limits.VALIDATORS_MAX, "validator set empty or too large"
    _check_validator_list("current validators", v.current)
    if v.pending_height:
        assert 1 <= len(v.pending) <= limits.VALIDATORS_MAX, "pending set empty or too large"
        _check_validator_list("pending validators", v.pending)
    else:
        assert v.pending == (), "a pending set without a height"
    # History: from height 1 on, the last era is the set in force; a pending set is not in it.
    assert 1 in s.eras, "no validator era from height 1"
    for first, era in s.eras.items():
        assert first >= 1, "a validator era before height 1"
        assert 1 <= len(era) <= limits.VALIDATORS_MAX, f"era {first}: empty or too large"
        _check_validator_list(f"era {first}", era)
    assert s.eras[max(s.eras)] == v.current, "the last era is not the set in force"
    if v.pending_height:
        assert v.pending_height > max(s.eras), "a pending set already in the history"
    # Zone index: exactly the issuers' zones, each pointing at its issuer.
    owned: dict[str, bytes] = {
        zone: pk for pk, issuer in s.issuers.items() for zone in issuer.zones
    }
    assert sum(len(i.zones) for i in s.issuers.values()) == len(owned), "a zone has two owners"
    assert s.zones == owned, "the zone index disagrees with the issuers' zones"
    for (_, height, _, step), committed in s.evidence.items():
        assert height >= 1, "evidence at height 0"
        assert step in (0, 1, 2), f"evidence of step {step}"
        assert committed >= height, "evidence committed before the statements' height"
    for pk, seq in s.nodes.items():
        assert seq > 0, f"node {pk.hex()[:8]}: sequence stored as {seq}"


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
