"""A month of the demo towns' life, certified, written before the devnet's nodes start.

``write_history`` plays each commune's town (``node.devnet.town.rhythm``, the same
towns the live demo then continues) hour by real hour over the last
``HISTORY_DAYS`` days: one block per hour that has moves, at that hour's block
time, with the bank settling open payouts on weekday mornings and afternoons.
Each block is executed by the ledger (a move it refuses is left out and the
town is told so) and certified by the devnet's own validator keys (read from
the node homes), through ``node.app.certified.HistoryWriter``, into node0's store;
the other nodes get a copy of that store. The genesis time is the start of the
month (``write_devnet`` is called with it), so every page has a month of true
history to show: the analytics heatmap its week of hours, statements their days.

The bank's node runs the settlement service (``enable_settlement``), so that its
dashboard shows the payouts' journal; while the month is written the service runs
over it for the shops that registered an IBAN (``node.devnet.demo_bank``): daily pain.001
files, the bank's camt.054 imported on weekday afternoons, its settle transactions,
one transfer returned (``AC04``). Then the role keys of the demo (a merchant
and a household of the first commune) are added to ``demo-keys.json``, and
``role_links`` prints how to open each role's page with a one-time login link
(or, for the citizen, the balance link of a letter).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from node.api import tokens
from node.app.certified import BlockDraft, HistoryWriter
from node.devnet.demo import CAMPAIGN_DAYS, SETTLE_HOURS, SETTLEMENTS_PER_TX, Demo, make_towns
from node.devnet.demo_bank import STATEMENT_HOUR, DemoBank
from node.devnet.network import DEMO_KEYS_FILE, DevnetNode
from node.devnet.town.model import BRUSSELS, HOUR_MS
from node.devnet.town.rhythm import Move, Rhythm, SimHour
from node.ledger import tx as t
from node.ledger.codes import Result
from node.protocol import limits
from node.protocol.crypto import Signer
from node.protocol.genesis import Genesis
from node.protocol.genesis import parse as parse_genesis
from node.run import config
from node.run.daemon import write_key
from node.settlement.journal import EscrowRow, open_journal
from node.settlement.service import read_settings, write_settings

HISTORY_DAYS: Final = 30
SPARE_CENTS: Final = 250_00  # deposited beyond what the first commune allocates ...
WITHDRAW_AFTER_DAYS: Final = 14  # ... and withdrawn by the bank then
DAY_MS: Final = 86_400_000
LOGIN_TTL_MS: Final = limits.API_TOKEN_TTL_MAX_MS  # the printed login links
MERCHANT_KEY: Final = "merchant"  # demo-keys.json: a shop of the first commune
HOLDER_KEY: Final = "holder"  # demo-keys.json: a household of the first commune


@dataclass(frozen=True, slots=True)
class History:
    blocks: int
    txs: int
    first_ms: int
    last_ms: int
    demo: Demo  # the towns as the month left them: the live demo continues them


def history_start(now_ms: int) -> int:
    """The genesis time of a demo devnet with a month of history: ``HISTORY_DAYS`` ago."""
    return now_ms - HISTORY_DAYS * DAY_MS


def sim_hour(time_ms: int) -> SimHour:
    local = datetime.fromtimestamp(time_ms / 1000, UTC).astimezone(BRUSSELS)
    return SimHour(local.weekday(), local.hour)


def _validators(members: list[DevnetNode], genesis: Genesis) -> list[Signer]:
    signers = {}
    for member in members:
        seed = (member.home / config.NODE_KEY_FILE).read_text(encoding="ascii").strip()
        signer = Signer(bytes.fromhex(seed))
        signers[signer.public_key] = signer
    return [signers[v.public_key] for v in genesis.validators]


class _Player:
    """Signs moves with each account's next sequence and adds them to a block draft."""

    def __init__(self, demo: Demo, chain_id: str) -> None:
        self.demo, self.chain_id = demo, chain_id
        self.sequences: dict[bytes, int] = {}
        self.txs = 0

    def play(self, draft: BlockDraft, moves: list[tuple[Rhythm | None, Move]]) -> None:
        for town, move in moves:
            key = move.signer.public_key
            sequence = self.sequences.get(key, 0)
            signed = t.Tx(self.chain_id, key, sequence, move.payload).sign(move.signer)
            accepted = draft.add(signed) == Result.OK
            if accepted:
                self.sequences[key] = sequence + 1
                self.txs += 1
            if town is not None:
                town.record(move, accepted)
                if accepted and town.opens_payout(move) and not self.demo.by_files(move):
                    self.demo.payouts.append(signed.tx_id)
            elif not accepted and isinstance(move.payload, t.Settle):
                self.demo.payouts.extend(s.payout_id for s in move.payload.settlements)

    def settle(self) -> list[tuple[Rhythm | None, Move]]:
        bank, payouts = self.demo.keys["bank"], self.demo.payouts
        self.demo.payouts = []
        return [
            (
                None,
                Move(
                    bank,
                    t.Settle(
                        tuple(
                            t.Settlement(p, f"SEPA-{p.hex()[:16]}")
                            for p in payouts[i : i + SETTLEMENTS_PER_TX]
                        )
                    ),
                ),
            )
            for i in range(0, len(payouts), SETTLEMENTS_PER_TX)
        ]


