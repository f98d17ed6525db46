"""API tokens and balance codes: the formats, and every way they are refused."""

from __future__ import annotations

import base64

import pytest

from node.api import tokens
from node.api.tokens import (
    TokenProblem,
    check_balance_code,
    check_token,
    make_balance_code,
    make_token,
)
from node.protocol import codec, limits
from node.protocol.crypto import Domain, Signer, digest

CHAIN = "relance-test"
NODE = Signer(digest(b"node")).public_key
OTHER_NODE = Signer(digest(b"other node")).public_key
ALICE = Signer(digest(b"alice"))
MALLORY = Signer(digest(b"mallory"))
T0 = 1_780_000_000_000
HOUR = 3_600_000


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_a_token_names_its_account_until_it_expires() -> None:
    token = make_token(ALICE, CHAIN, NODE, T0, HOUR)
    assert check_token(token, CHAIN, NODE, T0) == ALICE.public_key
    assert check_token(token, CHAIN, NODE, T0 + HOUR - 1) == ALICE.public_key
    assert check_token(token, CHAIN, NODE, T0 + HOUR) is TokenProblem.EXPIRED
    assert len(token) < limits.API_TOKEN_CHARS_MAX
    body, _, _ = token.partition(".")
    decoded = codec.decode(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), 256)
    assert decoded == [1, "api-token", CHAIN, NODE, ALICE.public_key, T0, T0 + HOUR]


def test_a_token_is_bound_to_its_chain_and_node() -> None:
    token = make_token(ALICE, CHAIN, NODE, T0, HOUR)
    assert check_token(token, "relance-other", NODE, T0) is TokenProblem.WRONG_CHAIN
    assert check_token(token, CHAIN, OTHER_NODE, T0) is TokenProblem.WRONG_NODE


def test_forged_and_tampered_tokens_are_refused() -> None:
    # Mallory signs a body that claims Alice's account.
    body = tokens.token_body(CHAIN, NODE, ALICE.public_key, T0, T0 + HOUR)
    forged = b64(body) + "." + b64(MALLORY.sign(Domain.API_TOKEN, CHAIN, body))
    assert check_token(forged, CHAIN, NODE, T0) is TokenProblem.BAD_SIGNATURE
    # A longer life written into a real token's body breaks its signature.
    real = make_token(ALICE, CHAIN, NODE, T0, HOUR)
    longer = tokens.token_body(CHAIN, NODE, ALICE.public_key, T0, T0 + 2 * HOUR)
    tampered = b64(longer) + "." + real.split(".")[1]
    assert check_token(tampered, CHAIN, NODE, T0) is TokenProblem.BAD_SIGNATURE
    # A signature made for a transaction (another domain) is not a token signature.
    wrong_domain = b64(body) + "." + b64(ALICE.sign(Domain.TX, CHAIN, body))
    assert check_token(wrong_domain, CHAIN, NODE, T0) is TokenProblem.BAD_SIGNATURE


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b.c",
        "!!!.???",
        "é.é",
        "x" * 600,
        b64(b"\x93\x01\x02\x03") + "." + b64(b"s" * 64),
    ],
)
def test_malformed_tokens_are_refused(token: str) -> None:
    assert check_token(token, CHAIN, NODE, T0) is TokenProblem.MALFORMED


def test_lifetimes_are_capped_and_checked() -> None:
    with pytest.raises(ValueError):
        make_token(ALICE, CHAIN, NODE, T0, limits.API_TOKEN_TTL_MAX_MS + 1)
    body = tokens.token_body(
        CHAIN, NODE, ALICE.public_key, T0, T0 + limits.API_TOKEN_TTL_MAX_MS + 1
    )
    too_long = b64(body) + "." + b64(ALICE.sign(Domain.API_TOKEN, CHAIN, body))
    assert check_token(too_long, CHAIN, NODE, T0) is TokenProblem.TOO_LONG_LIVED
    future = make_token(ALICE, CHAIN, NODE, T0 + 10 * limits.API_TOKEN_CLOCK_SKEW_MS, HOUR)
    assert check_token(future, CHAIN, NODE, T0) is TokenProblem.NOT_YET_VALID


def test_a_balance_code_opens_its_voucher_and_nothing_else() -> None:
    voucher = Signer(digest(b"paper voucher"))
    end = T0 + 90 * 24 * HOUR
    code = make_balance_code(voucher, CHAIN, end)
    assert len(code) <= 160 and "." not in code
    assert check_balance_code(code, CHAIN, T0) == voucher.public_key
    assert check_balance_code(code, CHAIN, end) is TokenProblem.EXPIRED
    assert check_balance_code(code, "relance-other", T0) is TokenProblem.BAD_SIGNATURE
    assert check_balance_code(code[:-4] + "AAAA", CHAIN, T0) in (
        TokenProblem.BAD_SIGNATURE,
        TokenProblem.MALFORMED,
    )
    assert check_balance_code("%%%", CHAIN, T0) is TokenProblem.MALFORMED
    # A code is not a token, and a token is not a code.
    assert check_token(code, CHAIN, NODE, T0) is TokenProblem.MALFORMED
    assert check_balance_code(make_token(voucher, CHAIN, NODE, T0, HOUR), CHAIN, T0) is (
        TokenProblem.MALFORMED
    )
