"""Regional campaigns: a region's vouchers spent at the shops of communes that consent.

In the scene, Liège plays the region and Namur the commune: Namur signs
``consent_zones`` naming Liège and its zone NA-1; Liège's campaign REG then names
LG-1 and NA-1; its holders pay at Namur's bakery (NA-1); the bakery's units are
Liège's, redeemed against Liège's escrow. Every step checks the invariants
(``applied``), in particular escrow == budgets + holders + merchants + pending per
issuer.
"""

from __future__ import annotations

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.codes import Result
from node.ledger.state import BlockState
from node.views.history_index import parties
from tests.ledger.conftest import Scene, allocate, assert_rejected, campaign
from tests.ledger.test_kinds import applied
from tests.ledger.world import CHAIN_ID, pk

REG = "REG"


def _regional(s: Scene) -> None:
    """Namur consents NA-1 to Liège; Liège's REG (LG-1, NA-1), funded, dora and erin hold."""
    applied(s, s.namur, t.ConsentZones(pk(s.liege), ("NA-1",)))
    applied(s, s.liege, campaign(REG, zones=("NA-1", "LG-1")))
    applied(s, s.bank, t.Fund(REG, 100_00, "DEP-REG"))
    applied(s, s.liege, allocate(REG, (s.dora, 30_00, "LG-1"), (s.stranger, 20_00, "NA-1")))


def test_consent_is_recorded_and_revoked(scene: Scene) -> None:
    s = scene
    applied(s, s.namur, t.ConsentZones(pk(s.liege), ("NA-2", "NA-1")))
    assert s.w.read(r.consent_key(pk(s.liege), pk(s.namur)), r.Consent.decode) == r.Consent(
        ("NA-1", "NA-2")
    )
    applied(s, s.namur, t.ConsentZones(pk(s.liege), ()))
    assert s.w.read(r.consent_key(pk(s.liege), pk(s.namur)), r.Consent.decode) is None


def test_regional_campaign_names_consented_zones(scene: Scene) -> None:
    s = scene
    _regional(s)
    c = s.w.campaign(REG)
    assert c is not None
    assert (c.issuer, c.zones) == (pk(s.liege), ("LG-1", "NA-1"))
    assert s.w.holder(s.stranger) == r.Holder(0, ((REG, 20_00),))


def test_region_pays_at_a_commune_shop_and_redeems_from_its_escrow(scene: Scene) -> None:
    s = scene
    _regional(s)
    namur_before = s.w.issuer(s.namur)
    applied(s, s.stranger, t.Pay(REG, pk(s.bakery), 12_00, "pain"))
    bakery = s.w.merchant(s.bakery)
    assert bakery is not None
    assert dict(bakery.balances)[pk(s.liege)] == 12_00  # the region's units
    applied(s, s.bakery, t.Redeem(pk(s.liege), 12_00))
    liege = s.w.issuer(s.liege)
    assert liege is not None and liege.pending_cents == 12_00
    assert s.w.issuer(s.namur) == namur_before  # Namur's escrow is not touched


def test_payment_at_a_zone_outside_the_campaign_is_refused(scene: Scene) -> None:
    s = scene
    _regional(s)
    # The grocer is Namur's, in NA-2: not a zone of REG.
    assert_rejected(s.w, s.tx(s.stranger, t.Pay(REG, pk(s.grocer), 1_00, "")),
                    Result.MERCHANT_NOT_ELIGIBLE)  # fmt: skip


def test_revoked_consent_stops_payments_at_the_communes_shops(scene: Scene) -> None:
    s = scene
    _regional(s)
    applied(s, s.namur, t.ConsentZones(pk(s.liege), ()))
    assert_rejected(s.w, s.tx(s.stranger, t.Pay(REG, pk(s.bakery), 1_00, "")),
                    Result.ZONE_NOT_CONSENTED)  # fmt: skip
    # The region's own shops still take the voucher.
    applied(s, s.dora, t.Pay(REG, pk(s.liege_shop), 1_00, ""))


def test_moved_shop_follows_the_consent_of_its_new_zone(scene: Scene) -> None:
    s = scene
    _regional(s)
    # Namur moves the bakery to NA-2: REG does not name it, refused by the zone rule.
    applied(s, s.namur, s.update(s.bakery, zone="NA-2"))
    assert_rejected(s.w, s.tx(s.stranger, t.Pay(REG, pk(s.bakery), 1_00, "")),
                    Result.MERCHANT_NOT_ELIGIBLE)  # fmt: skip


def test_allocation_zone_outside_both_is_refused(scene: Scene) -> None:
    s = scene
    _regional(s)
    assert_rejected(s.w, s.tx(s.liege, allocate(REG, (s.app, 1_00, "NA-2"))),
                    Result.INVALID_ZONE)  # fmt: skip


def test_the_region_reads_a_communes_consent_in_its_history(scene: Scene) -> None:
    s = scene
    signed = t.decode_tx(s.tx(s.namur, t.ConsentZones(pk(s.liege), ("NA-1",))), CHAIN_ID)
    assert isinstance(signed, t.SignedTx)
    assert parties(signed, BlockState(s.w.view)) == {pk(s.namur), pk(s.liege)}
