"""Rules per protocol (``node.ledger.protocols``): the protocol in force picks the rules.

The ledger tests' release knows today's protocol and ``tx3.block2``, whose memos hold
16 characters (``tests.ledger.world.TEST_RULEBOOK``). Governance schedules it for a
height: a payment with a longer memo is applied in the block before, refused from the
height on; a release that does not know the protocol refuses to execute that height.
"""

from __future__ import annotations

import pytest

from node.app.version import PROTOCOL_VERSION, RULEBOOK
from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.execute import BlockExecutor
from node.ledger.protocols import Rulebook, RuleSet, UnknownProtocol
from tests.ledger.conftest import LG, NAM, Scene, assert_rejected, upgrade
from tests.ledger.world import NEXT_PROTOCOL, TEST_RULEBOOK

AT = 20
LONG_MEMO = "pain et croissants"  # 18 characters: over tx3.block2's 16
SHORT_MEMO = "pain"


def test_the_rules_are_those_of_the_protocol_in_force_at_each_height() -> None:
    book = TEST_RULEBOOK
    today, after = book.rules[PROTOCOL_VERSION], book.rules[NEXT_PROTOCOL]
    assert today.memo_chars_max == 140 and after.memo_chars_max == 16
    assert book.at(None, 1) is today  # no upgrade: the genesis protocol
    scheduled = r.Upgrade(NEXT_PROTOCOL, "0.9.0", AT, PROTOCOL_VERSION)
    assert book.at(scheduled, AT - 1) is today
    assert book.at(scheduled, AT) is after
    assert book.at(scheduled, AT + 1_000) is after
    assert book.at(scheduled, None) is after  # no height: after every recorded upgrade
    # A second upgrade names the one before it: the heights before it keep its rules.
    back = r.Upgrade(PROTOCOL_VERSION, "1.0.0", AT + 10, NEXT_PROTOCOL)
    assert book.at(back, AT + 9) is after
    assert book.at(back, AT + 10) is today


def test_an_unknown_protocol_is_refused_clearly() -> None:
    scheduled = r.Upgrade("tx9.block9", "2.0.0", AT, PROTOCOL_VERSION)
    assert RULEBOOK.at(scheduled, AT - 1) == RuleSet(PROTOCOL_VERSION)
    with pytest.raises(UnknownProtocol) as raised:
        RULEBOOK.at(scheduled, AT)
    message = str(raised.value)
    assert f"protocol tx9.block9 is in force at height {AT}" in message
    assert f"it knows {PROTOCOL_VERSION}" in message
    assert "install a release that knows it" in message
    assert raised.value.protocol == "tx9.block9" and raised.value.height == AT


def test_a_rulebook_has_rules_for_its_genesis_protocol_under_their_own_names() -> None:
    with pytest.raises(ValueError, match="no rules for its genesis protocol"):
        Rulebook("tx1.block1", {"tx2.block1": RuleSet("tx2.block1")})
    with pytest.raises(ValueError, match="are those of"):
        Rulebook("a", {"a": RuleSet("a"), "b": RuleSet("c")})
    grown = RULEBOOK.with_rules(RuleSet("x", memo_chars_max=1))
    assert grown.genesis == PROTOCOL_VERSION and grown.known() == {PROTOCOL_VERSION, "x"}
    assert RULEBOOK.known() == {PROTOCOL_VERSION}  # with_rules made a new one


def _upgrade_at(s: Scene, height: int) -> None:
    s.do(s.v0, upgrade(height, s.v0, s.v1, s.v2, protocol=NEXT_PROTOCOL))


def _pay(s: Scene, memo: str) -> bytes:
    return s.tx(s.alice, t.Pay(NAM, s.bakery.public_key, 1_00, memo))


def test_a_memo_accepted_before_the_upgrade_is_refused_after_it(scene: Scene) -> None:
    s = scene
    height = s.w.next_height + 2
    _upgrade_at(s, height)
    assert s.w.next_height == height - 1
    assert s.w.apply(_pay(s, LONG_MEMO)).all_ok  # the old rules, in the block before
    assert s.w.next_height == height
    assert s.w.executor().rules == TEST_RULEBOOK.rules[NEXT_PROTOCOL]
    assert_rejected(s.w, _pay(s, LONG_MEMO), Result.INVALID_FIELD)
    transfer = t.Transfer(s.supplier.public_key, s.namur.public_key, 1_00, LONG_MEMO)
    assert_rejected(s.w, s.tx(s.bakery, transfer), Result.INVALID_FIELD)
    refund = t.Refund(s.dora.public_key, LG, 1_00, LONG_MEMO)
    assert_rejected(s.w, s.tx(s.liege_shop, refund), Result.INVALID_FIELD)
    assert s.w.apply(_pay(s, SHORT_MEMO)).all_ok  # a memo of 16 or fewer still passes
    assert s.w.apply(_pay(s, "x" * 16)).all_ok


def test_a_release_without_the_protocol_does_not_execute_its_heights(scene: Scene) -> None:
    s = scene
    height = s.w.next_height + 2
    _upgrade_at(s, height)
    assert s.w.apply().all_ok
    old = Rulebook.of(RuleSet(PROTOCOL_VERSION))
    BlockExecutor(s.w.view, s.w.time_ms, height - 1, rulebook=old)  # the last block it knows
    with pytest.raises(UnknownProtocol, match=f"{NEXT_PROTOCOL} is in force at height {height}"):
        BlockExecutor(s.w.view, s.w.time_ms, height, rulebook=old)
