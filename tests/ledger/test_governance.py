"""Validator kinds beyond the table: evidence, admit_issuer, change_validators and
schedule_upgrade over time.

The table cases (one fault each, every code) are in ``test_kinds.py``; here
are the accepted cases record by record, and what happens across blocks: a
validator change scheduled at one height, in force from exactly its
effective height, after which approvals and senders are judged against the
new set. The scene is at height 4: the next block is 5.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor
from node.protocol import limits
from node.protocol.crypto import Signer
from node.protocol.statements import ROUND_MAX, Step
from tests.ledger.conftest import (
    BLOCK_A,
    BLOCK_B,
    NAM,
    Scene,
    admit,
    allocate,
    as_records,
    assert_rejected,
    campaign,
    change,
    double_prevote,
    entry,
    evidence,
    proposal,
    register,
    upgrade,
    vote,
)
from tests.ledger.invariants import check_invariants, check_sequences_monotonic
from tests.ledger.world import pk

H = 4  # the scene's last committed height


def applied(s: Scene, who: Signer, payload: t.Payload) -> None:
    before = s.w.view.items()
    s.do(who, payload)
    after = s.w.view.items()
    check_invariants(after)
    check_sequences_monotonic(before, after, {who.public_key: 1})


def genesis_set(s: Scene) -> tuple[r.Validator, ...]:
    return tuple(r.Validator(pk(v), 1, f"v{n}", "commune") for n, v in enumerate(s.w.validators))


def empty_block(s: Scene) -> None:
    assert s.w.apply().all_ok


# --- evidence ---------------------------------------------------------------------------------


def _double_precommit(v: Signer, height: int) -> t.Evidence:
    return evidence(
        vote(v, Step.PRECOMMIT, height, 2, BLOCK_A), vote(v, Step.PRECOMMIT, height, 2, None)
    )


def _double_proposal(v: Signer, height: int) -> t.Evidence:
    return evidence(proposal(v, height, 1, BLOCK_A), proposal(v, height, 1, BLOCK_B, 0))


OFFENCES: dict[str, tuple[Callable[[Signer, int], t.Evidence], Step, int]] = {
    "double-prevote": (lambda v, h: double_prevote(v, h, 3), Step.PREVOTE, 3),
    "double-precommit-block-and-nil": (_double_precommit, Step.PRECOMMIT, 2),
    "double-proposal": (_double_proposal, Step.PROPOSE, 1),
}


@pytest.mark.parametrize(("make", "step", "round_"), OFFENCES.values(), ids=OFFENCES.keys())
def test_evidence_is_recorded_once(
    scene: Scene, make: Callable[[Signer, int], t.Evidence], step: Step, round_: int
) -> None:
    s = scene
    payload = make(s.v3, H)
    key = r.evidence_key(pk(s.v3), H, round_, int(step))
    assert s.w.counter(key) == 0
    root = s.w.root()
    applied(s, s.v0, payload)
    assert s.w.root() != root
    assert s.w.counter(key) == H + 1  # the height of the block that recorded it
    assert s.w.node_sequence(s.v0) == 1
    assert s.w.node_sequence(s.v3) == 0  # the accused is not touched
    assert s.w.validators_record().current == genesis_set(s)  # no slashing in the ledger
    swapped = t.Evidence(payload.second, payload.second_signature, payload.first,
                         payload.first_signature)  # fmt: skip
    for sender in (s.v0, s.v1, s.v3):
        assert_rejected(s.w, s.tx(sender, payload), Result.EVIDENCE_KNOWN)
        assert_rejected(s.w, s.tx(sender, swapped), Result.EVIDENCE_KNOWN)
    evidence_keys = [k for k in s.w.view.items() if k[:1] == r.Prefix.EVIDENCE.value]
    assert evidence_keys == [key]


def test_evidence_swapped_is_the_same_offence(scene: Scene) -> None:
    s = scene
    first = vote(s.v2, Step.PREVOTE, H, 0, BLOCK_B)
    second = vote(s.v2, Step.PREVOTE, H, 0, BLOCK_A)
    applied(s, s.v1, evidence(first, second))  # block B first: still recorded by slot
    assert s.w.counter(r.evidence_key(pk(s.v2), H, 0, int(Step.PREVOTE))) == H + 1
    assert_rejected(s.w, s.tx(s.v0, evidence(second, first)), Result.EVIDENCE_KNOWN)


def test_each_slot_is_its_own_offence(scene: Scene) -> None:
    s = scene
    applied(s, s.v0, double_prevote(s.v3, H, 0))
    applied(s, s.v0, double_prevote(s.v3, H, 1))  # another round
    applied(s, s.v0, double_prevote(s.v3, H - 1, 0))  # another height
    applied(s, s.v0, _double_precommit(s.v3, H))  # another step
    applied(s, s.v0, double_prevote(s.v2, H, 0))  # another validator
    assert s.w.node_sequence(s.v0) == 5


def test_a_validator_may_report_itself(scene: Scene) -> None:
    applied(scene, scene.v3, double_prevote(scene.v3, H))


def test_evidence_at_the_height_of_the_block_itself(scene: Scene) -> None:
    applied(scene, scene.v0, double_prevote(scene.v3, scene.w.next_height))


def test_evidence_at_height_one(scene: Scene) -> None:
    applied(scene, scene.v0, double_prevote(scene.v3, 1))


def test_evidence_exactly_at_the_age_limit(scene: Scene) -> None:
    s = scene
    s.w.height = H + limits.EVIDENCE_AGE_MAX_BLOCKS - 1  # the next block is H + the limit
    applied(s, s.v0, double_prevote(s.v3, H))
    assert s.w.counter(r.evidence_key(pk(s.v3), H, 0, 1)) == H + limits.EVIDENCE_AGE_MAX_BLOCKS


def test_evidence_twice_in_one_block(scene: Scene) -> None:
    s = scene
    txs = s.w.sign_block((s.v0, double_prevote(s.v3, H)), (s.v1, double_prevote(s.v3, H)))
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.EVIDENCE_KNOWN]


@pytest.mark.parametrize(
    "round_", [ROUND_MAX + 1, 2**32 - 1, 2**32, 2**62], ids=["max+1", "2^32-1", "2^32", "2^62"]
)
def test_evidence_beyond_the_last_round_is_invalid(scene: Scene, round_: int) -> None:
    """Consensus never signs a round above ``ROUND_MAX``; the evidence key holds the
    round in 4 bytes. (Before rounds were bounded, 2**32 made the executor raise
    OverflowError instead of returning a code.)"""
    s = scene
    assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v3, H, round_)), Result.EVIDENCE_INVALID)


def test_evidence_at_the_last_round(scene: Scene) -> None:
    s = scene
    applied(s, s.v0, double_prevote(s.v3, H, ROUND_MAX))
    assert s.w.counter(r.evidence_key(pk(s.v3), H, ROUND_MAX, 1)) == H + 1


# --- validator kinds need the block height ------------------------------------------------------


@pytest.mark.parametrize("kind", ["evidence", "admit_issuer", "change_validators"])
def test_without_a_height_the_validator_kinds_are_refused(scene: Scene, kind: str) -> None:
    s = scene
    payload: t.Payload
    if kind == "evidence":
        payload = double_prevote(s.v3, H)
    elif kind == "admit_issuer":
        payload = admit(s.charleroi, s.v0, s.v1, s.v2)
    else:
        payload = change((entry(s.v0), entry(s.v1)), s.w.next_height + 2, s.v0, s.v1, s.v2)
    executor = BlockExecutor(s.w.view, s.w.time_ms)  # height None
    assert executor.execute(s.tx(s.v0, payload)).result == Result.INVALID_HEIGHT
    assert executor.writes() == {}
    # With the height, the same bytes apply.
    s.apply_ok(s.tx(s.v0, payload))


def test_other_kinds_do_not_need_the_height(scene: Scene) -> None:
    s = scene
    executor = BlockExecutor(s.w.view, s.w.time_ms)
    assert executor.execute(s.tx(s.alice, t.Pay(NAM, pk(s.bakery), 1_00, ""))).result == Result.OK


# --- admit_issuer -------------------------------------------------------------------------------


def test_admitted_issuer_registers_a_merchant_and_runs_a_campaign(scene: Scene) -> None:
    s = scene
    applied(s, s.v1, admit(s.charleroi, s.v3, s.v0, s.v2))  # any 3 of 4, in any order
    assert s.w.issuer(s.charleroi) == r.Issuer(
        "Charleroi", "Ville de Charleroi", ("CH-1", "CH-2"), 0, 0, 0, 0, 0
    )
    for zone in ("CH-1", "CH-2"):
        assert s.w.read(r.zone_key(zone), r.ZoneOwner.decode) == r.ZoneOwner(pk(s.charleroi))
    assert s.w.node_sequence(s.v1) == 1
    # Its zones are its own: Namur cannot register there, nor can it in Namur's.
    assert_rejected(s.w, s.tx(s.namur, register(s.stranger, "X", "47.11", "CH-1", False)),
                    Result.INVALID_ZONE)  # fmt: skip
    assert_rejected(s.w, s.tx(s.charleroi, register(s.stranger, "X", "47.11", "NA-1", False)),
                    Result.INVALID_ZONE)  # fmt: skip
    # It works like any issuer.
    applied(s, s.charleroi, register(s.stranger, "Friterie", "56.10", "CH-2", False))
    applied(s, s.charleroi, campaign("CHR", zones=("CH-2",)))
    assert s.w.campaign("CHR").issuer == pk(s.charleroi)  # type: ignore[union-attr]
    applied(s, s.bank, t.Fund("CHR", 100_00, "DEP-CHR"))
    applied(s, s.charleroi, allocate("CHR", (s.app, 20_00, "CH-1")))
    applied(s, s.app, t.Pay("CHR", pk(s.stranger), 5_00, "frites"))
    assert s.w.merchant(s.stranger).balances == ((pk(s.charleroi), 5_00),)  # type: ignore[union-attr]
    assert s.w.issuer(s.charleroi).sequence == 3  # type: ignore[union-attr]


def test_admit_with_every_approval(scene: Scene) -> None:
    applied(scene, scene.v3, admit(scene.charleroi, *scene.w.validators))


def test_admit_an_issuer_with_256_zones(scene: Scene) -> None:
    zones = tuple(f"W-{n}" for n in range(limits.ZONES_PER_ISSUER_MAX))
    s = scene
    applied(s, s.v0, admit(s.charleroi, s.v0, s.v1, s.v2, zones=zones))
    assert s.w.issuer(s.charleroi).zones == tuple(sorted(zones))  # type: ignore[union-attr]


def test_two_admissions_of_one_zone_in_a_block(scene: Scene) -> None:
    s = scene
    txs = s.w.sign_block(
        (s.v0, admit(s.charleroi, s.v0, s.v1, s.v2, zones=("CH-1",))),
        (s.v1, admit(s.stranger, s.v0, s.v1, s.v2, zones=("CH-1",), name="Autre")),
    )
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.INVALID_ZONE]


def test_the_same_issuer_admitted_twice_in_a_block(scene: Scene) -> None:
    s = scene
    payload = admit(s.charleroi, s.v0, s.v1, s.v2)
    outcome = s.w.apply(*s.w.sign_block((s.v0, payload), (s.v1, payload)))
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.ACCOUNT_EXISTS]


# --- change_validators ---------------------------------------------------------------------------


def _new_set(s: Scene) -> tuple[t.ValidatorEntry, ...]:
    """v2 and v3 leave, v4 and v5 join."""
    return (
        entry(s.v0, name="v0"), entry(s.v1, name="v1"),
        entry(s.v4, name="v4", role="region"), entry(s.v5, name="v5", role="bank"),
    )  # fmt: skip


def _schedule(s: Scene, entries: tuple[t.ValidatorEntry, ...], delay: int = 2) -> int:
    """Apply a change approved by v0..v2 in the next block; its effective height."""
    effective = s.w.next_height + delay
    applied(s, s.v0, change(entries, effective, s.v0, s.v1, s.v2))
    return effective


def test_change_takes_effect_exactly_at_its_height(scene: Scene) -> None:
    s = scene
    old, new = genesis_set(s), as_records(_new_set(s))
    effective = _schedule(s, _new_set(s), delay=3)  # block 5 schedules 8
    assert effective == 8
    assert s.w.validators_record() == r.Validators(old, new, effective)
    while s.w.next_height < effective:  # blocks 6 and 7: still the old set
        executor = s.w.executor()
        assert executor.validators_at(s.w.next_height) == old
        assert executor.validators_at(effective - 1) == old
        assert executor.validators_at(effective) == new
        assert executor.writes() == {}
        empty_block(s)
        assert s.w.validators_record() == r.Validators(old, new, effective)
    # Block 8: the change is part of the block itself, before any transaction.
    executor = s.w.executor()
    assert executor.validators_at(effective) == new
    assert executor.writes() == {
        r.validators_key(): r.Validators(new, (), 0).encode(),
        r.validator_history_key(effective): r.ValidatorEra(new).encode(),
    }
    assert s.w.check(s.tx(s.v4, double_prevote(s.v0, H))) == Result.OK
    before = s.w.root()
    empty_block(s)
    assert s.w.root() != before  # an empty block that changes the state: the set
    assert s.w.validators_record() == r.Validators(new, (), 0)
    check_invariants(s.w.view.items())
    assert s.w.executor().writes() == {}  # applied once


def test_the_change_block_may_hold_transactions(scene: Scene) -> None:
    """At the effective height the block's own transactions already see the new set."""
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    assert s.w.next_height == effective
    txs = s.w.sign_block(
        (s.v4, double_prevote(s.v0, effective)),  # a newcomer reports...
        (s.v5, admit(s.charleroi, s.v0, s.v4, s.v5)),  # ...and newcomers approve
        (s.alice, t.Pay(NAM, pk(s.bakery), 1_00, "")),
    )
    outcome = s.w.apply(*txs)
    assert [o.result for o in outcome.outcomes] == [Result.OK] * 3
    assert s.w.issuer(s.charleroi) is not None


