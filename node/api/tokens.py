"""Access tokens and paper-voucher balance codes: the only credentials the API reads.

**API token** (``relance-wallet login``): the account signs, with its own key,
the canonical body ``[1, "api-token", chain_id, node_key, account_pk,
issued_ms, expires_ms]`` under ``Domain.API_TOKEN``. The token is bound to
one chain and one node (``node_key`` is that node's public key), lives at most
``limits.API_TOKEN_TTL_MAX_MS`` and is printed as
``base64url(body) "." base64url(signature)`` (no padding). The node checks
the account's role on the ledger at every request; the token itself carries
no role.

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
from typing import Final

from node import codec, limits
from node.codec import DecodeError
from node.crypto import PUBLIC_KEY_BYTES, SIGNATURE_BYTES, Domain, PublicKey, Signer, verify

TOKEN_VERSION: Final = 1
TOKEN_KIND: Final = "api-token"
BALANCE_CODE_KIND: Final = "balance-code"
_INT_MAX: Final = 2**63 - 1
_BODY_BYTES_MAX: Final = 256


class TokenError(enum.Enum):
    """Why a token or code is refused. The values are the API's problem slugs."""

    MALFORMED = "malformed-token"
    WRONG_CHAIN = "token-of-another-chain"
    WRONG_NODE = "token-of-another-node"
    BAD_SIGNATURE = "bad-token-signature"
    EXPIRED = "token-expired"
    NOT_YET_VALID = "token-not-yet-valid"
    TOO_LONG_LIVED = "token-lifetime-too-long"

    @property
    def message(self) -> str:
        return _MESSAGES[self]


