"""Every derived view over random histories of every transaction kind (issue 14).

Each example is a chain executed by the real ledger (``tests.analytics.chain``): a
fixed story that commits every kind at least once (among them payouts returned by
the bank whose units are then redeemed, transferred and refunded, an auto-redeemed
payment returned, reissue, sweep, withdraw, close, suspend and reinstate, a commune
admitted by the validators), then random operations, up to three per block, built
from the current state so that most apply (a block with a rejected one is dropped).
The derived views follow the blocks one at a time, as the node feeds them:

- the analytics index (``node.analytics.index``);
- the history index with the merchants' totals (``node.views.history``), and the
  event stream's per-block events (``node.api.feeds``), fed as the node's view runner
  feeds them (``node.views.runner``);
- the settlement service's block watcher filling its journal.

No view may raise; after every block the analytics, the merchants' totals and the
journal reconcile with the ledger's books (holder, merchant and campaign balances,
budgets, escrow, pending and redeemed payouts per issuer, each payout's state);
at the end each view's incremental result equals its rebuild from all the blocks
at once. Derandomized, so a failure replays (and shrinks to a few operations).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from node.analytics import report as rep
from node.analytics.index import AnalyticsIndex
from node.api.access import Role, Scope, Viewer
from node.api.feeds import EventsView
from node.api.stream import Event, Hub
from node.app.ledger_app import DecodedTxs, LedgerApp
from node.consensus.types import Block
from node.ledger import records as r
from node.ledger import tx as t
from node.protocol.crypto import Digest, PublicKey, Signer
from node.protocol.genesis import Genesis
from node.settlement.journal import Journal, PayoutState, open_journal
from node.settlement.service import Settings, SettlementService
from node.views.base import FedBlock, as_accounts
from node.views.history import HistoryView
from node.views.history_index import HistoryIndex
from tests.analytics.chain import HOUR_MS, Chain
from tests.ledger.invariants import DecodedState, check_invariants, decode_state
from tests.ledger.world import CHAIN_ID, DAY_MS, T0_MS, World, signer

HOLDERS = tuple(signer(f"every-view-h{n}") for n in range(8))
MERCHANTS = tuple(signer(f"every-view-m{n}") for n in range(5))
DINANT = signer("every-view-dinant")
DINANT_NEXT = signer("every-view-dinant-next")  # Dinant's signing key after the rotation
DINANT_CAMPAIGN = "DIN"
LONG, SHORT, LIEGE, REGION = "nam-long", "nam-short", "lg", "lg-region"
CAMPAIGNS = (LONG, SHORT, LIEGE, REGION)  # REGION: Liège's, also at Namur's shops of NA-1
IBAN = Digest(bytes(32))
SHORT_END_MS = T0_MS + 3 * DAY_MS
# The views' databases sync every block: on tmpfs where there is one, so the test is
# bound by the computation, not by the disk.
SCRATCH = "/dev/shm" if Path("/dev/shm").is_dir() else None


def holder(n: int) -> PublicKey:
    return HOLDERS[n].public_key


def shop(n: int) -> PublicKey:
    return MERCHANTS[n].public_key


# --- the views, fed block by block as the node feeds them -----------------------------------


class ChainStore:
    """What the views read of the node's store: the state, the height, the blocks."""

    def __init__(self, chain: Chain) -> None:
        self._chain = chain

    def get(self, key: bytes) -> bytes | None:
        return self._chain.world.view.get(key)

    def iter_prefix(self, prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
        return self._chain.world.view.iter_prefix(prefix)

    def height(self) -> int:
        return len(self._chain.blocks)

    def block(self, height: int) -> bytes | None:
        blocks = self._chain.blocks
        return blocks[height - 1].encode() if 1 <= height <= len(blocks) else None


@dataclass
class Ledger:
    """The part of ``LedgerApp`` the views use."""

    genesis: Genesis
    store: ChainStore
    decoded: DecodedTxs
    records: None = None


class Views:
    """Every derived view of one node, over its own directory."""

    def __init__(self, chain: Chain, home: Path) -> None:
        world = chain.world
        self.ledger = Ledger(world.genesis, ChainStore(chain), DecodedTxs(CHAIN_ID))
        ledger = cast(LedgerApp, self.ledger)
        self.analytics = AnalyticsIndex(world.genesis)
        self.history = HistoryIndex.open(home / "history")
        self.history_view = HistoryView(self.history, self.ledger.store, None)
        hub = Hub()
        self.events_view = EventsView(hub, self.ledger.store, None, lambda: 0)
        feed = hub.subscribe(Viewer(world.auditor.public_key, Role.AUDITOR, Scope.ACCOUNT))
        assert feed is not None
        self._feed = feed
        self.events: list[Event] = []
        self.journal: Journal = open_journal(home / "settlement")
        bank = Settings(world.bank, DAY_MS, home / "settlement")
        self.settlement = SettlementService(ledger, self.journal, bank, lambda _: None)

    def add(self, block: Block) -> None:
        """One finalised block, as the node's listeners take it."""
        self.analytics.add_block(block, self.ledger.decoded.decode)
        fed = self._fed(block)
        self.history_view.apply(fed)  # the history index, then the stream's events
        self.events_view.apply(fed)
        self._drain()
        self.settlement._ingest_to_tip()  # the bank node's block watcher

    def rebuild(self, blocks: list[Block]) -> None:
        """Every view from all the blocks at once, over the latest state."""
        assert self.analytics.catch_up(blocks) == len(blocks)
        assert self.history.catch_up(blocks, CHAIN_ID, self.ledger.store) == len(blocks)
        for block in blocks:
            self.events_view.apply(self._fed(block))
            self._drain()
        self.settlement._ingest_to_tip()

    def _fed(self, block: Block) -> FedBlock:
        txs = [self.ledger.decoded.decode(data) for data in block.txs]
        signed = tuple(s for s in txs if isinstance(s, t.SignedTx))
        return FedBlock(block, as_accounts(signed, self.ledger.store.get))  # as BlockFeed

    def _drain(self) -> None:
        queue = self._feed.queue
        while not queue.empty():
            event = queue.get_nowait()
            assert event is not None, "the event feed dropped its subscriber"
            self.events.append(event)

    def close(self) -> None:
        self.history.close()
        self.journal.close()


def reconcile(views: Views, s: DecodedState) -> None:
    """The views against the ledger's books after the same block."""
    tracker = views.analytics.tracker
    pots = {
        (code, holder): pot
        for h in tracker.histories.values()
        for code, campaign_pots in h.pots.items()
        for holder, pot in campaign_pots.items()
    }
    for pk, account in s.holders.items():
        for code, cents in account.balances:
            assert pots[(code, pk)].balance_cents == cents, (code, pk.hex())
    for (code, pk), pot in pots.items():
        assert pot.balance_cents == s.holders[pk].balance(code) if pk in s.holders else 0
    lots = {key for key, queue in tracker.lots.items() if queue}
    for pk, merchant in s.merchants.items():
        for issuer, cents in merchant.balances:
            assert tracker.lot_cents(pk, issuer) == cents, (pk.hex(), issuer.hex())
            lots.discard((pk, issuer))
    assert not lots, "lots of a merchant that holds none of those units"
    pending = {i for i, p in s.payouts.items() if not p.settled and not p.returned}
    assert set(tracker.pending) == pending
    for pk, issuer in s.issuers.items():
        history = tracker.histories[pk]
        assert tracker.pending_cents(pk) == issuer.pending_cents
        assert sum(e.cents for e in rep.redemptions(history.events)) == issuer.redeemed_cents
        rows = {row.code: row for row in rep.campaigns_raw(history)}
        campaigns = {code: c for code, c in s.campaigns.items() if c.issuer == pk}
        assert rows.keys() == campaigns.keys()
        for code, c in campaigns.items():
            row = rows[code]
            assert (row.allocated, row.spent, row.refunded, row.returned, row.unspent) == (
                c.allocated_cents, c.spent_cents, c.refunded_cents, c.returned_cents,
                c.outstanding_cents,
            ), code  # fmt: skip
        units = sum(tracker.lot_cents(m, pk) for m in s.merchants)
        budgets = sum(c.budget_cents + rows[code].unspent for code, c in campaigns.items())
        assert issuer.escrow_cents == budgets + units + tracker.pending_cents(pk)
    for pk in s.merchants:
        totals = views.history.merchant_totals(pk)
        net = sum(cents for (_, m, _), cents in s.spent.items() if m == pk)
        assert totals.received_cents - totals.refunded_cents == net
    journal = {row.payout_id: row for row in views.journal.all_payouts()}
    assert journal.keys() == s.payouts.keys()
    for payout_id, p in s.payouts.items():
        state = PayoutState.SETTLED if p.settled else PayoutState.SEEN
        state = PayoutState.RETURNED if p.returned else state
        row = journal[payout_id]
        assert (row.state, row.amount_cents, row.merchant) == (state, p.amount_cents, p.merchant)


def assert_rebuild_equal(live: Views, fresh: Views, accounts: list[bytes]) -> None:
    a, b = live.analytics, fresh.analytics
    assert a.snapshot() == b.snapshot()
    for issuer in a.tracker.histories:
        for k in (1, 5):
            assert a.report(issuer, k) == b.report(issuer, k)
    assert live.history.height() == fresh.history.height()
    for account in (None, *accounts):
        page = (account, None, frozenset[t.Kind](), 100_000, 100_000)
        assert live.history.history(*page) == fresh.history.history(*page)
    for account in accounts:
        assert live.history.merchant_totals(account) == fresh.history.merchant_totals(account)
    assert [(e.name, e.data, e.readers) for e in live.events] == [
        (e.name, e.data, e.readers) for e in fresh.events
    ]
    assert live.journal.all_payouts() == fresh.journal.all_payouts()
    assert live.journal.ingested_height() == fresh.journal.ingested_height()


# --- the story: every kind at least once -----------------------------------------------------


@dataclass
class History:
    chain: Chain = field(default_factory=Chain)
    payouts: list[bytes] = field(default_factory=list)  # every payout opened, in order
    nonces: int = 0

    def must(self, who: Signer, payload: t.Payload, step_ms: int = HOUR_MS) -> bytes:
        """Commit one transaction that must apply; its id."""
        assert self.commit([(who, payload)], step_ms), f"{payload} was rejected"
        return bytes(self.chain.last_txs()[0].tx_id)

    def commit(self, steps: list[tuple[Signer, t.Payload]], step_ms: int = HOUR_MS) -> bool:
        if not steps or not self.chain.commit(*steps, step_ms=step_ms):
            return False
        world = self.chain.world
        self.payouts += [s.tx_id for s in self.chain.last_txs() if world.payout(s.tx_id)]
        return True

    def pending(self) -> list[bytes]:
        found = [(i, self.chain.world.payout(i)) for i in self.payouts]
        return [i for i, p in found if p is not None and not p.settled and not p.returned]

    def nonce(self) -> bytes:
        self.nonces += 1
        return self.nonces.to_bytes(16, "big")

    def authorized(self, who: int, code: str, merchant: bytes, cents: int) -> t.PayAuthorized:
        auth = t.Authorization(holder(who), code, merchant, cents,
                               self.chain.world.time_ms + DAY_MS, self.nonce())  # fmt: skip
        return t.PayAuthorized(auth, auth.sign(HOLDERS[who], CHAIN_ID), cents, "qr")


def story(h: History) -> None:
    w = h.chain.world
    namur, liege, bank = w.namur, w.liege, w.bank
    nam, lg = namur.public_key, liege.public_key
    end = T0_MS + 80 * DAY_MS
    assert h.commit([
        (namur, t.RegisterMerchant(shop(0), "Boulangerie", "47.24", "NA-1", IBAN, False)),
        (namur, t.RegisterMerchant(shop(1), "Brasserie", "56.10", "NA-2", IBAN, True)),
        (namur, t.RegisterMerchant(shop(2), "Grossiste", "46.39", "NA-1", IBAN, False)),
        (liege, t.RegisterMerchant(shop(3), "Librairie", "47.61", "LG-1", IBAN, False)),
        (namur, t.CreateCampaign(LONG, "Relance", (), (), T0_MS, end, 10_000)),
        (namur, t.CreateCampaign(SHORT, "Noël", ("NA-1", "NA-2"), ("47", "56"), T0_MS,
                                 SHORT_END_MS, 5_000)),
        (liege, t.CreateCampaign(LIEGE, "Liège", (), (), T0_MS, end, 10_000)),
        (namur, t.ConsentZones(lg, ("NA-1",))),
        (liege, t.CreateCampaign(REGION, "Région", ("LG-1", "NA-1"), (), T0_MS, end, 10_000)),
    ])  # fmt: skip
    assert h.commit([(bank, t.Fund(code, 100_000, f"DEP-{code}")) for code in CAMPAIGNS])
    assert h.commit([
        (namur, t.Allocate(LONG, tuple(t.Allocation(holder(n), 5_000, ("NA-1", "NA-2")[n % 2])
                                       for n in range(5)))),
        (namur, t.Allocate(SHORT, (t.Allocation(holder(0), 2_000, "NA-1"),
                                   t.Allocation(holder(5), 3_000, "NA-2")))),
        (liege, t.Allocate(LIEGE, (t.Allocation(holder(6), 4_000, "LG-1"),))),
        (liege, t.Allocate(REGION, (t.Allocation(holder(6), 3_000, "NA-1"),
                                    t.Allocation(holder(2), 3_000, "LG-1")))),
    ])  # fmt: skip
    admit = t.AdmitIssuer(DINANT.public_key, "Dinant", "Ville de Dinant", ("DI-1",), ())
    approvals = tuple(t.approve(admit, v, CHAIN_ID) for v in w.validators)
    h.must(w.validators[0], t.AdmitIssuer(DINANT.public_key, "Dinant", "Ville de Dinant",
                                          ("DI-1",), approvals))  # fmt: skip
    h.must(DINANT, t.RegisterMerchant(shop(4), "Citadelle", "56.30", "DI-1", IBAN, False))
    # Dinant's signing key moves (rotate_key): from its height, what the new key signs
    # (with Dinant's sequence) is Dinant's, in the state and in every view.
    at = w.next_height + 2
    rotate = t.RotateKey(DINANT.public_key, DINANT_NEXT.public_key, at, ())
    approvals = tuple(t.approve(rotate, v, CHAIN_ID) for v in w.validators)
    h.must(w.validators[0], t.RotateKey(DINANT.public_key, DINANT_NEXT.public_key, at, approvals))
    w.sequences[DINANT_NEXT.public_key] = w.next_sequence(DINANT, t.Kind.CREATE_CAMPAIGN)
    # Payments; a redemption returned by the bank, its units spent again three ways.
    h.must(HOLDERS[5], t.Pay(SHORT, shop(1), 1_000, "réveillon"))
    h.must(HOLDERS[0], t.Pay(LONG, shop(0), 1_500, "pain"))
    h.must(HOLDERS[2], t.Pay(LONG, shop(0), 700, "gâteau"))
    auto = h.must(MERCHANTS[1], h.authorized(1, LONG, shop(1), 900))  # auto-redeemed
    h.must(MERCHANTS[0], t.Transfer(shop(2), nam, 400, "farine"))
    returned = h.must(MERCHANTS[0], t.Redeem(nam, 1_000))
    h.must(bank, t.ReturnPayout(Digest(returned), "AC04", "RTN-1"), step_ms=DAY_MS)
    h.must(MERCHANTS[0], t.Redeem(nam, 300))
    h.must(MERCHANTS[0], t.Transfer(shop(2), nam, 500, "sucre"))
    h.must(MERCHANTS[0], t.Refund(holder(0), LONG, 200, "retour"))
    # An auto-redeemed payment returned: refunded, transferred, redeemed in turn.
    h.must(bank, t.ReturnPayout(Digest(auto), "AC01", "RTN-2"))
    h.must(MERCHANTS[1], t.Refund(holder(1), LONG, 100, "trop perçu"))
    h.must(MERCHANTS[1], t.Transfer(shop(2), nam, 300, "vin"))
    h.must(MERCHANTS[1], t.Redeem(nam, 500))
    h.must(MERCHANTS[2], t.Redeem(nam, 1_000))
    h.must(bank, t.Settle(tuple(t.Settlement(Digest(p), f"VIR-{n}")
                                for n, p in enumerate(h.pending()))))  # fmt: skip
    # Pots moved; a shop suspended (it may still redeem) and reinstated; a profile changed.
    h.must(HOLDERS[3], t.Sweep(LONG, holder(7)))
    h.must(namur, t.Reissue(LONG, holder(4), holder(3)))
    h.must(namur, t.SuspendMerchant(shop(0), True))
    h.must(MERCHANTS[0], t.Redeem(nam, 100))
    h.must(namur, t.SuspendMerchant(shop(0), False))
    h.must(namur, t.UpdateMerchant(shop(2), "Grossiste", "47.29", "NA-2", IBAN, True))
    # Units of another commune; the short campaign ends, is closed, then withdrawn.
    h.must(HOLDERS[6], t.Pay(LIEGE, shop(3), 1_000, "livre"))
    # A region's voucher at a commune's shop: the shop's units are Liège's.
    h.must(HOLDERS[6], t.Pay(REGION, shop(0), 800, "pain"))
    h.must(HOLDERS[2], t.Pay(REGION, shop(3), 300, "revue"))
    h.must(MERCHANTS[3], t.Transfer(shop(0), lg, 250, "revues"))
    w.time_ms = max(w.time_ms, SHORT_END_MS)
    h.must(namur, t.CloseCampaign(SHORT))
    h.must(bank, t.Withdraw(SHORT, 5_000, "WD-1"))
    assert w.next_height > at
    h.must(DINANT_NEXT, t.CreateCampaign(DINANT_CAMPAIGN, "Dinant", (), (), T0_MS, end, 5_000))
    h.must(DINANT_NEXT, t.UpdateMerchant(shop(4), "Citadelle", "56.30", "DI-1", IBAN, True))


# --- random operations, built from the current state so that most apply ---------------------------

Op = tuple[str, int, int, int, int]  # name, three picks, a percentage


def build(h: History, op: Op) -> tuple[Signer, t.Payload] | None:
    """The step ``op`` makes of the current state (None: there is nothing to do)."""
    name, a, b, c, pct = op
    w = h.chain.world
    who, code = HOLDERS[a % len(HOLDERS)], CAMPAIGNS[c % len(CAMPAIGNS)]
    other = HOLDERS[(a + b + 1) % len(HOLDERS)].public_key
    campaign = w.campaign(code)
    assert campaign is not None
    issuer = w.namur if campaign.issuer == w.namur.public_key else w.liege
    seller = MERCHANTS[b % len(MERCHANTS)]
    merchant = w.merchant(seller)
    assert merchant is not None
    owner = {i.public_key: i for i in (w.namur, w.liege, DINANT)}[merchant.issuer]
    owner = DINANT_NEXT if owner is DINANT else owner  # its key since the story's rotation
    pending = h.pending()
    units = merchant.balances[c % len(merchant.balances)] if merchant.balances else None

    def part(total: int) -> int:
        return max(1, total * pct // 100)

    match name:
        case "pay" | "pay_authorized":
            account = w.holder(who)
            rows = [row for row in account.balances if row[1]] if account is not None else []
            if not rows:
                return None
            spend, cents = rows[c % len(rows)]
            shops = [m for m in MERCHANTS if _accepts(w, w.merchant(m), w.campaign(spend))]
            seller = shops[b % len(shops)] if shops else seller
            if name == "pay":
                return who, t.Pay(spend, seller.public_key, part(cents), "achat")
            anyone = b"" if c % 2 else seller.public_key
            return seller, h.authorized(a % len(HOLDERS), spend, anyone, part(cents))
        case "refund":
            paid = sorted(decode_state(w.view.items()).spent.items())
            if not paid:
                return None
            (payer, paid_to, spend), cents = paid[a % len(paid)]
            refunder = next(m for m in MERCHANTS if m.public_key == paid_to)
            spent_in = w.campaign(spend)
            shop_now = w.merchant(paid_to)
            assert spent_in is not None and shop_now is not None
            cents = min(cents, shop_now.balance(spent_in.issuer))
            return (
                (refunder, t.Refund(PublicKey(payer), spend, part(cents), "retour"))
                if cents
                else None
            )
        case "sweep":
            return who, t.Sweep(code, other)
        case "reissue":
            return issuer, t.Reissue(code, who.public_key, other)
        case "transfer" if units is not None:
            to = MERCHANTS[(b + 1 + a % 4) % len(MERCHANTS)].public_key
            return seller, t.Transfer(to, PublicKey(units[0]), part(units[1]), "fournisseur")
        case "redeem" if units is not None:
            return seller, t.Redeem(PublicKey(units[0]), part(units[1]))
        case "settle" if pending:
            chosen = dict.fromkeys((pending[a % len(pending)], pending[b % len(pending)]))
            return w.bank, t.Settle(tuple(t.Settlement(Digest(p), f"VIR-{w.height}")
                                          for p in chosen))  # fmt: skip
        case "return" if pending:
            reason = ("AC04", "AC01", "MD07")[b % 3]
            return w.bank, t.ReturnPayout(Digest(pending[a % len(pending)]), reason,
                                          f"RTN-{w.height}")  # fmt: skip
        case "fund":
            return w.bank, t.Fund(code, 100 * pct, f"DEP-{w.height}")
        case "withdraw" if campaign.budget_cents:
            return w.bank, t.Withdraw(code, part(campaign.budget_cents), f"WD-{w.height}")
        case "allocate":
            zone = issuer_zone(w.genesis, campaign.issuer, a)
            return issuer, t.Allocate(code, (t.Allocation(who.public_key, 10 * pct, zone),))
        case "suspend":
            return owner, t.SuspendMerchant(seller.public_key, merchant.active)
        case "update":
            category = ("47.24", "56.10", "46.39", "47.11")[c % 4]
            auto = not merchant.auto_redeem
            return owner, t.UpdateMerchant(
                seller.public_key, merchant.name, category, merchant.zone, IBAN, auto
            )
        case "close":
            return issuer, t.CloseCampaign(code)
        case "consent":  # Namur grants or revokes its consent to Liège
            zones = (("NA-1",), ("NA-1", "NA-2"), ())[a % 3]
            return w.namur, t.ConsentZones(w.liege.public_key, zones)
    return None


def _accepts(w: World, merchant: r.Merchant | None, campaign: r.Campaign | None) -> bool:
    """Whether a holder of ``campaign`` may pay ``merchant`` (so that most payments apply)."""
    if merchant is None or campaign is None or not merchant.active:
        return False
    categories = campaign.categories
    in_category = not categories or any(merchant.category.startswith(p) for p in categories)
    if merchant.issuer != campaign.issuer:
        consent = w.read(r.consent_key(campaign.issuer, merchant.issuer), r.Consent.decode)
        if consent is None or merchant.zone not in consent.zones:
            return False
    return merchant.zone in campaign.zones and in_category


def issuer_zone(genesis: Genesis, issuer: bytes, pick: int) -> str:
    zones = next(i.zones for i in genesis.issuers if i.public_key == issuer)
    return zones[pick % len(zones)]


def play(h: History, ops: list[tuple[bool, Op]]) -> None:
    """``ops``: (whether the next operation joins the same block, the operation)."""
    steps: list[tuple[Signer, t.Payload]] = []
    for joined, op in ops:
        if op[0] == "tick":  # the clock moves on: campaigns end, delays grow
            h.chain.world.time_ms += (HOUR_MS, DAY_MS, 7 * DAY_MS, 40 * DAY_MS)[op[1] % 4]
            continue
        step = build(h, op)
        if step is not None:
            steps.append(step)
        if not joined or len(steps) == 3:
            h.commit(steps)
            steps = []
    h.commit(steps)


NAMES = (
    "pay", "pay", "pay", "pay_authorized", "sweep", "reissue", "refund", "refund", "transfer",
    "transfer", "redeem", "redeem", "settle", "return", "return", "fund", "allocate", "withdraw",
    "suspend", "update", "close", "tick", "consent",
)  # fmt: skip
OPERATION = st.tuples(
    st.integers(0, 3).map(lambda n: n == 0),  # a quarter of the blocks hold several
    st.tuples(st.sampled_from(NAMES), st.integers(0, 31), st.integers(0, 31), st.integers(0, 31),
              st.integers(1, 100)),
)  # fmt: skip


@settings(
    max_examples=60,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(ops=st.lists(OPERATION, min_size=20, max_size=60))
def test_every_view_follows_every_kind(ops: list[tuple[bool, Op]]) -> None:
    with tempfile.TemporaryDirectory(prefix="relance-views-", dir=SCRATCH) as tmp:
        home = Path(tmp)
        h = History()
        live = Views(h.chain, home / "live")

        def follow(block: Block) -> None:
            live.add(block)
            items = h.chain.world.view.items()
            check_invariants(items)
            reconcile(live, decode_state(items))

        h.chain.listeners.append(follow)
        fresh: Views | None = None
        try:
            story(h)
            play(h, ops)
            kinds = {s.tx.payload.KIND for b in h.chain.blocks for s in _decoded(b)}
            assert kinds >= set(t.Kind) - {
                t.Kind.EVIDENCE, t.Kind.CHANGE_VALIDATORS, t.Kind.SCHEDULE_UPGRADE,
            }  # fmt: skip
            assert h.chain.world.campaign(DINANT_CAMPAIGN).issuer == DINANT.public_key
            fresh = Views(h.chain, home / "fresh")
            fresh.rebuild(h.chain.blocks)
            reconcile(fresh, decode_state(h.chain.world.view.items()))
            accounts = [k.public_key for k in (*HOLDERS, *MERCHANTS, DINANT)]
            assert_rebuild_equal(live, fresh, accounts)
        finally:
            live.close()
            if fresh is not None:
                fresh.close()


def _decoded(block: Block) -> list[t.SignedTx]:
    out = []
    for data in block.txs:
        signed = t.decode_tx(data, CHAIN_ID)
        assert isinstance(signed, t.SignedTx)
        out.append(signed)
    return out