def test_before_the_effective_height_the_old_set_rules(scene: Scene) -> None:
    s = scene
    _schedule(s, _new_set(s))
    # Block 6: the newcomers are not validators yet; the leavers still are.
    assert_rejected(s.w, s.tx(s.v4, double_prevote(s.v3, H)), Result.NOT_AUTHORIZED)
    assert_rejected(s.w, s.tx(s.v0, admit(s.charleroi, s.v0, s.v1, s.v4)),
                    Result.INSUFFICIENT_APPROVALS)  # fmt: skip
    assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v4, H)), Result.EVIDENCE_INVALID)
    assert s.w.check(s.tx(s.v3, double_prevote(s.v2, H))) == Result.OK
    assert s.w.check(s.tx(s.v2, admit(s.charleroi, s.v1, s.v2, s.v3))) == Result.OK
    txs = s.w.sign_block((s.v3, double_prevote(s.v2, H)),
                         (s.v2, admit(s.charleroi, s.v1, s.v2, s.v3)))  # fmt: skip
    assert s.w.apply(*txs).all_ok


def test_after_the_change_approvals_count_against_the_new_set(scene: Scene) -> None:
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    empty_block(s)
    assert s.w.height == effective
    # The old majority no longer suffices; two of it plus a newcomer do not either.
    for by in ((s.v0, s.v1, s.v2), (s.v1, s.v2, s.v3), (s.v0, s.v1, s.v2, s.v3),
               (s.v0, s.v1), (s.v0, s.v4)):  # fmt: skip
        assert_rejected(s.w, s.tx(s.v0, admit(s.charleroi, *by)), Result.INSUFFICIENT_APPROVALS)
    applied(s, s.v4, admit(s.charleroi, s.v0, s.v4, s.v5))
    # A further change, judged by the new set too.
    later = (entry(s.v0), entry(s.v1), entry(s.v4))
    assert_rejected(s.w, s.tx(s.v0, change(later, s.w.next_height + 2, s.v0, s.v1, s.v2)),
                    Result.INSUFFICIENT_APPROVALS)  # fmt: skip
    applied(s, s.v5, change(later, s.w.next_height + 2, s.v1, s.v4, s.v5))


