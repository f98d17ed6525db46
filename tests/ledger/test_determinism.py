"""Determinism: the same input history gives the same state, byte for byte.

A hypothesis-generated sequence of blocks (a fixed opening scene, then random
transactions of every kind, valid and not, validator kinds included: evidence,
admissions and validator changes that take effect blocks later) is applied to two fresh Worlds.
After every block both hold byte-identical items, writes, result codes and
roots; a tree rebuilt from the items, and a tree and a view fed the block's
writes in another key order, all reach the same root and items.
"""

from __future__ import annotations

from collections import Counter as Tally
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from node.ledger import records as r
from node.ledger import tx as t
from node.ledger.execute import VALIDATOR_KINDS
from node.ledger.state import DictView
from node.protocol.crypto import Digest, PublicKey, Signer, digest
from node.protocol.state_tree import StateTree
from node.protocol.statements import Step
from tests.ledger.conftest import BLOCK_A, BLOCK_B, admit, change, entry, evidence, vote
from tests.ledger.invariants import check_invariants, check_sequences_monotonic
from tests.ledger.world import CHAIN_ID, DAY_MS, World, signer

HOUR_MS = 3_600_000
ISSUERS = ("namur", "liege")
HOLDERS = tuple(f"dh{i}" for i in range(4))
MERCHANTS = tuple(f"dm{i}" for i in range(4))
CAMPAIGNS = ("D0", "D1", "D2")
VALIDATORS = tuple(f"validator{i}" for i in range(6))  # 0..3 in genesis, 4 and 5 may join
NEW_ISSUERS = tuple(f"di{i}" for i in range(4))
KEYS: dict[str, Signer] = {
    name: signer(name)
    for name in ("bank", *ISSUERS, *HOLDERS, *MERCHANTS, *VALIDATORS, *NEW_ISSUERS)
}
NAME_OF: dict[bytes, str] = {key.public_key: name for name, key in KEYS.items()}


def pk(name: str) -> PublicKey:
    return KEYS[name].public_key


# The opening scene: merchants of both issuers, three campaigns, budgets, pots.
SCENE: tuple[tuple[str, t.Payload], ...] = (
    ("namur", t.RegisterMerchant(pk("dm0"), "Boulangerie", "10.71", "NA-1", digest(b"a"), False)),
    ("namur", t.RegisterMerchant(pk("dm1"), "Épicerie", "47.11", "NA-2", digest(b"b"), True)),
    ("namur", t.RegisterMerchant(pk("dm2"), "Grossiste", "46.39", "NA-1", digest(b"c"), False)),
    ("liege", t.RegisterMerchant(pk("dm3"), "Librairie", "47.61", "LG-1", digest(b"d"), False)),
    ("namur", t.CreateCampaign("D0", "Relance", (), (), 0, 0, 5_000)),
    ("namur", t.CreateCampaign("D1", "Quartier", ("NA-1",), ("10", "47"), 0, 0, 2_000)),
    ("liege", t.CreateCampaign("D2", "Liège", (), (), 0, 0, 4_000)),
    ("bank", t.Fund("D0", 20_000, "scene-0")),
    ("bank", t.Fund("D1", 5_000, "scene-1")),
    ("bank", t.Fund("D2", 8_000, "scene-2")),
)

KINDS = (
    "pay", "pay_authorized", "sweep", "refund", "transfer", "redeem", "settle", "allocate",
    "return_payout", "fund", "withdraw", "close", "reissue", "suspend", "update",
    "evidence", "admit_issuer", "change_validators",
)  # fmt: skip

ops = st.tuples(
    st.sampled_from(KINDS),
    st.integers(0, 3),  # who
    st.integers(0, 3),  # whom
    st.integers(0, 2),  # campaign
    st.integers(0, 40).map(lambda x: 25 * x if x else -1),  # cents
)
blocks = st.lists(
    st.tuples(
        st.sampled_from((0, HOUR_MS, DAY_MS, DAY_MS, 8 * DAY_MS)),
        st.lists(ops, min_size=1, max_size=3),
    ),
    min_size=1,
    max_size=16,
)


