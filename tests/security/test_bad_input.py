"""Finding 6: bad input gets 400 problem+json, never a 500 and a traceback.

JSON nested 100,000 deep, a 5,000-digit integer, Unicode digits in paths and
parameters (``str.isdigit`` accepts SUPERSCRIPT TWO and ARABIC-INDIC DIGIT ONE; ``int``
then fails on the first and reads the second as 1), in every route module that parses
them: ``routes``, ``analytics_routes``, ``settlement_routes``, ``dashboards`` and
``core.parse_*`` (all through ``node.api.inputs``).
"""

from __future__ import annotations

import pytest

from node.api import inputs
from node.api.problems import PROBLEM_CONTENT_TYPE, ApiError
from tests.api.harness import HttpResult
from tests.api.world import World

DEEP = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
HUGE = b'{"tx": ' + b"7" * 5_000 + b"}"
SUPERSCRIPT_TWO = "%C2%B2"  # ² percent-encoded
ARABIC_ONE = "%D9%A1"  # ARABIC-INDIC DIGIT ONE: int() reads it as 1
FULLWIDTH_FIVE = "%EF%BC%95"  # FULLWIDTH DIGIT FIVE


def assert_bad_request(response: HttpResult) -> None:
    assert response.status == 400, (response.status, response.body[:300])
    assert response.content_type == PROBLEM_CONTENT_TYPE
    assert response.json()["status"] == 400


@pytest.mark.parametrize("body", [DEEP, DEEP_OBJECT, HUGE, b'{"tx": NaN}', b'{"tx":"a","tx":"b"}'])
def test_a_hostile_json_body_is_refused_on_submit(secure_world: World, body: bytes) -> None:
    assert_bad_request(secure_world.node.http("POST", "/v1/transactions", body))


@pytest.mark.parametrize("body", [DEEP, HUGE])
def test_a_hostile_json_body_is_refused_by_the_bank(secure_world: World, body: bytes) -> None:
    node = secure_world.node
    token = node.token(secure_world.bakery.signer)
    assert_bad_request(node.http("POST", "/v1/settlement/iban", body, token=token))


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/blocks/{SUPERSCRIPT_TWO}",
        f"/v1/blocks/{ARABIC_ONE}",
        f"/v1/blocks/{FULLWIDTH_FIVE}",
        "/v1/blocks/" + "9" * 5_000,
        f"/v1/blocks?limit={SUPERSCRIPT_TWO}",
        f"/v1/campaigns?limit={ARABIC_ONE}",
        f"/v1/merchants?limit={FULLWIDTH_FIVE}",
        f"/v1/validators?limit={SUPERSCRIPT_TWO}",
        "/v1/blocks?limit=" + "1" * 5_000,
    ],
)
def test_unicode_digits_are_refused_in_public_routes(secure_world: World, path: str) -> None:
    assert_bad_request(secure_world.node.get(path))


def test_unicode_digits_are_refused_in_private_routes(secure_world: World) -> None:
    node, world = secure_world.node, secure_world
    auditor = node.token(world.auditor.signer)
    namur = node.token(world.namur.signer)
    for path, token in [
        (f"/v1/blocks/{SUPERSCRIPT_TWO}/certified", auditor),
        (f"/v1/blocks/{ARABIC_ONE}/certified", auditor),
        (f"/v1/transactions?limit={SUPERSCRIPT_TWO}", namur),
        (f"/v1/payouts?limit={ARABIC_ONE}", namur),
        (f"/v1/analytics/zones?k={SUPERSCRIPT_TWO}", namur),
        (f"/v1/analytics/zones?k={ARABIC_ONE}0", namur),
        ("/v1/analytics/zones?k=" + "9" * 5_000, namur),
        (f"/v1/settlement/statement?from_ms={SUPERSCRIPT_TWO}", namur),
        (f"/v1/settlement/statement.csv?to_ms={ARABIC_ONE}", namur),
        ("/v1/settlement/statement?to_ms=" + "9" * 5_000, namur),
    ]:
        assert_bad_request(node.get(path, token))


def test_the_strict_parsers_take_one_spelling_only() -> None:
    assert inputs.parse_uint("42", 1, 500, "x", "bad") == 42
    unicode_digits = ("²", "\u0661", "\u0664\u0662", "\uff15")
    for text in (*unicode_digits, "4 2", " 42", "+42", "-1", "4_2", "0x2a", "", "501", "0"):
        with pytest.raises(ApiError):
            inputs.parse_uint(text, 1, 500, "x", "bad")
    key = "ab" * 32
    assert inputs.parse_hex(key, 32) == bytes.fromhex(key)
    for text in (key.upper(), " " + key[1:], key[:-1] + "\u0660", key + "00"):
        assert inputs.parse_hex(text, 32) is None
    assert inputs.unb64url("YQ") == b"a"
    for text in ("YQ==", "YR", "Y Q", "Y", "YQ\n", "YQ=", "Y+"):
        assert inputs.unb64url(text) is None, text


def test_good_input_still_answers(secure_world: World) -> None:
    node = secure_world.node
    assert node.get("/v1/blocks/1").status == 200
    assert node.get("/v1/blocks?limit=2").status == 200
    token = node.token(secure_world.namur.signer)
    assert node.get("/v1/analytics/zones?k=7", token).status == 200
    assert node.get("/v1/settlement/statement?from_ms=0&to_ms=99", token).status == 200