def test_removed_validators_can_no_longer_send(scene: Scene) -> None:
    s = scene
    _schedule(s, _new_set(s))
    applied(s, s.v3, double_prevote(s.v1, H))  # still a validator in block 6
    empty_block(s)
    for leaver in (s.v2, s.v3):
        assert_rejected(s.w, s.tx(leaver, double_prevote(s.v0, H)), Result.NOT_AUTHORIZED)
        assert_rejected(s.w, s.tx(leaver, admit(s.charleroi, s.v0, s.v4, s.v5)),
                        Result.NOT_AUTHORIZED)  # fmt: skip
        assert_rejected(
            s.w,
            s.tx(leaver, change(_new_set(s), s.w.next_height + 2, s.v0, s.v4, s.v5)),
            Result.NOT_AUTHORIZED,
        )
    # And a leaver's new double signatures are not evidence any more.
    assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v3, s.w.next_height)),
                    Result.EVIDENCE_INVALID)  # fmt: skip
    applied(s, s.v4, double_prevote(s.v5, s.w.next_height))


def test_evidence_against_a_removed_validator_for_its_own_heights(scene: Scene) -> None:
    """The accused is judged by the set in force at the statements' height (the
    validator history), not by the set in force now: a leaver's double signature from
    its last heights is still evidence, one from after it left is not."""
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    empty_block(s)  # v3 left at height 7
    assert s.w.height == effective
    applied(s, s.v0, double_prevote(s.v3, H))
    applied(s, s.v0, double_prevote(s.v3, effective - 1))
    assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v2, effective)), Result.EVIDENCE_INVALID)
    applied(s, s.v0, double_prevote(s.v2, 1))