class Script:
    """Turns drawn op tuples into signed transactions, reading the first world."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.nonce = 0
        self.reference = 0

    def payouts(self) -> list[Digest]:
        found = []
        for key, value in sorted(self.world.view.items().items()):
            if key[:1] != r.Prefix.PAYOUT.value:
                continue
            payout = r.Payout.decode(value)
            if not payout.settled and not payout.returned:
                found.append(Digest(key[1:]))
        return found

    def in_force(self) -> list[str]:
        """Names of the validators in force, in the set's order."""
        return [NAME_OF[v.public_key] for v in self.world.validators_record().current]

    def validator_payload(self, kind: str, who: int, whom: int, c: int) -> tuple[str, Any]:
        """Senders and approvers mostly from the set in force; sometimes from outside it."""
        members = self.in_force()
        sender = VALIDATORS[who + 2] if c == 2 else members[who % len(members)]
        if kind == "evidence":
            accused = KEYS[VALIDATORS[(whom + c) % len(VALIDATORS)]]
            height = max(1, self.world.height - whom)
            first = vote(accused, Step.PREVOTE, height, c, BLOCK_A)
            second = vote(accused, Step.PREVOTE, height, c, None if whom % 2 else BLOCK_B)
            return sender, evidence(first, second)
        approvers = [KEYS[n] for n in members[: 1 + (whom + c) % len(members)]]
        if kind == "admit_issuer":
            zones = (f"D{whom}", f"E{c}")
            return sender, admit(KEYS[NEW_ISSUERS[whom]], *approvers, zones=zones)
        chosen = sorted(
            {VALIDATORS[(who + i * (1 + c)) % len(VALIDATORS)] for i in range(1 + whom)}
        )
        entries = tuple(entry(KEYS[n], power=1 + (i + c) % 3) for i, n in enumerate(chosen))
        return sender, change(entries, self.world.next_height + 1 + whom, *approvers)

    def payload(self, kind: str, who: int, whom: int, c: int, cents: int) -> tuple[str, Any]:
        if kind in ("evidence", "admit_issuer", "change_validators"):
            return self.validator_payload(kind, who, whom, c)
        code = CAMPAIGNS[c]
        issuer = "liege" if code == "D2" else "namur"
        holder, other = HOLDERS[who], HOLDERS[whom]
        merchant, supplier = MERCHANTS[who], MERCHANTS[whom]
        if kind == "pay":
            return holder, t.Pay(code, pk(supplier), cents, "")
        if kind == "pay_authorized":
            self.nonce += 1
            auth = t.Authorization(
                pk(other), code, b"", cents + 10, self.world.time_ms + HOUR_MS,
                digest(b"%d" % self.nonce)[: t.NONCE_BYTES],
            )  # fmt: skip
            signature = auth.sign(KEYS[other], CHAIN_ID)
            return merchant, t.PayAuthorized(auth, signature, cents, "")
        if kind == "sweep":
            return holder, t.Sweep(code, pk(other))
        if kind == "refund":
            return merchant, t.Refund(pk(other), code, cents // 4, "")
        if kind == "transfer":
            return merchant, t.Transfer(pk(supplier), pk(ISSUERS[c % 2]), cents // 4, "")
        if kind == "redeem":
            return merchant, t.Redeem(pk(ISSUERS[c % 2]), cents // 4)
        if kind == "settle":
            ids = self.payouts()[: whom + 1] or [Digest(digest(b"none"))]
            return "bank", t.Settle(tuple(t.Settlement(i, f"bt-{who}") for i in ids))
        if kind == "return_payout":
            ids = self.payouts() or [Digest(digest(b"none"))]
            return "bank", t.ReturnPayout(ids[whom % len(ids)], "AC04", f"rt-{who}")
        if kind == "allocate":
            zone = "LG-1" if issuer == "liege" else "NA-1"
            rows = tuple(t.Allocation(pk(HOLDERS[(who + i) % 4]), cents, zone) for i in range(whom))
            return issuer, t.Allocate(code, rows)
        if kind in ("fund", "withdraw"):
            self.reference += 1
            ref = f"ref-{self.reference if who else 1}"
            cls = t.Fund if kind == "fund" else t.Withdraw
            return "bank", cls(code, cents, ref)
        if kind == "close":
            return issuer, t.CloseCampaign(code)
        if kind == "reissue":
            return issuer, t.Reissue(code, pk(holder), pk(other))
        if kind == "suspend":
            return "namur", t.SuspendMerchant(pk(merchant), whom == 0)
        m = self.world.merchant(pk(merchant))
        zone = "NA-2" if m is None or m.zone == "NA-1" else "NA-1"
        category = "47.19" if m is None else m.category
        return "namur", t.UpdateMerchant(
            pk(merchant), "Shop", category, zone, digest(b"x"), bool(c)
        )

    def sign_block(self, steps: list[tuple[str, Any]]) -> list[bytes]:
        next_seq: dict[tuple[bool, bytes], int] = {}
        out = []
        for who, payload in steps:
            key = KEYS[who]
            counter = (payload.KIND in VALIDATOR_KINDS, key.public_key)
            seq = next_seq.get(counter, self.world.next_sequence(key, payload.KIND))
            next_seq[counter] = seq + 1
            out.append(t.Tx(CHAIN_ID, key.public_key, seq, payload).sign(key).encode())
        return out


def _scene_payloads(time_ms: int) -> list[tuple[str, Any]]:
    """The scene with campaign windows placed around ``time_ms``."""
    steps: list[tuple[str, Any]] = []
    for n, (who, payload) in enumerate(SCENE):
        step: Any = payload
        if isinstance(payload, t.CreateCampaign):
            length = (20, 30, 40)[n % 3] * DAY_MS
            step = t.CreateCampaign(
                payload.campaign, payload.name, payload.zones, payload.categories,
                time_ms, time_ms + length, payload.max_per_holder_cents,
            )  # fmt: skip
        steps.append((who, step))
    return steps


def _items_bytes(world: World) -> list[tuple[bytes, bytes]]:
    return sorted(world.view.items().items())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=blocks, data=st.data())
def test_same_blocks_same_state_and_root(
    script: list[tuple[int, list[tuple[str, int, int, int, int]]]], data: st.DataObject
) -> None:
    a, b = World(), World()
    b.records = None  # a executes above the cache of decoded records, b reads its view only
    build = Script(a)
    shuffled_tree = StateTree.from_items(a.view.items().items())
    shuffled_view = DictView(a.view.items())
    assert a.root() == b.root() == shuffled_tree.root()

    d0 = tuple(t.Allocation(pk(h), 1_500, "NA-2") for h in HOLDERS)
    opening: list[list[tuple[str, Any]]] = [
        _scene_payloads(a.time_ms),
        [
            ("namur", t.Allocate("D0", d0)),
            ("namur", t.Allocate("D1", (t.Allocation(pk("dh0"), 900, "NA-1"),))),
            ("liege", t.Allocate("D2", (t.Allocation(pk("dh1"), 1_200, "LG-1"),))),
        ],
    ]
    planned: list[tuple[int, list[tuple[str, Any]] | None, list[tuple[str, int, int, int, int]]]]
    planned = [(0, steps, []) for steps in opening]
    planned += [(dt, None, chosen) for dt, chosen in script]

    for dt, fixed, chosen in planned:
        a.time_ms += dt
        b.time_ms += dt
        steps = fixed if fixed is not None else [build.payload(*op) for op in chosen]
        txs = build.sign_block(steps)
        before = a.view.items()
        out_a = a.apply(*txs)
        out_b = b.apply(*txs)
        assert [o.result for o in out_a.outcomes] == [o.result for o in out_b.outcomes]
        for o in out_a.outcomes:
            event(f"{o.kind.name if o.kind else '?'}: {o.result.name}")
        assert list(out_a.writes.items()) == list(out_b.writes.items())
        assert _items_bytes(a) == _items_bytes(b)
        assert a.root() == b.root()
        assert a.height == b.height
        a.check_record_cache()
        if fixed is not None:
            assert out_a.all_ok, [o.result.name for o in out_a.outcomes]
        if out_a.all_ok:
            order = data.draw(st.permutations(list(out_a.writes)), label="write order")
            reordered = {key: out_a.writes[key] for key in order}
            shuffled_tree.update(reordered)
            shuffled_view.apply(reordered)
            applied = Tally(o.sender for o in out_a.outcomes if o.sender is not None)
        else:
            assert a.view.items() == before
            applied = Tally()
        assert shuffled_tree.root() == a.root()
        assert shuffled_view.items() == a.view.items()
        assert StateTree.from_items(a.view.items().items()).root() == a.root()
        check_sequences_monotonic(before, a.view.items(), applied)
        check_invariants(a.view.items())

    final = a.view.items()
    assert StateTree.from_items(final.items()).root() == a.root()
    assert StateTree.from_items(sorted(final.items(), reverse=True)).root() == a.root()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(script=blocks)
def test_replaying_a_history_gives_the_same_roots(
    script: list[tuple[int, list[tuple[str, int, int, int, int]]]],
) -> None:
    """A node replaying recorded blocks later (one at a time) lands on every recorded root."""
    live = World()
    build = Script(live)
    recorded: list[tuple[int, list[bytes], bytes]] = []
    first = build.sign_block(_scene_payloads(live.time_ms))
    assert live.apply(*first).all_ok
    recorded.append((live.time_ms, first, live.root()))
    for dt, chosen in script:
        live.time_ms += dt
        txs = build.sign_block([build.payload(*op) for op in chosen])
        if live.apply(*txs).all_ok:
            recorded.append((live.time_ms, txs, live.root()))

    replica = World()
    for time_ms, txs, root in recorded:
        replica.time_ms = time_ms
        assert replica.apply(*txs).all_ok
        assert replica.root() == root
    assert sorted(replica.view.items().items()) == sorted(live.view.items().items())
