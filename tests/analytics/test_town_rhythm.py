"""The live town the devnet demo plays (``node.devnet.town.rhythm``), without a network."""

from __future__ import annotations

import random
from collections import Counter

from node.devnet.town.model import SUNDAY_OPEN, Town
from node.devnet.town.rhythm import Move, Rhythm, SimHour
from node.ledger import tx as t
from node.protocol.crypto import Signer, digest

ZONES = ("NAM-1", "NAM-2", "NAM-3")


def _rhythm(seed: int = 3) -> Rhythm:
    town = Town(seed, ZONES, households=120)
    issuer, bank = Signer(digest(b"issuer")), Signer(digest(b"bank"))
    return Rhythm(town, issuer, bank, "live", random.Random(seed))


def _week(rhythm: Rhythm, accept: bool = True) -> list[tuple[SimHour, Move]]:
    played = []
    for move in rhythm.opening(0, 1):
        rhythm.record(move, True)
    now = SimHour(4, 7)
    for _ in range(7 * 24):
        for move in rhythm.hour(now):
            rhythm.record(move, accept)
            played.append((now, move))
        now = now.next()
    return played


def test_the_same_seed_plays_the_same_week() -> None:
    first = [(h, m.signer.public_key, m.payload) for h, m in _week(_rhythm())]
    again = [(h, m.signer.public_key, m.payload) for h, m in _week(_rhythm())]
    assert first == again


def test_the_town_opens_with_its_centre_and_the_others_join() -> None:
    rhythm = _rhythm()
    opening = rhythm.opening(0, 1)
    zones = {m.payload.zone for m in opening if isinstance(m.payload, t.RegisterMerchant)}
    assert zones == {ZONES[0]}
    kinds = [type(m.payload) for m in opening[-3:]]
    assert kinds == [t.CreateCampaign, t.Fund, t.Allocate]
    _week(rhythm)
    assert not rhythm.pending
    assert {s.zone for s in rhythm.joined} == set(ZONES)


def test_a_week_has_the_town_s_rhythm() -> None:
    rhythm = _rhythm()
    played = _week(rhythm)
    kinds = Counter(type(m.payload) for _, m in played)
    assert kinds[t.Pay] > 150 and kinds[t.Transfer] > 0 and kinds[t.Redeem] > 0
    shops = {s.signer.public_key: s for s in rhythm.town.shops}
    for now, move in played:
        if isinstance(move.payload, t.Pay):
            shop = shops[move.payload.merchant]
            assert now.hour in shop.hours
            assert now.weekday != 6 or shop.category in SUNDAY_OPEN
        if isinstance(move.payload, t.Transfer):
            assert now.hour in (6, 7)
    by_day = Counter(now.weekday for now, m in played if isinstance(m.payload, t.Pay))
    assert by_day[5] > by_day[6]  # busy Saturday, quiet Sunday
    wholesaler = rhythm.town.wholesaler.public_key
    assert any(isinstance(m.payload, t.Transfer) and m.signer.public_key == wholesaler
               for _, m in played)  # fmt: skip
    # Every move recorded as accepted: no balance ever goes below zero.
    assert min(rhythm.balances.values()) >= 0
    assert min(rhythm.kept.values()) >= 0


def test_refused_moves_change_nothing() -> None:
    rhythm = _rhythm()
    played = _week(rhythm, accept=False)
    assert played
    assert set(rhythm.balances.values()) == {rhythm.town.pot_cents}
    assert not any(rhythm.kept.values())
