"""Access tokens and paper-voucher balance codes: the only credentials the API reads.

**API token** (``relance-wallet login``): the account signs, with its own key,
the canonical body ``[1, "api-token", chain_id, node_key, account_pk,
issued_ms, expires_ms]`` under ``Domain.API_TOKEN``. The token is bound to
one chain and one node (``node_key`` is that node's public key), lives at most
``limits.API_TOKEN_TTL_MAX_MS`` and is printed as
``base64url(body) "." base64url(signature)`` (no padding). The node checks
the account's role on the ledger at every request; the token itself carries
no role.

**Login link** (the dashboard link ``relance-wallet login`` prints): the same
body with the kind ``"login-link"``. The node takes it at ``/ui/login`` only,
once, and gives the browser a random session id in exchange
(``node.api.logins``); it is never an API token. An API token pasted into the
login form is exchanged the same way and is spent by it.

Every part is read strictly: base64url without padding or spare bits, the
canonical msgpack encoding, so a token has exactly one spelling and its id
(``token_id``) cannot be changed by re-spelling it.

**Balance code** (printed on a paper voucher letter, next to the spending QR
code): the voucher key signs ``[1, "balance-code", chain_id, voucher_pk,
expires_ms]`` under ``Domain.API_TOKEN``, with ``expires_ms`` the campaign's
end. The code is ``base64url(msgpack([1, voucher_pk, expires_ms,
signature]))`` (about 150 characters), and the letter prints the link
``<node URL>/b/<code>``. It opens the voucher's balance and history and
nothing else: it cannot spend (spending needs the seed), and it cannot pose
as an API token (another body kind). It is not bound to one node, since a
letter outlives any one node's address.

Pure: no clock (``now_ms`` is an input), no I/O.
"""

from __future__ import annotations

import base64
import binascii
import enum
import re
from dataclasses import dataclass
from typing import Final

from node.protocol import codec, limits
from node.protocol.codec import DecodeError
from node.protocol.crypto import (
    PUBLIC_KEY_BYTES,
    SIGNATURE_BYTES,
    Digest,
    Domain,
    PublicKey,
    Signer,
    digest,
    verify,
)

TOKEN_VERSION: Final = 1
TOKEN_KIND: Final = "api-token"
LINK_KIND: Final = "login-link"
BALANCE_CODE_KIND: Final = "balance-code"
_INT_MAX: Final = 2**63 - 1
_BODY_BYTES_MAX: Final = 256


class TokenProblem(enum.Enum):
    """Why a token or code is refused: returned, never raised (``check_token`` answers a key or
    one of these). The values are the API's problem slugs."""

    MALFORMED = "malformed-token"
    WRONG_CHAIN = "token-of-another-chain"
    WRONG_NODE = "token-of-another-node"
    BAD_SIGNATURE = "bad-token-signature"
    EXPIRED = "token-expired"
    NOT_YET_VALID = "token-not-yet-valid"
    TOO_LONG_LIVED = "token-lifetime-too-long"
    LOGIN_LINK = "login-link-is-not-a-token"

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES: Final = {
    TokenProblem.MALFORMED: "the token is not one canonical, printable token",
    TokenProblem.WRONG_CHAIN: "the token was made for another chain",
    TokenProblem.WRONG_NODE: "the token was made for another node",
    TokenProblem.BAD_SIGNATURE: "the token's signature does not verify for its account",
    TokenProblem.EXPIRED: "the token has expired: log in again with the wallet",
    TokenProblem.NOT_YET_VALID: "the token is issued in the future (check the wallet's clock)",
    TokenProblem.TOO_LONG_LIVED: "the token lives longer than the node allows",
    TokenProblem.LOGIN_LINK: "this is a dashboard login link, not an API token "
    "(relance-wallet login prints both)",
}


_B64URL: Final = re.compile(r"[A-Za-z0-9_-]*")