def test_evidence_against_a_newcomer_for_heights_before_it_joined(scene: Scene) -> None:
    """A newcomer's double signature before it joined is no offence; from its first
    height on, it is."""
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    empty_block(s)  # v4 joined at height 7
    for height in (H, effective - 1):
        assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v4, height)), Result.EVIDENCE_INVALID)
    applied(s, s.v0, double_prevote(s.v4, effective))


def test_the_validator_history(scene: Scene) -> None:
    s = scene

    def eras() -> dict[int, tuple[r.Validator, ...]]:
        return {
            int.from_bytes(k[1:], "big"): r.ValidatorEra.decode(v).validators
            for k, v in s.w.view.items().items()
            if k[:1] == r.Prefix.VALIDATOR_HISTORY.value
        }

    assert eras() == {1: genesis_set(s)}
    first = _schedule(s, _new_set(s))
    assert eras() == {1: genesis_set(s)}  # scheduled is not history yet
    empty_block(s)
    empty_block(s)
    assert eras() == {1: genesis_set(s), first: as_records(_new_set(s))}
    back = (entry(s.v0), entry(s.v1), entry(s.v4))
    second = s.w.next_height + 4
    applied(s, s.v4, change(back, second, s.v0, s.v4, s.v5))
    while s.w.next_height <= second:
        empty_block(s)
    assert eras() == {
        1: genesis_set(s), first: as_records(_new_set(s)), second: as_records(back),
    }  # fmt: skip
    # Each era judges its own heights.
    applied(s, s.v0, double_prevote(s.v3, first - 1))  # genesis era
    applied(s, s.v0, double_prevote(s.v5, second - 1))  # first change's era
    assert_rejected(s.w, s.tx(s.v0, double_prevote(s.v5, second)), Result.EVIDENCE_INVALID)