def write_history(
    root: Path, members: list[DevnetNode], keys: dict[str, Signer], now_ms: int
) -> History:
    """Write the month into node0's store and copy it to the other nodes (none running)."""
    genesis = parse_genesis((members[0].home / config.GENESIS_FILE).read_text(encoding="utf-8"))
    start = genesis.genesis_time_ms
    demo = Demo(genesis, [m.api_url for m in members], keys, random.Random(start))
    demo.towns = make_towns(demo, start)
    enable_settlement(members[0].home, keys["bank"], genesis)
    writer = HistoryWriter(
        members[0].home / config.DATA_DIR, genesis, _validators(members, genesis)
    )
    player = _Player(demo, genesis.chain_id)
    bank = DemoBank(members[0].home, writer, demo.paid_by_files)
    try:
        draft = writer.open_block(start + 1_000)
        until = start + CAMPAIGN_DAYS * DAY_MS
        for town in demo.towns:
            player.play(draft, [(town, m) for m in town.opening(start, until)])
        writer.seal(draft)
        bank.after_block()
        first = writer.time_ms
        # Some shops register an IBAN with the bank and name it on the ledger (first block);
        # the first commune's deposit is more than it allocates: the bank withdraws the rest.
        moves: list[tuple[Rhythm | None, Move]] = list(bank.register_ibans(demo.towns, first))
        campaign, banker = demo.towns[0].campaign, demo.keys["bank"]
        moves.append((None, Move(banker, t.Fund(campaign, SPARE_CENTS, f"DEP-{campaign}-SPARE"))))
        withdraw_ms = start + WITHDRAW_AFTER_DAYS * DAY_MS
        hour_ms = (start // HOUR_MS + 1) * HOUR_MS
        while hour_ms + HOUR_MS < now_ms:
            now = sim_hour(hour_ms)
            moves += [(town, m) for town in demo.towns for m in town.hour(now)]
            if withdraw_ms and hour_ms >= withdraw_ms and now.weekday < 5 and now.hour == 10:
                reference = f"WDR-{campaign}-SPARE"
                moves.append((None, Move(banker, t.Withdraw(campaign, SPARE_CENTS, reference))))
                withdraw_ms = 0
            if now.weekday < 5 and now.hour in SETTLE_HOURS:
                moves += player.settle()
            from_bank = bank.pending()
            if moves or from_bank:
                draft = writer.open_block(hour_ms + 17 * 60_000)  # within the hour
                for signed in from_bank:  # the settlement service's settle or return first
                    draft.add(signed)
                player.sequences[bank.service.bank] = bank.bank_sequence() + len(draft.txs)
                player.play(draft, moves)
                if draft.txs:
                    writer.seal(draft)
                    bank.after_block()
            moves = []
            if now.weekday < 5 and now.hour == STATEMENT_HOUR:
                bank.statement(hour_ms + 45 * 60_000)  # the bank's camt.054, imported
                bank.after_block()  # the service posts its settle (and return) at once
            hour_ms += HOUR_MS
        history = History(writer.height, player.txs, first, writer.time_ms, demo)
    finally:
        bank.close()
        writer.close()
    source = members[0].home / config.DATA_DIR
    for member in members[1:]:
        target = member.home / config.DATA_DIR
        shutil.rmtree(target)
        shutil.copytree(source, target)
    return history


BANK_KEY_FILE: Final = "bank_key"
ESCROW_IBANS: Final = (
    "BE68539007547034",
    "BE71096123456769",
    "BE62510007547061",
    "BE43068999999501",
    "BE32123456789002",
    "BE71234567890169",
)


def enable_settlement(bank_home: Path, bank: Signer, genesis: Genesis) -> None:
    """Turn the settlement service on in the bank's node (node0), so that its dashboard
    shows the payouts' journal: every commune gets an escrow account. The shops that
    register an IBAN (``node.devnet.demo_bank``) are paid by its files; the demo settles the
    others' payouts itself."""
    write_key(bank_home / BANK_KEY_FILE, bank.seed)
    write_settings(bank_home, BANK_KEY_FILE)
    journal = open_journal(read_settings(bank_home).directory)
    try:
        for issuer, iban in zip(genesis.issuers, ESCROW_IBANS, strict=False):
            journal.set_escrow(EscrowRow(issuer.public_key, f"{issuer.name} - escrow", iban, ""))
    finally:
        journal.close()


def add_role_keys(root: Path, demo: Demo) -> dict[str, Signer]:
    """Add a merchant and a household of the first commune to ``demo-keys.json``: a shop
    that took payments, and a household that has units left. Returns them by name."""
    town = demo.towns[0]
    shop = max(town.joined, key=lambda s: town.kept.get(s.signer.public_key, 0) + len(s.name))
    holder = max((s for s, _ in town.town.homes), key=lambda s: town.balances.get(s.public_key, 0))
    roles = {MERCHANT_KEY: shop.signer, HOLDER_KEY: holder}
    path = root / DEMO_KEYS_FILE
    stored = json.loads(path.read_text(encoding="utf-8"))
    stored.update({name: signer.seed.hex() for name, signer in roles.items()})
    path.write_text(json.dumps(stored, indent=2), encoding="utf-8")
    return roles


@dataclass(frozen=True, slots=True)
class RoleLink:
    role: str
    key_name: str
    url: str


def role_links(
    node: DevnetNode, genesis: Genesis, keys: dict[str, Signer], issuer_key: str, now_ms: int
) -> list[RoleLink]:
    """How to open each role's page on ``node``: one-time login links (they expire after
    ``LOGIN_TTL_MS``), the merchant's counter, and the citizen's letter balance link."""
    seed = (node.home / config.NODE_KEY_FILE).read_text(encoding="ascii").strip()
    node_key = Signer(bytes.fromhex(seed)).public_key

    def login(name: str, then: str = "") -> str:
        token = tokens.make_token(keys[name], genesis.chain_id, node_key, now_ms, LOGIN_TTL_MS)
        return f"{node.api_url}/ui/login?token={token}{then}"

    code = tokens.make_balance_code(
        keys[HOLDER_KEY], genesis.chain_id, now_ms + CAMPAIGN_DAYS * DAY_MS
    )
    return [
        RoleLink("commune", issuer_key, login(issuer_key)),
        RoleLink("bank", "bank", login("bank")),
        RoleLink("merchant", MERCHANT_KEY, login(MERCHANT_KEY)),
        RoleLink("merchant counter", MERCHANT_KEY, f"{node.api_url}/ui/merchant/counter"),
        RoleLink("citizen (letter's balance link)", HOLDER_KEY, f"{node.api_url}/b/{code}"),
        RoleLink("auditor", "auditor", login("auditor")),
    ]
