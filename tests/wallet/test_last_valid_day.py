"""One last valid day, stated alike by the letter, the wallet, the API and the dashboards.

A campaign created with ``--until +90d`` early in the morning used to end at that
instant, 90 days later: the letter promised that day ("au … inclus") although the
voucher stopped working early that morning, Brussels time. Now an end in days covers
the whole Brussels day, and wherever an end falls, every place prints the last day on
which the voucher works all day (``node.text.fmt.last_valid_day``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from node.ledger import tx as t
from node.protocol.crypto import digest
from node.text import fmt
from tests.api.harness import BANK, NAMUR, Account, LiveNode
from tests.api.test_dashboards import page
from tests.wallet.support import Cli, cli_env
from wallets.letters import CampaignText, rules_fr
from wallets.units import parse_time_ms
from wallets.voucher import Voucher

BRUSSELS = ZoneInfo("Europe/Brussels")


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def test_until_in_days_covers_the_whole_last_day_in_brussels() -> None:
    typed_at = datetime(2026, 1, 1, 5, 21, tzinfo=UTC)  # 06:21 in Brussels
    end = parse_time_ms("+90d", _ms(typed_at), end_of_day=True)
    assert end == _ms(datetime(2026, 4, 2, 0, 0, tzinfo=BRUSSELS))  # summer time by then
    assert fmt.last_valid_day(end) == date(2026, 4, 1)
    bare = parse_time_ms("2026-03-31", _ms(typed_at), end_of_day=True)
    assert bare == _ms(datetime(2026, 4, 1, 0, 0, tzinfo=BRUSSELS))
    assert fmt.last_valid_day(bare) == date(2026, 3, 31)
    assert parse_time_ms("2026-03-31", 0) == _ms(datetime(2026, 3, 31, tzinfo=BRUSSELS))


def test_an_end_early_in_the_morning_makes_the_day_before_the_last() -> None:
    early = _ms(datetime(2026, 4, 1, 6, 21, tzinfo=BRUSSELS))
    assert fmt.last_valid_day(early) == date(2026, 3, 31)
    assert fmt.last_day(early) == "31/03/2026"
    letter = rules_fr(CampaignText("NAM", "Relance", "Namur", (), (), 0, early))
    assert "au 31 mars 2026 inclus" in letter[0]


@pytest.fixture
def early_end(tmp_path: Path) -> Iterator[tuple[LiveNode, int, date]]:
    """A campaign ending at 06:21 Brussels time, 90 days on; a voucher holding 20 €."""
    node = LiveNode(tmp_path)
    try:
        last = (datetime.fromtimestamp(node.wall_ms / 1000, BRUSSELS) + timedelta(days=89)).date()
        end = _ms(datetime.combine(last + timedelta(days=1), time(6, 21), BRUSSELS))
        chain, namur, bank = node.genesis.chain_id, Account(NAMUR), Account(BANK)
        start = node.genesis.genesis_time_ms
        voucher = Voucher(chain.upper(), digest(b"early voucher"))
        node.commit(namur.sign(chain, t.CreateCampaign("early", "Relance tôt", (), (), start,
                                                       end, 10_000)))  # fmt: skip
        node.commit(bank.sign(chain, t.Fund("early", 10_000, "DEP-1")))
        node.commit(namur.sign(chain, t.Allocate("early", (
            t.Allocation(voucher.signer.public_key, 2_000, "NAM-1"),))))  # fmt: skip
        yield node, end, last
    finally:
        node.close()


def test_letter_wallet_api_and_dashboards_state_the_same_last_day(
    early_end: tuple[LiveNode, int, date], tmp_path: Path
) -> None:
    node, end, last = early_end
    belgian = last.strftime("%d/%m/%Y")
    assert node.get("/v1/campaigns/early").json()["last_valid_day"] == last.isoformat()
    commune = page(node, "/ui/commune", node.token(NAMUR)).body.decode()
    assert belgian in commune and fmt.date(end) not in commune  # not the day cut short
    voucher = Voucher(node.genesis.chain_id.upper(), digest(b"early voucher")).uri()
    cli = Cli(cli_env(tmp_path / "home", node.url))
    balance = cli.json("holder", "balance", "--voucher", voucher)
    [row] = balance["balances"]  # type: ignore[misc]
    assert row["campaign"] == "early" and row["cents"] == 2_000
    assert row["name"] == "Relance tôt" and row["last_valid_day"] == belgian
    assert f"valid through {belgian}" in cli.ok("holder", "balance", "--voucher", voucher).stdout
    letter = rules_fr(CampaignText("early", "Relance tôt", "Namur", (), (), 0, end))
    months = ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
              "septembre", "octobre", "novembre", "décembre"]  # fmt: skip
    day = "1er" if last.day == 1 else str(last.day)
    assert f"au {day} {months[last.month - 1]} {last.year} inclus" in letter[0]