def test_power_decides_not_the_head_count(scene: Scene) -> None:
    s = scene
    weighted = (entry(s.v0, power=5), entry(s.v1), entry(s.v2), entry(s.v3))  # total 8
    _schedule(s, weighted)
    empty_block(s)
    empty_block(s)
    for by in ((s.v1, s.v2, s.v3), (s.v0,)):  # 3/8 and 5/8
        assert_rejected(s.w, s.tx(s.v1, admit(s.charleroi, *by)), Result.INSUFFICIENT_APPROVALS)
    applied(s, s.v1, admit(s.charleroi, s.v0, s.v1))  # 6/8


def test_exactly_two_thirds_is_not_enough(scene: Scene) -> None:
    s = scene
    _schedule(s, (entry(s.v0, power=2), entry(s.v1)))  # total 3
    empty_block(s)
    empty_block(s)
    assert_rejected(s.w, s.tx(s.v0, admit(s.charleroi, s.v0)), Result.INSUFFICIENT_APPROVALS)
    assert_rejected(s.w, s.tx(s.v0, admit(s.charleroi, s.v1)), Result.INSUFFICIENT_APPROVALS)
    applied(s, s.v0, admit(s.charleroi, s.v0, s.v1))


def test_three_of_four_is_just_enough(scene: Scene) -> None:
    """Genesis: 4 of power 1. 3/4 > 2/3 > 2/4."""
    s = scene
    applied(s, s.v0, admit(s.charleroi, s.v1, s.v2, s.v3))


def test_a_single_validator_set(scene: Scene) -> None:
    s = scene
    _schedule(s, (entry(s.v4, power=limits.VALIDATOR_POWER_MAX),))
    empty_block(s)
    empty_block(s)
    assert s.w.validators_record().current == (
        r.Validator(pk(s.v4), limits.VALIDATOR_POWER_MAX, entry(s.v4).name, "commune"),
    )
    applied(s, s.v4, admit(s.charleroi, s.v4))


