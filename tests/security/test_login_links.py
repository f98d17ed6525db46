"""Finding 4: a "one-time" login link is exchanged once, for a server-side session.

- a token has one spelling: padding, spare bits or foreign characters are refused, so a
  re-spelt link is not a new link;
- ``/ui/login`` gives a random session id (HttpOnly, SameSite=Strict, Secure over TLS or
  behind a trusted proxy that says so); the link is neither the cookie nor, once spent,
  a Bearer token; the wallet's link is never a Bearer token;
- spent links are kept in the node's LevelDB (node-local table) until they expire: a
  restart does not forget them, and other logins cannot flush them (past the caps,
  logins are refused instead).
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from node.api import tokens
from node.api.logins import Logins, Refusal
from node.api.server import API_KEY, PAGES_KEY
from node.protocol import limits
from node.protocol.crypto import Signer, digest
from node.store.blockstore import BlockStore
from tests.api.harness import HOUR_MS, VALIDATOR, HttpResult, LiveNode
from tests.api.world import World

CHAIN = "relance-test"
NODE = VALIDATOR.public_key
T0 = 1_780_000_000_000


def set_cookies(response: HttpResult) -> list[str]:
    return response.headers.get("set-cookie", "").split("\n")


def session_cookie(response: HttpResult) -> str:
    found = [c for c in set_cookies(response) if c.startswith("relance_session=")]
    assert len(found) == 1, set_cookies(response)
    return found[0]


def log_in(node: LiveNode, token: str, headers: dict[str, str] | None = None) -> HttpResult:
    return node.http("GET", f"/ui/login?token={token}", headers=headers)


def whoami(node: LiveNode, headers: dict[str, str]) -> HttpResult:
    return node.http("GET", "/v1/session", headers=headers)


def respellings(token: str) -> list[str]:
    body, signature = token.split(".")
    raw_signature = base64.urlsafe_b64decode(signature + "==")
    padded = base64.urlsafe_b64encode(raw_signature).decode()  # with its "=="
    last = signature[-1]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    spare_bits = signature[:-1] + alphabet[alphabet.index(last) ^ 1]  # 64 bytes: 2 spare bits
    return [
        token + "=",
        token + "==",
        body + "." + padded,
        body + "==." + signature,
        body + "." + spare_bits,
        body + "." + signature[:10] + "\n" + signature[10:],
        body + "." + signature[:10] + "!" + signature[10:],
    ]


def test_a_token_has_one_spelling() -> None:
    alice = Signer(digest(b"alice"))
    token = tokens.make_token(alice, CHAIN, NODE, T0, HOUR_MS)
    assert tokens.check_token(token, CHAIN, NODE, T0) == alice.public_key
    for other in respellings(token):
        assert tokens.check_token(other, CHAIN, NODE, T0) is tokens.TokenProblem.MALFORMED, other
        assert tokens.check_login(other, CHAIN, NODE, T0) is tokens.TokenProblem.MALFORMED, other


def test_a_respelt_link_does_not_log_in_again(secure_world: World) -> None:
    node = secure_world.node
    token = node.token(secure_world.carol.signer)
    assert log_in(node, token).status == 303
    for other in respellings(token)[:5]:  # those a URL carries as they are
        again = log_in(node, other.replace("=", "%3D"))
        assert again.status == 401, other
        assert "relance_session=" not in again.headers.get("set-cookie", "")


def test_the_link_is_exchanged_for_a_session_and_is_no_credential_afterwards(
    secure_world: World,
) -> None:
    node = secure_world.node
    token = node.token(secure_world.bakery.signer)
    first = log_in(node, token)
    assert first.status == 303 and first.headers["location"] == "/ui/merchant"
    cookie = session_cookie(first)
    session_id = cookie.split(";")[0].removeprefix("relance_session=")
    assert len(session_id) >= 43 and session_id not in token and token not in cookie
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    # The session speaks for the merchant ...
    mine = whoami(node, {"Cookie": f"relance_session={session_id}"})
    assert mine.status == 200 and mine.json()["account"] == secure_world.bakery.pk.hex()
    # ... and the spent link is neither a cookie nor a Bearer token any more.
    assert whoami(node, {"Cookie": f"relance_token={token}"}).status == 401
    spent = node.get("/v1/session", token)
    assert spent.status == 401 and spent.json()["type"].endswith("/token-spent")
    assert log_in(node, token).status == 401
    # Logging out ends the session on the node, not only in the browser.
    out = node.http("GET", "/ui/logout", headers={"Cookie": f"relance_session={session_id}"})
    assert out.status == 303
    assert whoami(node, {"Cookie": f"relance_session={session_id}"}).status == 401
    assert whoami(node, {"Cookie": "relance_session=" + "A" * 43}).status == 401


def test_the_wallets_link_is_never_a_bearer_token(secure_world: World) -> None:
    node = secure_world.node
    alice = secure_world.alice.signer
    link = tokens.make_token(
        alice, node.genesis.chain_id, NODE, node.wall_ms, HOUR_MS, tokens.LINK_KIND
    )
    refused = node.get("/v1/session", link)
    assert refused.status == 401 and refused.json()["type"].endswith("/login-link-is-not-a-token")
    landed = log_in(node, link)
    assert landed.status == 303 and landed.headers["location"] == "/ui/holder"
    assert log_in(node, link).status == 401


def test_the_cookie_is_secure_behind_a_trusted_tls_proxy(secure_world: World) -> None:
    node = secure_world.node
    api = node.app[API_KEY]
    https = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "192.0.2.1"}
    # Not trusted: the header is the client's word, not the proxy's.
    plain = log_in(node, node.token(secure_world.dave.signer), https)
    assert "Secure" not in session_cookie(plain)
    node.run(lambda: object.__setattr__(api.config, "trust_forwarded_for", True))
    try:
        secure = log_in(node, node.token(secure_world.liege_shop.signer), https)
        assert "; Secure" in session_cookie(secure)
    finally:
        node.run(lambda: object.__setattr__(api.config, "trust_forwarded_for", False))


def test_spent_links_survive_a_restart_of_the_api(secure_world: World) -> None:
    node = secure_world.node
    api = node.app[API_KEY]
    token = node.token(secure_world.supplier.signer)
    cookie = session_cookie(log_in(node, token)).split(";")[0]
    # What a restart keeps: the store. A new Logins reads it back.
    reborn = node.run(lambda: Logins(node.store, api.config.clock_ms))
    before = api.logins
    pages = node.app[PAGES_KEY]

    def use(logins: Logins) -> None:  # the parts are frozen: as a new application would
        object.__setattr__(api, "logins", logins)
        object.__setattr__(pages, "logins", logins)
        object.__setattr__(api.creds, "sessions", logins)

    node.run(lambda: use(reborn))
    try:
        assert log_in(node, token).status == 401
        assert node.get("/v1/session", token).status == 401
        assert whoami(node, {"Cookie": cookie}).status == 200  # nobody is logged out either
    finally:  # the world is shared by the module's other tests
        node.run(lambda: use(before))


def test_other_logins_cannot_flush_a_spent_link(
    secure_world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    node, world = secure_world.node, secure_world
    token = node.token(world.brasserie.signer)
    assert log_in(node, token).status == 303
    api = node.app[API_KEY]
    remembered = node.run(lambda: len(api.logins))
    monkeypatch.setattr(limits, "API_LOGINS_REMEMBERED_MAX", remembered + 2)
    fresh = [Signer(digest(f"fresh key {n}".encode())) for n in range(3)]
    for signer in fresh:  # keys the ledger does not know have no dashboard
        assert log_in(node, node.token(signer)).status == 401
    for who in (world.bob, world.namur):
        assert log_in(node, node.token(who.signer)).status == 303
    full = log_in(node, node.token(world.liege.signer))
    assert full.status == 503 and "retry-after" in full.headers
    assert log_in(node, token).status == 401  # still spent: nothing was forgotten
    monkeypatch.setattr(limits, "API_LOGINS_REMEMBERED_MAX", 10**9)
    already = node.run(lambda: api.logins.spent_by(world.auditor.pk))
    monkeypatch.setattr(limits, "API_LOGINS_PER_ACCOUNT_MAX", already + 1)
    assert log_in(node, node.token(world.auditor.signer)).status == 303
    assert log_in(node, node.token(world.auditor.signer, ttl_ms=HOUR_MS - 7)).status == 429


def test_spent_links_are_kept_on_disk_until_they_expire(tmp_path: Path) -> None:
    now = [T0]
    alice, bob = Signer(digest(b"alice")), Signer(digest(b"bob"))

    def login(who: Signer, ttl_ms: int) -> tokens.Login:
        token = tokens.make_token(who, CHAIN, NODE, now[0], ttl_ms)
        checked = tokens.check_login(token, CHAIN, NODE, now[0])
        assert isinstance(checked, tokens.Login)
        return checked

    store = BlockStore.open(tmp_path / "data", b"g" * 32, create=True)
    logins = Logins(store, lambda: now[0])
    short, long = login(alice, 60_000), login(bob, HOUR_MS)
    session = logins.exchange(short)
    assert isinstance(session, str) and logins.exchange(long) != session
    assert logins.exchange(short) is Refusal.SPENT
    store.close()

    store = BlockStore.open(tmp_path / "data", b"g" * 32, create=False)  # a restart
    logins = Logins(store, lambda: now[0])
    assert len(logins) == 2 and logins.spent(short) and logins.spent(long)
    assert logins.session(session) == alice.public_key
    now[0] += 60_000  # the short link expires: it and its session are forgotten, not before
    logins.prune()
    assert len(logins) == 1 and not logins.spent(short) and logins.spent(long)
    assert logins.session(session) is None
    assert store.get(b"") is None and list(store.state_items()) == []  # not ledger state
    store.close()
