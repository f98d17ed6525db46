"""Account key rotation (``rotate_key``, kind 23): governance moves an account's signing key.

Namur's signing authority moves to ``namur-next`` from a height: before it Namur's own
key signs and the new one is refused (``KEY_NOT_YET_IN_FORCE``); from it the old key is
refused (``KEY_ROTATED``) and the new one signs for Namur, with Namur's sequence, its
campaigns and merchants staying Namur's. A second rotation retires ``namur-next`` the same
way. The bank's key moves too; the moved-to key can never take another role.
"""

from __future__ import annotations

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import principal_of
from node.ledger.state import BlockState
from node.protocol.crypto import Signer
from tests.ledger.conftest import NAM, Scene, allocate, assert_rejected, campaign, rotation
from tests.ledger.invariants import check_invariants
from tests.ledger.world import signer

NEXT = signer("namur-next")
THIRD = signer("namur-third")


def _as(s: Scene, key: Signer, account: Signer, payload: t.Payload) -> bytes:
    """``payload`` signed by ``key`` with ``account``'s next sequence."""
    return s.tx(key, payload, s.w.next_sequence(account, payload.KIND))


def _applied_as(s: Scene, key: Signer, account: Signer, payload: t.Payload) -> None:
    assert s.w.apply(_as(s, key, account, payload)).all_ok
    s.w.sequences[account.public_key] = s.w.sequences.get(account.public_key, 0) + 1
    check_invariants(s.w.view.items())
    s.w.check_record_cache()  # the index of role keys holds the delegate keys too


def _rotate(s: Scene, account: Signer, new_key: Signer) -> int:
    """Schedule the rotation two blocks ahead; the height it takes effect."""
    height = s.w.next_height + 2
    s.do(s.v0, rotation(account, new_key, height, s.v0, s.v1, s.v2))
    s.w.check_record_cache()
    return height


def test_the_new_key_signs_for_the_account_from_the_height(scene: Scene) -> None:
    s = scene
    at = _rotate(s, s.namur, NEXT)
    record = r.SigningKey.decode(s.w.view.items()[r.signing_key_key(s.namur.public_key)])
    assert record == r.SigningKey(NEXT.public_key, at, s.namur.public_key)
    early = campaign("EARLY")
    assert_rejected(s.w, _as(s, NEXT, s.namur, early), Result.KEY_NOT_YET_IN_FORCE)
    s.do(s.namur, early)  # the block before the height: Namur's own key still signs
    assert s.w.next_height == at

    assert_rejected(s.w, s.tx(s.namur, campaign("LATE")), Result.KEY_ROTATED)
    sequence = s.w.next_sequence(s.namur, t.Kind.CREATE_CAMPAIGN)
    _applied_as(s, NEXT, s.namur, campaign("LATE"))
    late = s.w.campaign("LATE")
    assert late is not None and late.issuer == s.namur.public_key  # still Namur's
    issuer = s.w.issuer(s.namur)
    assert issuer is not None and issuer.sequence == sequence + 1
    _applied_as(s, NEXT, s.namur, allocate(NAM, (signer("zoe"), 5_00, "NA-1")))


def test_a_second_rotation_retires_the_key_before_it(scene: Scene) -> None:
    s = scene
    _rotate(s, s.namur, NEXT)
    s.w.apply()
    s.w.apply()
    second = _rotate(s, s.namur, THIRD)  # scheduled by the validators, not by a key
    assert_rejected(s.w, _as(s, THIRD, s.namur, campaign("EARLY")), Result.KEY_NOT_YET_IN_FORCE)
    _applied_as(s, NEXT, s.namur, campaign("STILL"))  # NEXT signs until the second height
    assert s.w.next_height == second
    for old in (NEXT, s.namur):
        assert_rejected(s.w, _as(s, old, s.namur, campaign("OLD")), Result.KEY_ROTATED)
    _applied_as(s, THIRD, s.namur, campaign("THIRD"))
    record = r.SigningKey.decode(s.w.view.items()[r.signing_key_key(s.namur.public_key)])
    assert record == r.SigningKey(THIRD.public_key, second, NEXT.public_key)


def test_the_bank_moves_its_key_and_whom_a_key_acts_for(scene: Scene) -> None:
    s = scene
    bank_next = signer("bank-next")
    at = _rotate(s, s.bank, bank_next)
    s.w.apply()
    fund = t.Fund(NAM, 10_00, "DEP-ROT-1")
    assert_rejected(s.w, s.tx(s.bank, fund), Result.KEY_ROTATED)
    _applied_as(s, bank_next, s.bank, fund)
    state = BlockState(s.w.view)
    kind = t.Kind.FUND
    assert principal_of(state, kind, bank_next.public_key, at) == s.bank.public_key
    assert principal_of(state, kind, bank_next.public_key, at - 1) == Result.KEY_NOT_YET_IN_FORCE
    assert principal_of(state, kind, s.bank.public_key, at - 1) == s.bank.public_key
    assert principal_of(state, kind, s.bank.public_key, at) == Result.KEY_ROTATED
    # Holder and merchant kinds are never resolved: a holder is its key.
    assert principal_of(state, t.Kind.PAY, s.bank.public_key, at) == s.bank.public_key


def test_the_moved_to_key_takes_no_other_role(scene: Scene) -> None:
    s = scene
    _rotate(s, s.namur, NEXT)
    assert_rejected(s.w, s.tx(s.namur, allocate(NAM, (NEXT, 5_00, "NA-1"))), Result.NOT_A_HOLDER)
    assert_rejected(
        s.w,
        s.tx(NEXT, t.Pay(NAM, s.bakery.public_key, 1_00, "")),
        Result.NOT_AUTHORIZED,  # not a holder either: it signs for Namur
    )
    again = rotation(s.liege, NEXT, s.w.next_height + 2, s.v0, s.v1, s.v2)
    assert_rejected(s.w, s.tx(s.v0, again), Result.ACCOUNT_EXISTS)