def test_delay_bounds(scene: Scene) -> None:
    s = scene
    for delay in (limits.GOVERNANCE_DELAY_MIN_BLOCKS, limits.GOVERNANCE_DELAY_MAX_BLOCKS):
        c = s.clone()
        effective = _schedule(c, _new_set(c), delay)
        assert c.w.validators_record().pending_height == effective


def test_a_new_change_once_the_pending_one_is_in_force(scene: Scene) -> None:
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    # Block 7 = effective: the pending change is applied first, so another may be scheduled.
    assert s.w.next_height == effective
    back = (entry(s.v0), entry(s.v1), entry(s.v4))
    applied(s, s.v0, change(back, s.w.next_height + 2, s.v0, s.v1, s.v4))
    assert s.w.validators_record() == r.Validators(as_records(_new_set(s)), as_records(back),
                                                   effective + 2)  # fmt: skip


def test_two_changes_in_one_block(scene: Scene) -> None:
    s = scene
    a = change(_new_set(s), s.w.next_height + 2, s.v0, s.v1, s.v2)
    b = change((entry(s.v0),), s.w.next_height + 3, s.v0, s.v1, s.v2)
    outcome = s.w.apply(*s.w.sign_block((s.v0, a), (s.v1, b)))
    assert [o.result for o in outcome.outcomes] == [Result.OK, Result.VALIDATOR_CHANGE_PENDING]


def test_a_rejected_block_at_the_effective_height_changes_nothing(scene: Scene) -> None:
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    assert s.w.next_height == effective
    record = s.w.validators_record()
    assert_rejected(s.w, s.tx(s.alice, t.Pay(NAM, pk(s.bakery), 1_000_00, "")),
                    Result.INSUFFICIENT_FUNDS)  # fmt: skip
    assert s.w.validators_record() == record
    empty_block(s)
    assert s.w.validators_record().current == as_records(_new_set(s))


def test_an_old_validators_approval_cannot_be_replayed_after_it_left(scene: Scene) -> None:
    """Approvals are signed over the proposal, not a height: they stay valid, but only
    the signers' power in the set in force counts."""
    s = scene
    payload = admit(s.charleroi, s.v1, s.v2, s.v3)
    _schedule(s, _new_set(s))
    empty_block(s)
    empty_block(s)
    assert_rejected(s.w, s.tx(s.v0, payload), Result.INSUFFICIENT_APPROVALS)


# --- schedule_upgrade -------------------------------------------------------------------------


def _upgrade_record(s: Scene) -> r.Upgrade | None:
    raw = s.w.view.items().get(r.upgrade_key())
    return None if raw is None else r.Upgrade.decode(raw)


def test_an_upgrade_is_recorded_with_its_height_and_release(scene: Scene) -> None:
    s = scene
    assert _upgrade_record(s) is None
    height = s.w.next_height + 2
    applied(s, s.v0, upgrade(height, s.v0, s.v1, s.v2, protocol="tx2.block2", software="0.9.0"))
    record = _upgrade_record(s)
    assert record == r.Upgrade("tx2.block2", "0.9.0", height)
    assert not record.in_force(height - 1)
    assert record.in_force(height)
    assert s.w.node_sequence(s.v0) == 1


def test_a_pending_upgrade_blocks_another_until_its_height(scene: Scene) -> None:
    s = scene
    height = s.w.next_height + 2
    applied(s, s.v0, upgrade(height, s.v0, s.v1, s.v2))
    later = upgrade(s.w.next_height + 2, s.v0, s.v1, s.v2, protocol="tx2.block3")
    assert_rejected(s.w, s.tx(s.v1, later), Result.UPGRADE_PENDING)
    empty_block(s)
    assert s.w.next_height == height  # in force now: the next one may be scheduled
    applied(s, s.v1, upgrade(height + 2, s.v0, s.v1, s.v2, protocol="tx2.block3"))
    assert _upgrade_record(s) == r.Upgrade("tx2.block3", "0.9.0", height + 2)


def test_an_upgrade_is_approved_against_the_set_in_force(scene: Scene) -> None:
    s = scene
    effective = _schedule(s, _new_set(s))
    empty_block(s)
    assert s.w.next_height == effective  # v2 and v3 left, v4 and v5 joined
    stale = upgrade(s.w.next_height + 2, s.v0, s.v1, s.v2)
    assert_rejected(s.w, s.tx(s.v0, stale), Result.INSUFFICIENT_APPROVALS)
    applied(s, s.v0, upgrade(s.w.next_height + 2, s.v0, s.v1, s.v4))
