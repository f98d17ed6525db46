"""Payouts go out once a day per debtor account unless the bank or the merchant says
otherwise: the settings' default schedule, the IBAN registration that follows it, and
the batching of a day's payouts of several merchants into one file per escrow account."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from node.api.routes.settlement import routes as settlement_routes
from node.api.server import API_KEY
from node.settlement import refhash
from node.settlement.journal import (
    EscrowRow,
    Journal,
    MerchantRow,
    NewPayout,
    Schedule,
    open_journal,
)
from node.settlement.service import (
    SettingsError,
    SettlementService,
    due_payouts,
    read_settings,
    write_settings,
)
from tests.api.harness import BANK, LiveNode
from tests.api.world import seed

DAY = 86_400_000
MONDAY = 1_749_427_200_000  # 2025-06-09T00:00Z
ISSUERS = (b"I" * 32, b"J" * 32)
SHOPS = (b"A" * 32, b"B" * 32, b"C" * 32)


def _home(tmp_path: Path) -> Path:
    (tmp_path / "bank_key").write_text(BANK.seed.hex(), encoding="ascii")
    return tmp_path


def test_the_bank_pays_daily_unless_its_settings_say_otherwise(tmp_path: Path) -> None:
    home = _home(tmp_path)
    write_settings(home, "bank_key")
    assert read_settings(home).default_schedule is Schedule.DAILY
    write_settings(home, "bank_key", default_schedule=Schedule.IMMEDIATE)
    assert read_settings(home).default_schedule is Schedule.IMMEDIATE
    (home / "settlement.toml").write_text('bank_key_file = "bank_key"\n', encoding="utf-8")
    assert read_settings(home).default_schedule is Schedule.DAILY  # an older file
    (home / "settlement.toml").write_text(
        'bank_key_file = "bank_key"\ndefault_schedule = "hourly"\n', encoding="utf-8"
    )
    with pytest.raises(SettingsError, match="default_schedule"):
        read_settings(home)


def _journal(tmp_path: Path, schedules: tuple[Schedule, ...]) -> Journal:
    journal = open_journal(tmp_path / "settlement")
    for issuer in ISSUERS:
        journal.set_escrow(EscrowRow(issuer, "Escrow", "BE68539007547034", ""))
    for shop, schedule in zip(SHOPS, schedules, strict=True):
        iban = refhash.parse_iban("BE28001123456020").iban
        journal.register_merchant(
            MerchantRow(shop, iban, "", b"", refhash.ref_hash(iban, b""), schedule, 0)
        )
    return journal


def test_a_days_payouts_make_one_file_per_debtor_account_the_next_day(tmp_path: Path) -> None:
    journal = _journal(tmp_path, (Schedule.DAILY,) * 3)
    opened = []
    for n, hour in enumerate((8, 11, 15, 19, 23)):  # through Monday, two communes, 3 shops
        opened.append(
            NewPayout(bytes([n]) * 32, SHOPS[n % 3], ISSUERS[n % 2], 100 + n,
                      MONDAY + hour * 3_600_000, n + 1)
        )  # fmt: skip
    journal.ingest_block(5, opened, [])
    for hour in (8, 12, 23):  # blocks during Monday: nothing is due yet
        assert due_payouts(journal, MONDAY + hour * 3_600_000 + 1, DAY) == {}
    due = due_payouts(journal, MONDAY + DAY + 5_000, DAY)  # Tuesday's first block
    assert sorted(due) == list(ISSUERS)  # one file per escrow account
    assert sum(len(p) for by_shop in due.values() for p in by_shop.values()) == 5
    assert sorted(due[ISSUERS[0]]) == sorted(SHOPS)  # one transfer per shop in each
    assert sorted(due[ISSUERS[1]]) == [SHOPS[0], SHOPS[1]]
    journal.close()


def test_an_immediate_merchant_is_due_at_once_and_a_daily_one_waits(tmp_path: Path) -> None:
    journal = _journal(tmp_path, (Schedule.IMMEDIATE, Schedule.DAILY, Schedule.WEEKLY))
    at = MONDAY + 10 * 3_600_000
    journal.ingest_block(
        1, [NewPayout(bytes([n]) * 32, SHOPS[n], ISSUERS[0], 500, at, 1) for n in range(3)], []
    )
    assert list(due_payouts(journal, at + 1_000, DAY)[ISSUERS[0]]) == [SHOPS[0]]
    assert sorted(due_payouts(journal, at + DAY, DAY)[ISSUERS[0]]) == [SHOPS[0], SHOPS[1]]
    assert len(due_payouts(journal, MONDAY + 7 * DAY, DAY)[ISSUERS[0]]) == 3
    journal.close()


def test_a_merchant_registering_without_a_schedule_gets_the_banks_daily_one(
    tmp_path: Path,
) -> None:
    (tmp_path / "node").mkdir()
    node = LiveNode(tmp_path / "node")
    try:
        world = seed(node)
        home = _home(tmp_path)
        write_settings(home, "bank_key")
        journal = node.run(lambda: open_journal(home / "settlement"))  # the node's thread
        service = SettlementService(node.ledger, journal, read_settings(home), lambda _: None)
        routes = settlement_routes(service)
        parts = routes.parts(node.app[API_KEY])
        register = next(op for op in routes.operations if op.method == "POST")

        async def call(body: dict[str, str], who: str) -> int:
            async def handle(request: web.Request) -> web.Response:
                await register.handler(parts, request)
                return web.Response(text="ok")

            app = web.Application()
            app.router.add_post(register.path, handle)
            async with TestClient(TestServer(app)) as client:
                answer = await client.post(
                    register.path, data=json.dumps(body),
                    headers={"Authorization": f"Bearer {who}"},
                )  # fmt: skip
                return answer.status

        bakery, brasserie = world.bakery.signer, world.brasserie.signer
        body = {"iban": "BE28001123456020", "salt": ""}
        assert node.call(call(body, node.token(bakery))) == 200
        chosen = {**body, "schedule": "immediate"}
        assert node.call(call(chosen, node.token(brasserie))) == 200
        bakery_row = node.run(lambda: journal.merchant(bakery.public_key))
        brasserie_row = node.run(lambda: journal.merchant(brasserie.public_key))
        assert bakery_row is not None and bakery_row.schedule is Schedule.DAILY
        assert brasserie_row is not None and brasserie_row.schedule is Schedule.IMMEDIATE
        node.run(journal.close)
    finally:
        node.close()
