"""Strict readers of what a client sends: numbers, hex, base64url and JSON bodies.

One spelling per value: numbers are ASCII digits only (``str.isdigit`` also
accepts ``²`` or Arabic-Indic digits, which ``int`` then refuses or reads as
another number), bounded in length before they are converted; hex is
lowercase and exact in length; base64url has no padding and no spare bits
(``node.api.tokens.unb64url``, shared with the wallet);
JSON bodies are UTF-8, bounded in nesting depth and in the digits of a number,
without NaN, Infinity or repeated keys; keys, ids, heights, page sizes, kinds and
cursors as the routes take them. Every refusal is an ``ApiError(400)``, answered as
a problem document, never a 500.

Pure: no I/O (``read_json`` takes the body's bytes; the query readers take the request
whose query string aiohttp has already read).
"""

from __future__ import annotations

import json
import re
from typing import Final

from aiohttp import web

from node.api.problems import ApiError
from node.api.tokens import b64url, unb64url
from node.ledger import tx as t
from node.protocol import limits
from node.protocol.crypto import PUBLIC_KEY_BYTES, PublicKey
from node.protocol.errors import ApiProblem

__all__ = [
    "b64url",
    "decode_cursor",
    "encode_cursor",
    "is_ascii_digits",
    "parse_height",
    "parse_hex",
    "parse_id",
    "parse_key",
    "parse_kinds",
    "parse_limit",
    "parse_uint",
    "read_json",
    "unb64url",
]

_DIGITS: Final = re.compile(r"[0-9]+")
_HEX: Final = re.compile(r"[0-9a-f]*")


def is_ascii_digits(text: str, max_digits: int) -> bool:
    """Whether ``text`` is 1 to ``max_digits`` ASCII digits."""
    return 0 < len(text) <= max_digits and _DIGITS.fullmatch(text) is not None


def parse_uint(
    text: str, lo: int, hi: int, detail: str, slug: str, max_digits: int | None = None
) -> int:
    """``text`` as an integer in ``lo..hi``: ASCII digits only, at most as many as ``hi`` has."""
    digits = len(str(hi)) if max_digits is None else max_digits
    if not is_ascii_digits(text, digits) or not lo <= int(text) <= hi:
        raise ApiError(400, detail, slug=slug)
    return int(text)


def parse_hex(text: str, size: int) -> bytes | None:
    """Exactly ``size`` bytes in lowercase hex, or None (no spaces, no capitals)."""
    if len(text) != 2 * size or _HEX.fullmatch(text) is None:
        return None
    return bytes.fromhex(text)


# --- what routes take: keys, ids, heights, pages, kinds, cursors -------------------------


def encode_cursor(raw: bytes) -> str:
    return b64url(raw)


def decode_cursor(text: str, max_bytes: int = 256) -> bytes:
    raw = unb64url(text) if len(text) <= 2 * max_bytes else None
    if not raw or len(raw) > max_bytes:
        raise ApiError(400, "the cursor is not one this node gave", slug="bad-cursor")
    return raw


def parse_key(text: str, what: str = "account") -> PublicKey:
    raw = parse_hex(text, PUBLIC_KEY_BYTES)
    if raw is None:
        raise ApiError(400, f"an {what} key is 32 bytes in lowercase hex", slug="bad-key")
    return PublicKey(raw)


def parse_id(text: str, what: str) -> bytes:
    raw = parse_hex(text, 32)
    if raw is None:
        raise ApiError(400, f"a {what} is 64 lowercase hex digits", slug="bad-id")
    return raw


def parse_limit(request: web.Request, default: int = 50) -> int:
    text = request.query.get("limit")
    if text is None:
        return default
    top = limits.HTTP_PAGE_ITEMS_MAX
    return parse_uint(text, 1, top, f"limit is 1 to {top}", "bad-limit")


def parse_height(text: str, what: str = "a height") -> int:
    top = limits.HEIGHT_MAX
    return parse_uint(text, 0, top, f"{what} is an integer from 0 to {top}", "bad-height")


def parse_kinds(request: web.Request) -> frozenset[t.Kind]:
    names = [n for value in request.query.getall("kind", []) for n in value.split(",") if n]
    try:
        return frozenset(t.Kind[name.upper()] for name in names)
    except KeyError:
        raise ApiError(
            400, "kind is one of the transaction kinds, lowercase", slug="bad-kind"
        ) from None


# --- JSON bodies ----------------------------------------------------------------------------


class _Refused(ApiProblem, ValueError):
    pass


def _int(text: str) -> int:
    if len(text.lstrip("-")) > limits.HTTP_JSON_NUMBER_DIGITS_MAX:
        raise _Refused(f"a number has at most {limits.HTTP_JSON_NUMBER_DIGITS_MAX} digits")
    return int(text)


def _float(text: str) -> float:
    if len(text) > limits.HTTP_JSON_NUMBER_DIGITS_MAX + 8:
        raise _Refused(f"a number has at most {limits.HTTP_JSON_NUMBER_DIGITS_MAX} digits")
    return float(text)


def _constant(name: str) -> object:
    raise _Refused(f"{name} is not JSON")


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _Refused(f"the key {key!r} is repeated")
        out[key] = value
    return out


def _depth(value: object) -> int:
    """The nesting depth of a decoded JSON value (iteratively: no recursion)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in item)
    return deepest


def read_json(body: bytes) -> object:
    """A JSON body, strictly: UTF-8, no NaN/Infinity, no repeated keys, numbers of at most
    ``limits.HTTP_JSON_NUMBER_DIGITS_MAX`` digits, nesting at most
    ``limits.HTTP_JSON_DEPTH_MAX``. Raises ``ApiError(400)`` otherwise."""
    cap = limits.HTTP_JSON_DEPTH_MAX
    try:
        value = json.loads(
            body.decode("utf-8"),
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
            object_pairs_hook=_object,
        )
    except _Refused as refused:
        raise ApiError(400, f"the body is refused: {refused}", slug="malformed-json") from None
    except (ValueError, RecursionError):  # also JSONDecodeError, UnicodeDecodeError; the C
        # decoder stops at the interpreter's recursion limit with RecursionError
        raise ApiError(400, "the body must be JSON", slug="malformed-json") from None
    if _depth(value) > cap:
        raise ApiError(400, f"JSON nests at most {cap} deep", slug="malformed-json")
    return value
