"""The bank node's settlement routes (``/v1/settlement/...``), present only where the
settlement service runs (a home with ``settlement.toml``).

- ``POST /v1/settlement/iban``: a merchant registers its IBAN with the bank (token
  of the merchant itself). The IBAN stays in the bank's local store; the answer
  shows it masked, with the salted hash the merchant must put on the ledger
  (``update_merchant``) before the bank pays it.
- ``GET /v1/settlement/iban``: that registration, for the merchant itself.
- ``GET /v1/settlement/summary``: the journal's counts and files (bank, auditors).
- ``GET /v1/settlement/statement`` (JSON), ``.csv`` and ``.pdf``: the commune
  statement (the issuer itself, the bank, auditors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal

from aiohttp import web

from node.api import inputs
from node.api.access import Role, Scope, Viewer, Viewers, bearer, require
from node.api.inputs import parse_key
from node.api.offload import Memo, offload_of, stream
from node.api.operation import HEX32, Operation, Param, Routes, pick
from node.api.problems import ApiError
from node.api.view_gate import ViewGate
from node.app.ledger_app import LedgerApp
from node.ledger import records as r
from node.protocol import limits
from node.settlement import refhash, statement
from node.settlement.journal import FileState, MerchantRow, Schedule
from node.settlement.service import SettlementService
from node.store.blockstore import BlockStore

ScheduleName = Literal["immediate", "daily", "weekly"]


@dataclass(frozen=True, slots=True)
class SettlementParts:
    """What the settlement routes (the gate: ``node.run.daemon.reading_view``) read of the API."""

    ledger: LedgerApp
    chain_id: str
    viewers: Viewers
    gate: ViewGate


TIME_MAX: Final = 2**62
STATEMENTS_KEPT: Final = 16  # folded statements kept (each for one height of the store)


@dataclass(frozen=True, slots=True)
class IbanRegistration:
    """``salt`` is 32 hex digits (16 random bytes the wallet draws), or empty for the
    legacy unsalted hash."""

    iban: str
    salt: str
    schedule: ScheduleName = "daily"  # the bank's default_schedule when absent


@dataclass(frozen=True, slots=True)
class IbanStatus:
    merchant: str
    iban_masked: str
    bic: str
    schedule: ScheduleName
    ref_hash: str
    ledger_matches: bool


@dataclass(frozen=True, slots=True)
class FileView:
    file_id: int
    issuer: str
    name: str
    state: str
    transfers: int
    total_cents: int
    execution_date: str
    failure: str  # why a failed file could not be built (empty otherwise)


@dataclass(frozen=True, slots=True)
class SettlementSummary:
    counts: dict[str, object]
    files: list[FileView]


def _merchant_viewer(api: SettlementParts, request: web.Request) -> Viewer:
    viewer = require(api.viewers.of(request))
    if viewer.role is not Role.MERCHANT or viewer.scope is not Scope.ACCOUNT:
        raise ApiError(403, "only a merchant registers its own IBAN, with its own token")
    return viewer


def _status(api: SettlementParts, row: MerchantRow) -> IbanStatus:
    raw = api.ledger.store.get(r.merchant_key(row.merchant))
    ledger_hash = b"" if raw is None else r.Merchant.decode(raw).payout_ref_hash
    return IbanStatus(
        merchant=row.merchant.hex(),
        iban_masked=refhash.mask(row.iban),
        bic=row.bic,
        schedule=row.schedule.value,
        ref_hash=row.ref_hash.hex(),
        ledger_matches=refhash.matches(ledger_hash, row.iban, row.salt) if raw else False,
    )


class _Handlers:
    """The settlement routes of one bank node, over its service's journal, with the
    statements it folded and rendered last (one fold or rendering serves every request
    for the same statement)."""

    def __init__(self, service: SettlementService) -> None:
        self.service = service
        self.journal = service.journal
        self.folds: Memo[tuple[bytes, str | None, int, int], statement.Folded] = Memo(
            STATEMENTS_KEPT
        )
        self.renders: Memo[tuple[str, str], bytes] = Memo(STATEMENTS_KEPT)

    async def rendered(
        self,
        api: SettlementParts,
        request: web.Request,
        render: Callable[[statement.CommuneStatement], bytes],
    ) -> bytes:
        """``render`` of the statement asked, in a worker process; one rendering serves
        every request for the same statement (the same figures and reconciliation)."""
        s = await self._statement(api, request)
        offload = offload_of(request)

        async def make() -> bytes:
            async with offload.slot():
                return await offload.compute(render, s)

        return await self.renders.get((render.__name__, repr(s)), s.height, make)

    async def register_iban(self, api: SettlementParts, request: web.Request) -> object:
        viewer = _merchant_viewer(api, request)
        if bearer(request) is None:  # a dashboard session reads; it never redirects payouts
            raise ApiError(
                403,
                "an IBAN is registered with the merchant's own token (relance-wallet "
                "merchant register-iban), never with a dashboard session",
                slug="token-required",
            )
        body = inputs.read_json(await request.read())
        if not isinstance(body, dict) or not {"iban", "salt"} <= set(body) <= {
            "iban",
            "salt",
            "schedule",
        }:
            raise ApiError(400, 'expected {"iban", "salt"[, "schedule"]}', slug="bad-body")
        iban, salt_hex = body["iban"], body["salt"]
        schedule = body.get("schedule", self.service.settings.default_schedule.value)
        if not isinstance(iban, str) or not isinstance(salt_hex, str):
            raise ApiError(400, "iban and salt are strings", slug="bad-body")
        if schedule not in {s.value for s in Schedule}:
            raise ApiError(400, "schedule is immediate, daily or weekly", slug="bad-schedule")
        try:
            salt = bytes.fromhex(salt_hex)
        except ValueError:
            salt = b"-"
        if salt and len(salt) != refhash.SALT_BYTES:
            raise ApiError(400, "the salt is 32 hex digits, or empty", slug="bad-salt")
        try:
            account = refhash.parse_iban(iban)
        except refhash.IbanError as exc:
            raise ApiError(400, str(exc), slug="bad-iban") from None
        row = MerchantRow(
            viewer.key,
            account.iban,
            account.bic,
            salt,
            refhash.ref_hash(account.iban, salt),
            Schedule(schedule),
            api.ledger.last_block().time_ms,
        )
        self.journal.register_merchant(row)
        return _status(api, row)

    async def registered_iban(self, api: SettlementParts, request: web.Request) -> object:
        viewer = _merchant_viewer(api, request)
        row = self.journal.merchant(viewer.key)
        if row is None:
            raise ApiError(404, "no IBAN is registered for this merchant")
        return _status(api, row)

    async def settlement_summary(self, api: SettlementParts, request: web.Request) -> object:
        viewer = require(api.viewers.of(request))
        if viewer.role not in (Role.BANK, Role.AUDITOR):
            raise ApiError(403, "the settlement journal is read by the bank and auditors")
        return SettlementSummary(
            counts=dict(self.journal.counts()),
            files=[
                FileView(
                    f.file_id,
                    f.issuer.hex(),
                    f.name or "",
                    f.state.value,
                    f.transfers,
                    f.total_cents,
                    f.execution_date,
                    f.failure,
                )
                for f in self.journal.files(*FileState)
            ],
        )

    async def _statement(
        self, api: SettlementParts, request: web.Request
    ) -> statement.CommuneStatement:
        """Read and fold off the loop (the caller holds an offload slot); reconcile here."""
        viewer = require(api.viewers.of(request))
        issuer_text = request.query.get("issuer")
        issuer = viewer.key if issuer_text is None else parse_key(issuer_text, "issuer")
        allowed = viewer.role in (Role.BANK, Role.AUDITOR) or (
            viewer.role is Role.ISSUER and viewer.key == issuer
        )
        if not allowed or viewer.scope is not Scope.ACCOUNT:
            raise ApiError(403, "a statement is read by its issuer, the bank and auditors")
        from_ms, to_ms = _time(request, "from_ms", 0), _time(request, "to_ms", TIME_MAX)
        if from_ms >= to_ms:
            raise ApiError(400, "from_ms comes before to_ms", slug="bad-period")
        if api.ledger.store.get(r.issuer_key(issuer)) is None:
            raise ApiError(404, "no issuer has this key")
        offload = offload_of(request)
        campaign = request.query.get("campaign")

        async def fold() -> statement.Folded:
            async with offload.slot():
                try:
                    gathered = await offload.read(_gather, api.ledger.store, issuer)
                except statement.TooLarge as exc:
                    raise ApiError(503, str(exc), slug="statement-too-large") from None
                return await offload.compute(
                    statement.fold, gathered, api.chain_id, issuer, campaign, from_ms, to_ms
                )

        key = (bytes(issuer), campaign, from_ms, to_ms)
        folded = await self.folds.get(key, api.ledger.store.height(), fold)
        return statement.reconcile(folded, self.journal)

    async def commune_statement(self, api: SettlementParts, request: web.Request) -> object:
        return await self._statement(api, request)

    async def commune_statement_csv(self, api: SettlementParts, request: web.Request) -> object:
        body = await self.rendered(api, request, statement.to_csv)
        return await stream(request, body, "text/csv", charset="utf-8")

    async def commune_statement_pdf(self, api: SettlementParts, request: web.Request) -> object:
        body = await self.rendered(api, request, statement.to_pdf)
        return await stream(request, body, "application/pdf")


def routes(service: SettlementService) -> Routes[SettlementParts]:
    """The bank node's settlement routes, documented like the others."""
    handlers = _Handlers(service)
    return Routes(
        pick(SettlementParts), _iban_operations(handlers) + _statement_operations(handlers)
    )