_MESSAGES: Final = {
    TokenError.MALFORMED: "the token is not one canonical, printable token",
    TokenError.WRONG_CHAIN: "the token was made for another chain",
    TokenError.WRONG_NODE: "the token was made for another node",
    TokenError.BAD_SIGNATURE: "the token's signature does not verify for its account",
    TokenError.EXPIRED: "the token has expired: log in again with the wallet",
    TokenError.NOT_YET_VALID: "the token is issued in the future (check the wallet's clock)",
    TokenError.TOO_LONG_LIVED: "the token lives longer than the node allows",
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not text or not text.isascii():
        raise DecodeError("not base64url")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise DecodeError("not base64url") from None


# --- API tokens -------------------------------------------------------------------


def token_body(
    chain_id: str, node_key: bytes, account: bytes, issued_ms: int, expires_ms: int
) -> bytes:
    return codec.encode(
        [TOKEN_VERSION, TOKEN_KIND, chain_id, node_key, account, issued_ms, expires_ms]
    )


def make_token(signer: Signer, chain_id: str, node_key: bytes, issued_ms: int, ttl_ms: int) -> str:
    """A printable token for ``signer``'s account on the node ``node_key``."""
    if not 0 < ttl_ms <= limits.API_TOKEN_TTL_MAX_MS:
        raise ValueError(f"a token lives 1 to {limits.API_TOKEN_TTL_MAX_MS} ms")
    if len(node_key) != PUBLIC_KEY_BYTES:
        raise ValueError("a node key is 32 bytes")
    body = token_body(chain_id, node_key, signer.public_key, issued_ms, issued_ms + ttl_ms)
    signature = signer.sign(Domain.API_TOKEN, chain_id, body)
    return _b64(body) + "." + _b64(signature)


def check_token(token: str, chain_id: str, node_key: bytes, now_ms: int) -> PublicKey | TokenError:
    """The token's account, or why the token is refused (checked in this order:
    shape, chain, node, lifetime, expiry, signature)."""
    parsed = _parse_token(token)
    if isinstance(parsed, TokenError):
        return parsed
    body, signature, fields = parsed
    token_chain, token_node, account, issued_ms, expires_ms = fields
    if token_chain != chain_id:
        return TokenError.WRONG_CHAIN
    if token_node != node_key:
        return TokenError.WRONG_NODE
    if expires_ms - issued_ms > limits.API_TOKEN_TTL_MAX_MS or expires_ms <= issued_ms:
        return TokenError.TOO_LONG_LIVED
    if issued_ms > now_ms + limits.API_TOKEN_CLOCK_SKEW_MS:
        return TokenError.NOT_YET_VALID
    if now_ms >= expires_ms:
        return TokenError.EXPIRED
    if not verify(Domain.API_TOKEN, chain_id, body, account, signature):
        return TokenError.BAD_SIGNATURE
    return PublicKey(account)


_TokenFields = tuple[str, bytes, bytes, int, int]


def _parse_token(token: str) -> tuple[bytes, bytes, _TokenFields] | TokenError:
    if not isinstance(token, str) or len(token) > limits.API_TOKEN_CHARS_MAX:
        return TokenError.MALFORMED
    parts = token.split(".")
    if len(parts) != 2:
        return TokenError.MALFORMED
    try:
        body, signature = _unb64(parts[0]), _unb64(parts[1])
        if len(signature) != SIGNATURE_BYTES:
            return TokenError.MALFORMED
        items = codec.as_list(codec.decode(body, _BODY_BYTES_MAX), 7)
        codec.as_int(items[0], TOKEN_VERSION, TOKEN_VERSION)
        if codec.as_str(items[1], 32) != TOKEN_KIND:
            return TokenError.MALFORMED
        fields = (
            codec.as_str(items[2], 255),
            codec.as_bytes(items[3], PUBLIC_KEY_BYTES),
            codec.as_bytes(items[4], PUBLIC_KEY_BYTES),
            codec.as_int(items[5], 0, _INT_MAX),
            codec.as_int(items[6], 0, _INT_MAX),
        )
    except DecodeError:
        return TokenError.MALFORMED
    return body, signature, fields


def token_id(token: str) -> bytes:
    """What identifies a token for one-time use (its signature part, as bytes)."""
    return token.rsplit(".", 1)[-1].encode("ascii", "replace")


# --- balance codes -------------------------------------------------------------------


def balance_code_body(chain_id: str, voucher: bytes, expires_ms: int) -> bytes:
    return codec.encode([TOKEN_VERSION, BALANCE_CODE_KIND, chain_id, voucher, expires_ms])


def make_balance_code(voucher: Signer, chain_id: str, expires_ms: int) -> str:
    """The code printed on a paper voucher's letter; ``expires_ms`` is the campaign's end."""
    if not 0 < expires_ms <= _INT_MAX:
        raise ValueError("expires_ms must be a positive Unix time in milliseconds")
    body = balance_code_body(chain_id, voucher.public_key, expires_ms)
    signature = voucher.sign(Domain.API_TOKEN, chain_id, body)
    return _b64(codec.encode([TOKEN_VERSION, voucher.public_key, expires_ms, signature]))


def check_balance_code(code: str, chain_id: str, now_ms: int) -> PublicKey | TokenError:
    """The voucher key a balance code opens, or why it is refused.

    A code of another chain fails its signature (the chain id is signed, not carried).
    """
    if not isinstance(code, str) or len(code) > limits.BALANCE_CODE_CHARS_MAX:
        return TokenError.MALFORMED
    try:
        items = codec.as_list(codec.decode(_unb64(code), _BODY_BYTES_MAX), 4)
        codec.as_int(items[0], TOKEN_VERSION, TOKEN_VERSION)
        voucher = codec.as_bytes(items[1], PUBLIC_KEY_BYTES)
        expires_ms = codec.as_int(items[2], 0, _INT_MAX)
        signature = codec.as_bytes(items[3], SIGNATURE_BYTES)
    except DecodeError:
        return TokenError.MALFORMED
    if expires_ms - now_ms > limits.BALANCE_CODE_TTL_MAX_MS:
        return TokenError.TOO_LONG_LIVED
    if now_ms >= expires_ms:
        return TokenError.EXPIRED
    body = balance_code_body(chain_id, voucher, expires_ms)
    if not verify(Domain.API_TOKEN, chain_id, body, voucher, signature):
        return TokenError.BAD_SIGNATURE
    return PublicKey(voucher)
