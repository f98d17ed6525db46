"""Who is asking, and what they may read (DESIGN.md: "reading history is private").

A request speaks for an account when it carries a valid API token (header
``Authorization: Bearer <token>``), a dashboard session (the cookie
``relance_session``: a random id the node gave in exchange for a login link,
``node.api.logins``) or, for a paper voucher, a balance code. A token is never
read from a cookie, and a token spent on a dashboard login is no longer a Bearer
credential. The account's role is read from the ledger at every request, never
from the token.

Rules: an account reads its own history; an issuer what touches its
campaigns and merchants; a merchant what it received and sent; the bank what
it signed and every payout; an auditor everything. "Party" is computed once,
in ``node.views.history_index.parties``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from node.api import tokens
from node.api.problems import ApiError
from node.ledger import records as r
from node.ledger.codes import MESSAGES, Result
from node.ledger.rules import signing_account
from node.ledger.state import BlockState, View
from node.protocol.crypto import PublicKey

SESSION_COOKIE = "relance_session"
OLD_TOKEN_COOKIE = "relance_token"  # before sessions: no longer read, cleared at login
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


class Sessions(Protocol):
    """Spent login links and open dashboard sessions (``node.api.logins.Logins``)."""

    def spent(self, login: tokens.Login) -> bool: ...

    def session(self, session_id: str) -> PublicKey | None: ...


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the node needs to check a credential."""

    chain_id: str
    node_key: bytes
    sessions: Sessions


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise ApiError(401, "use 'Authorization: Bearer <token>'", slug="malformed-token")
    return value.strip()


def speaks_for(view: View, key: PublicKey, height: int) -> PublicKey:
    """The account a credential signed by ``key`` speaks for at ``height``: the key itself,
    or the account governance moved to it (``rotate_key``). A key moved away from no longer
    speaks for anyone: ``ApiError(401)``."""
    found = signing_account(BlockState(view), key, height)
    if isinstance(found, Result):
        slug = "key-rotated" if found == Result.KEY_ROTATED else "key-not-yet-in-force"
        raise ApiError(401, MESSAGES[found], slug=slug)
    return found


class Viewers:
    """Who each request speaks for (``authenticate``), read against ``view`` as of the
    next block (``next_height``) and the API's clock."""

    def __init__(
        self,
        creds: Credentials,
        view: View,
        next_height: Callable[[], int],
        clock_ms: Callable[[], int],
    ) -> None:
        self._creds = creds
        self._view = view
        self._next_height = next_height
        self._clock_ms = clock_ms

    def of(self, request: web.Request) -> Viewer | None:
        """The viewer ``request`` speaks for, None without a credential (401 for a bad one)."""
        height = self._next_height()
        return authenticate(request, self._creds, self._view, self._clock_ms(), height)


def authenticate(
    request: web.Request, creds: Credentials, view: View, now_ms: int, height: int
) -> Viewer | None:
    """The viewer a request speaks for at ``height`` (the next block's); None when it
    carries no credential.

    Raises ``ApiError(401)`` for a credential that does not check, or whose key
    governance rotated away from its account.
    """
    token = bearer(request)
    if token is not None:
        login = tokens.check_login(token, creds.chain_id, creds.node_key, now_ms)
        if isinstance(login, tokens.TokenProblem):
            raise ApiError(401, login.message, slug=login.value)
        if login.kind != tokens.TOKEN_KIND:
            error = tokens.TokenProblem.LOGIN_LINK
            raise ApiError(401, error.message, slug=error.value)
        if creds.sessions.spent(login):
            raise ApiError(
                401,
                "this token was exchanged for a dashboard session: make a new one "
                "with relance-wallet login",
                slug="token-spent",
            )
        account = speaks_for(view, login.account, height)
        return Viewer(account, role_of(view, account), Scope.ACCOUNT)
    session_id = request.cookies.get(SESSION_COOKIE)
    if session_id is not None:
        holder = creds.sessions.session(session_id)
        if holder is None:
            raise ApiError(401, "the session has ended: log in again", slug="session-ended")
        account = speaks_for(view, holder, height)
        return Viewer(account, role_of(view, account), Scope.ACCOUNT)
    code = request.cookies.get(BALANCE_COOKIE)
    if code is not None:
        voucher = tokens.check_balance_code(code, creds.chain_id, now_ms)
        if isinstance(voucher, tokens.TokenProblem):
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