def b64url(data: bytes) -> str:
    """The one spelling of bytes in tokens, codes and cursors: base64url, no padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes | None:
    """The bytes of canonical base64url (as ``b64url`` writes it), or None: no padding,
    no character outside the alphabet, no non-zero spare bits."""
    if len(text) % 4 == 1 or _B64URL.fullmatch(text) is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
    return raw if b64url(raw) == text else None


def _unb64(text: str) -> bytes:
    raw = unb64url(text) if text else None
    if raw is None:
        raise DecodeError("not canonical base64url")
    return raw


# --- API tokens -------------------------------------------------------------------


def token_body(
    chain_id: str,
    node_key: bytes,
    account: bytes,
    issued_ms: int,
    expires_ms: int,
    kind: str = TOKEN_KIND,
) -> bytes:
    return codec.encode([TOKEN_VERSION, kind, chain_id, node_key, account, issued_ms, expires_ms])


def make_token(
    signer: Signer,
    chain_id: str,
    node_key: bytes,
    issued_ms: int,
    ttl_ms: int,
    kind: str = TOKEN_KIND,
) -> str:
    """A printable token (or, with ``kind=LINK_KIND``, a login link's token) for
    ``signer``'s account on the node ``node_key``."""
    if kind not in (TOKEN_KIND, LINK_KIND):
        raise ValueError(f"a token's kind is {TOKEN_KIND!r} or {LINK_KIND!r}")
    if not 0 < ttl_ms <= limits.API_TOKEN_TTL_MAX_MS:
        raise ValueError(f"a token lives 1 to {limits.API_TOKEN_TTL_MAX_MS} ms")
    if len(node_key) != PUBLIC_KEY_BYTES:
        raise ValueError("a node key is 32 bytes")
    body = token_body(chain_id, node_key, signer.public_key, issued_ms, issued_ms + ttl_ms, kind)
    signature = signer.sign(Domain.API_TOKEN, chain_id, body)
    return b64url(body) + "." + b64url(signature)


@dataclass(frozen=True, slots=True)
class Login:
    """A checked token presented to log in: whose, until when, and its one-time id."""

    account: PublicKey
    expires_ms: int
    token_id: Digest
    kind: str


def check_token(
    token: str, chain_id: str, node_key: bytes, now_ms: int
) -> PublicKey | TokenProblem:
    """The API token's account, or why the token is refused (checked in this order:
    shape, kind, chain, node, lifetime, expiry, signature). A login link is refused."""
    checked = check_login(token, chain_id, node_key, now_ms)
    if isinstance(checked, TokenProblem):
        return checked
    if checked.kind != TOKEN_KIND:
        return TokenProblem.LOGIN_LINK
    return checked.account


def check_login(token: str, chain_id: str, node_key: bytes, now_ms: int) -> Login | TokenProblem:
    """A login link or an API token presented to log in, or why it is refused."""
    parsed = _parse_token(token)
    if isinstance(parsed, TokenProblem):
        return parsed
    body, signature, kind, fields = parsed
    token_chain, token_node, account, issued_ms, expires_ms = fields
    if token_chain != chain_id:
        return TokenProblem.WRONG_CHAIN
    if token_node != node_key:
        return TokenProblem.WRONG_NODE
    if expires_ms - issued_ms > limits.API_TOKEN_TTL_MAX_MS or expires_ms <= issued_ms:
        return TokenProblem.TOO_LONG_LIVED
    if issued_ms > now_ms + limits.API_TOKEN_CLOCK_SKEW_MS:
        return TokenProblem.NOT_YET_VALID
    if now_ms >= expires_ms:
        return TokenProblem.EXPIRED
    if not verify(Domain.API_TOKEN, chain_id, body, account, signature):
        return TokenProblem.BAD_SIGNATURE
    return Login(PublicKey(account), expires_ms, token_id(token), kind)


_TokenFields = tuple[str, bytes, bytes, int, int]


def _parse_token(token: str) -> tuple[bytes, bytes, str, _TokenFields] | TokenProblem:
    if not isinstance(token, str) or len(token) > limits.API_TOKEN_CHARS_MAX:
        return TokenProblem.MALFORMED
    parts = token.split(".")
    if len(parts) != 2:
        return TokenProblem.MALFORMED
    try:
        body, signature = _unb64(parts[0]), _unb64(parts[1])
        if len(signature) != SIGNATURE_BYTES:
            return TokenProblem.MALFORMED
        items = codec.as_list(codec.decode(body, _BODY_BYTES_MAX), 7)
        codec.as_int(items[0], TOKEN_VERSION, TOKEN_VERSION)
        kind = codec.as_str(items[1], 32)
        if kind not in (TOKEN_KIND, LINK_KIND):
            return TokenProblem.MALFORMED
        fields = (
            codec.as_str(items[2], 255),
            codec.as_bytes(items[3], PUBLIC_KEY_BYTES),
            codec.as_bytes(items[4], PUBLIC_KEY_BYTES),
            codec.as_int(items[5], 0, _INT_MAX),
            codec.as_int(items[6], 0, _INT_MAX),
        )
    except DecodeError:
        return TokenProblem.MALFORMED
    return body, signature, kind, fields


def token_id(token: str) -> Digest:
    """What identifies a token for one-time use: the hash of its one canonical spelling
    (``check_login`` has refused every other spelling before this is asked)."""
    return digest(token.encode("ascii", "replace"))


# --- balance codes -------------------------------------------------------------------


def balance_code_body(chain_id: str, voucher: bytes, expires_ms: int) -> bytes:
    return codec.encode([TOKEN_VERSION, BALANCE_CODE_KIND, chain_id, voucher, expires_ms])


def make_balance_code(voucher: Signer, chain_id: str, expires_ms: int) -> str:
    """The code printed on a paper voucher's letter; ``expires_ms`` is the campaign's end."""
    if not 0 < expires_ms <= _INT_MAX:
        raise ValueError("expires_ms must be a positive Unix time in milliseconds")
    body = balance_code_body(chain_id, voucher.public_key, expires_ms)
    signature = voucher.sign(Domain.API_TOKEN, chain_id, body)
    return b64url(codec.encode([TOKEN_VERSION, voucher.public_key, expires_ms, signature]))


def check_balance_code(code: str, chain_id: str, now_ms: int) -> PublicKey | TokenProblem:
    """The voucher key a balance code opens, or why it is refused.

    A code of another chain fails its signature (the chain id is signed, not carried).
    """
    if not isinstance(code, str) or len(code) > limits.BALANCE_CODE_CHARS_MAX:
        return TokenProblem.MALFORMED
    try:
        items = codec.as_list(codec.decode(_unb64(code), _BODY_BYTES_MAX), 4)
        codec.as_int(items[0], TOKEN_VERSION, TOKEN_VERSION)
        voucher = codec.as_bytes(items[1], PUBLIC_KEY_BYTES)
        expires_ms = codec.as_int(items[2], 0, _INT_MAX)
        signature = codec.as_bytes(items[3], SIGNATURE_BYTES)
    except DecodeError:
        return TokenProblem.MALFORMED
    if expires_ms - now_ms > limits.BALANCE_CODE_TTL_MAX_MS:
        return TokenProblem.TOO_LONG_LIVED
    if now_ms >= expires_ms:
        return TokenProblem.EXPIRED
    body = balance_code_body(chain_id, voucher, expires_ms)
    if not verify(Domain.API_TOKEN, chain_id, body, voucher, signature):
        return TokenProblem.BAD_SIGNATURE
    return PublicKey(voucher)
