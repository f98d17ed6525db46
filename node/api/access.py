"""Who is asking, and what they may read (DESIGN.md: "reading history is private").

A request speaks for an account when it carries a valid API token (header
``Authorization: Bearer <token>`` or the dashboard's cookie) or, for a paper
voucher, a balance code. The account's role is read from the ledger at every
request, never from the token.

Rules: an account reads its own history; an issuer what touches its
campaigns and merchants; a merchant what it received and sent; the bank what
it signed and every payout; an auditor everything. "Party" is computed once,
in ``node.indexes.parties``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from aiohttp import web

from node.api import tokens
from node.api.problems import ApiError
from node.crypto import PublicKey
from node.ledger import records as r
from node.ledger.state import View

TOKEN_COOKIE = "relance_token"
BALANCE_COOKIE = "relance_balance"


class Role(enum.Enum):
    HOLDER = "holder"
    MERCHANT = "merchant"
    ISSUER = "issuer"
    BANK = "bank"
    AUDITOR = "auditor"


class Scope(enum.Enum):
    ACCOUNT = "account"  # an API token: everything the account may read
    BALANCE = "balance"  # a paper voucher's balance code: its own balance and history


@dataclass(frozen=True, slots=True)
class Viewer:
    key: PublicKey
    role: Role
    scope: Scope

    @property
    def reads_all(self) -> bool:
        return self.role is Role.AUDITOR

    def may_read_history_of(self, account: bytes) -> bool:
        """Whether this viewer may list ``account``'s history at all (entries are
        then filtered to those it is party to, unless it reads all or it is the account)."""
        if self.reads_all or account == self.key:
            return True
        return self.scope is Scope.ACCOUNT and self.role in (Role.ISSUER, Role.BANK)


def role_of(view: View, key: bytes) -> Role:
    if view.get(r.auditor_key(key)) is not None:
        return Role.AUDITOR
    if view.get(r.bank_key(key)) is not None:
        return Role.BANK
    if view.get(r.issuer_key(key)) is not None:
        return Role.ISSUER
    if view.get(r.merchant_key(key)) is not None:
        return Role.MERCHANT
    return Role.HOLDER


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the node needs to check a credential."""

    chain_id: str
    node_key: bytes


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not value.strip():
            raise ApiError(401, "use 'Authorization: Bearer <token>'", slug="malformed-token")
        return value.strip()
    return request.cookies.get(TOKEN_COOKIE)


def authenticate(
    request: web.Request, creds: Credentials, view: View, now_ms: int
) -> Viewer | None:
    """The viewer a request speaks for; None when it carries no credential.

    Raises ``ApiError(401)`` for a credential that does not check.
    """
    token = bearer(request)
    if token is not None:
        account = tokens.check_token(token, creds.chain_id, creds.node_key, now_ms)
        if isinstance(account, tokens.TokenError):
            raise ApiError(401, account.message, slug=account.value)
        return Viewer(account, role_of(view, account), Scope.ACCOUNT)
    code = request.cookies.get(BALANCE_COOKIE)
    if code is not None:
        voucher = tokens.check_balance_code(code, creds.chain_id, now_ms)
        if isinstance(voucher, tokens.TokenError):
            raise ApiError(401, voucher.message, slug=voucher.value)
        return Viewer(voucher, Role.HOLDER, Scope.BALANCE)
    return None


def require(viewer: Viewer | None) -> Viewer:
    if viewer is None:
        raise ApiError(
            401,
            "this reads private history: send 'Authorization: Bearer <token>' "
            "(relance-wallet login prints one)",
            slug="token-required",
            headers={"WWW-Authenticate": 'Bearer realm="relance"'},
        )
    return viewer
