"""Certified histories for audit tests and the audit benchmark.

They are written with ``node.app.certified.HistoryWriter`` (re-exported here with
``certify``): certified blocks straight into a real node's data directory.
``demo_history`` writes one that uses every transaction kind the protocol has.

Keys here derive from fixed names: for tests and benchmarks, never for use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from node.app.certified import BLOCK_STEP_MS, HistoryWriter, certify
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol.crypto import Digest, Signer, digest
from node.protocol.genesis import (
    Genesis,
    GenesisAccount,
    GenesisIssuer,
    GenesisValidator,
    ProtocolLimits,
)

CHAIN_ID: Final = "relance-audit-test"
T0_MS: Final = 1_767_225_600_000
DAY_MS: Final = 86_400_000
__all__ = [
    "BLOCK_STEP_MS",
    "CHAIN_ID",
    "T0_MS",
    "Actors",
    "HistoryWriter",
    "certify",
    "demo_history",
    "fixed_key",
    "fixture_genesis",
]


def fixed_key(name: str) -> Signer:
    return Signer(digest(b"relance-audit-fixture:" + name.encode()))


# --- a history with every kind ------------------------------------------------------


@dataclass
class Actors:
    validators: list[Signer]
    bank: Signer
    issuers: list[Signer]
    auditor: Signer
    merchants: list[Signer] = field(default_factory=list)
    holders: list[Signer] = field(default_factory=list)
    sequences: dict[bytes, int] = field(default_factory=dict)

    def tx(self, who: Signer, payload: t.Payload, chain_id: str = CHAIN_ID) -> bytes:
        sequence = self.sequences.get(who.public_key, 0)
        self.sequences[who.public_key] = sequence + 1
        return t.Tx(chain_id, who.public_key, sequence, payload).sign(who).encode()


ZONES: Final = (("NAM-CENTRE", "NAM-JAMBES"), ("LGE-CENTRE",))


def fixture_genesis(validators: int = 4) -> tuple[Genesis, Actors]:
    actors = Actors(
        validators=[fixed_key(f"validator{i}") for i in range(validators)],
        bank=fixed_key("bank"),
        issuers=[fixed_key("namur"), fixed_key("liege")],
        auditor=fixed_key("auditor"),
    )
    genesis = Genesis(
        chain_id=CHAIN_ID,
        genesis_time_ms=T0_MS,
        limits=ProtocolLimits(),
        bank=GenesisAccount("Banque", actors.bank.public_key),
        validators=tuple(
            GenesisValidator(f"validator{i}", "bank" if i == 0 else "commune", s.public_key, 1)
            for i, s in enumerate(actors.validators)
        ),
        issuers=(
            GenesisIssuer("Ville de Namur", "Namur", actors.issuers[0].public_key, ZONES[0]),
            GenesisIssuer("Ville de Liège", "Liège", actors.issuers[1].public_key, ZONES[1]),
        ),
        auditors=(GenesisAccount("Auditeur", actors.auditor.public_key),),
    )
    return genesis, actors


def demo_history(path: Path) -> tuple[Genesis, Actors, HistoryWriter]:
    """A closed writer over a history of 12 blocks using every transaction kind.

    Block 8 holds two payments by one holder (index 0 and 1) and one by another.
    """
    genesis, a = fixture_genesis()
    w = HistoryWriter(path, genesis, a.validators)
    a.merchants = [fixed_key(f"shop{i}") for i in range(4)]
    a.holders = [fixed_key(f"holder{i}") for i in range(6)]
    w.commit(_merchants(a))  # 1
    w.commit(_campaigns(a))  # 2
    w.commit(_funding(a))  # 3
    w.commit(_allocations(a))  # 4
    w.commit(_payments(a))  # 5
    w.commit(_refund_transfer_sweep(a))  # 6
    w.commit(_authorized_and_redeemed(a))  # 7
    w.commit(_same_holder_twice(a))  # 8
    w.commit(_settlements(a, _payout_ids(w)))  # 9
    # 10, 11: after namur-short ends: close it, withdraw its budget
    w.commit([a.tx(a.issuers[0], t.CloseCampaign("namur-short"))], step_ms=30_000)
    w.commit([a.tx(a.bank, t.Withdraw("namur-short", 10_000, "RET-NAM-2"))])
    w.commit([])  # 12: an empty block
    w.close()
    return genesis, a, w


DEMO_UNTIL_MS: Final = T0_MS + DAY_MS  # the end of the demo's long campaigns
_PAYOUT_REFERENCE: Final = digest(b"payout reference")


def _merchants(a: Actors) -> list[bytes]:
    """Block 1: merchants, with auto-redeem and without."""
    namur, liege = a.issuers
    bakery, grocer, supplier, liege_shop = (m.public_key for m in a.merchants)
    ref = _PAYOUT_REFERENCE
    return [
        a.tx(namur, t.RegisterMerchant(bakery, "Boulangerie", "47.24", "NAM-CENTRE", ref, True)),
        a.tx(namur, t.RegisterMerchant(grocer, "Épicerie", "47.11", "NAM-JAMBES", ref, False)),
        a.tx(namur, t.RegisterMerchant(supplier, "Grossiste", "46.39", "NAM-CENTRE", ref, False)),
        a.tx(liege, t.RegisterMerchant(liege_shop, "Librairie", "47.61", "LGE-CENTRE", ref, True)),
    ]


def _campaigns(a: Actors) -> list[bytes]:
    """Block 2: two campaigns of Namur (one short), one of Liège."""
    namur, liege = a.issuers
    until = DEMO_UNTIL_MS
    return [
        a.tx(
            namur,
            t.CreateCampaign("namur-2026", "Relance Namur", (), ("47",), T0_MS, until, 20_000),
        ),
        a.tx(
            namur,
            t.CreateCampaign("namur-short", "Namur court", (), (), T0_MS, T0_MS + 20_000, 5_000),
        ),
        a.tx(liege, t.CreateCampaign("liege-2026", "Relance Liège", (), (), T0_MS, until, 10_000)),
    ]


def _funding(a: Actors) -> list[bytes]:
    """Block 3: the bank funds the three campaigns."""
    return [
        a.tx(a.bank, t.Fund("namur-2026", 100_000, "DEP-NAM-1")),
        a.tx(a.bank, t.Fund("namur-short", 10_000, "DEP-NAM-2")),
        a.tx(a.bank, t.Fund("liege-2026", 50_000, "DEP-LGE-1")),
    ]


def _allocations(a: Actors) -> list[bytes]:
    """Block 4: four holders of namur-2026, one of namur-short, one of liege-2026."""
    namur, liege = a.issuers
    h = a.holders
    first_four = tuple(t.Allocation(x.public_key, 10_000, "NAM-CENTRE") for x in h[:4])
    return [
        a.tx(namur, t.Allocate("namur-2026", first_four)),
        a.tx(
            namur, t.Allocate("namur-short", (t.Allocation(h[4].public_key, 3_000, "NAM-JAMBES"),))
        ),
        a.tx(
            liege, t.Allocate("liege-2026", (t.Allocation(h[5].public_key, 8_000, "LGE-CENTRE"),))
        ),
    ]


def _payments(a: Actors) -> list[bytes]:
    """Block 5: payments (the bakery redeems by itself; the grocer keeps its units)."""
    bakery, grocer, _, liege_shop = (m.public_key for m in a.merchants)
    h = a.holders
    return [
        a.tx(h[0], t.Pay("namur-2026", bakery, 1_250, "pain")),
        a.tx(h[1], t.Pay("namur-2026", grocer, 4_000, "courses")),
        a.tx(h[5], t.Pay("liege-2026", liege_shop, 2_000, "livre")),
    ]


def _refund_transfer_sweep(a: Actors) -> list[bytes]:
    """Block 6: refund, transfer to a supplier, sweep of a bearer voucher, reissue."""
    namur = a.issuers[0]
    grocer, supplier = a.merchants[1], a.merchants[2]
    h = a.holders
    wallet2, wallet3 = fixed_key("wallet2").public_key, fixed_key("wallet3").public_key
    return [
        a.tx(grocer, t.Refund(h[1].public_key, "namur-2026", 500, "retour")),
        a.tx(grocer, t.Transfer(supplier.public_key, namur.public_key, 1_000, "stock")),
        a.tx(h[2], t.Sweep("namur-2026", wallet2)),
        a.tx(namur, t.Reissue("namur-2026", h[3].public_key, wallet3)),
    ]


def _authorized_and_redeemed(a: Actors) -> list[bytes]:
    """Block 7: a merchant-completed payment (the holder's signed authorization), redemptions."""
    namur = a.issuers[0].public_key
    grocer, supplier = a.merchants[1], a.merchants[2]
    holder = a.holders[0]
    auth = t.Authorization(
        holder.public_key, "namur-2026", grocer.public_key, 3_000, DEMO_UNTIL_MS, bytes(16)
    )
    return [
        a.tx(grocer, t.PayAuthorized(auth, auth.sign(holder, CHAIN_ID), 2_500, "panier")),
        a.tx(grocer, t.Redeem(namur, 2_000)),
        a.tx(supplier, t.Redeem(namur, 1_000)),
    ]


def _same_holder_twice(a: Actors) -> list[bytes]:
    """Block 8: three payments, two by the same holder."""
    bakery = a.merchants[0].public_key
    h = a.holders
    return [
        a.tx(h[0], t.Pay("namur-2026", bakery, 300, "croissant")),
        a.tx(h[0], t.Pay("namur-2026", bakery, 200, "café")),
        a.tx(h[1], t.Pay("namur-2026", bakery, 700, "gâteau")),
    ]


def _settlements(a: Actors, payouts: list[bytes]) -> list[bytes]:
    """Block 9: settlements (one batch reference for several payouts)."""
    return [
        a.tx(a.bank, t.Settle(tuple(t.Settlement(Digest(p), "VIR-0001") for p in payouts[:3]))),
        a.tx(a.bank, t.Settle(tuple(t.Settlement(Digest(p), "VIR-0002") for p in payouts[3:]))),
    ]


def _payout_ids(w: HistoryWriter) -> list[bytes]:
    return sorted(
        key[1:]
        for key, value in w.store.iter_prefix(r.Prefix.PAYOUT.value)
        if not r.Payout.decode(value).settled
    )