def _iban_operations(handlers: _Handlers) -> tuple[Operation[SettlementParts], ...]:
    """The merchant's IBAN and the settlement journal's summary."""
    tag = "settlement"
    return (
        Operation(
            "POST",
            "/v1/settlement/iban",
            handlers.register_iban,
            "Register the merchant's IBAN with the bank",
            tag,
            IbanStatus,
            body=IbanRegistration,
            errors=(400, 401, 403),
            auth="required",
        ),
        Operation(
            "GET",
            "/v1/settlement/iban",
            handlers.registered_iban,
            "The merchant's IBAN registration (masked)",
            tag,
            IbanStatus,
            errors=(401, 403, 404),
            auth="required",
        ),
        Operation(
            "GET",
            "/v1/settlement/summary",
            handlers.settlement_summary,
            "The settlement journal: counts and files",
            tag,
            SettlementSummary,
            errors=(401, 403),
            auth="required",
        ),
    )


def _statement_operations(handlers: _Handlers) -> tuple[Operation[SettlementParts], ...]:
    """The commune statement, as JSON, CSV and PDF, over a period."""
    tag = "settlement"
    period = (
        Param("issuer", "query", HEX32, "the issuer (default: the token's account)"),
        Param("campaign", "query", {"type": "string", "maxLength": 32}, "only this campaign"),
        Param("from_ms", "query", {"type": "integer", "minimum": 0}, "period start (block time)"),
        Param("to_ms", "query", {"type": "integer", "minimum": 1}, "period end, excluded"),
    )
    return (
        Operation(
            "GET",
            "/v1/settlement/statement",
            handlers.commune_statement,
            "The commune statement",
            tag,
            statement.CommuneStatement,
            params=period,
            errors=(400, 401, 403, 404),
            auth="required",
        ),
        Operation(
            "GET",
            "/v1/settlement/statement.csv",
            handlers.commune_statement_csv,
            "The commune statement as CSV",
            tag,
            None,
            params=period,
            errors=(400, 401, 403, 404),
            auth="required",
            content_type="text/csv",
        ),
        Operation(
            "GET",
            "/v1/settlement/statement.pdf",
            handlers.commune_statement_pdf,
            "The commune statement as PDF",
            tag,
            None,
            params=period,
            errors=(400, 401, 403, 404),
            auth="required",
            content_type="application/pdf",
        ),
    )


def _gather(store: BlockStore, issuer: bytes) -> statement.Gathered:
    """In a reading thread: what the statement needs, from one snapshot of the store."""
    snapshot = store.read_snapshot()
    try:
        return statement.gather(snapshot, issuer, limits.OFFLOAD_SNAPSHOT_BYTES_MAX)
    finally:
        snapshot.close()


def _time(request: web.Request, name: str, default: int) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    return inputs.parse_uint(text, 0, TIME_MAX, f"{name} is Unix milliseconds", "bad-time")
