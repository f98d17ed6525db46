"""The one canonical encoding: msgpack arrays, no maps, no floats.

Every signed or hashed record is ``[version, kind, fields...]`` in declared
order. ``decode`` is strict: it rejects maps, floats, extension types,
trailing bytes, and any input whose re-encoding differs from itself, so two
nodes can never disagree about the bytes behind a value.

Imports nothing of the project.
"""

from __future__ import annotations

from typing import Final

import msgpack

# What may appear inside a canonical value.
Value = int | bytes | str | bool | None | list["Value"]

NESTING_MAX: Final = 8


class DecodeError(ValueError):
    """The bytes are not one canonical value."""


def _reject_map(pairs: object) -> object:
    raise DecodeError("maps are not canonical")


def _reject_ext(code: int, data: bytes) -> object:
    raise DecodeError("extension types are not canonical")


def encode(value: Value) -> bytes:
    """Encode a canonical value. Raises TypeError on anything else."""
    return msgpack.packb(value, use_bin_type=True, strict_types=True)


def decode(data: bytes, max_bytes: int) -> Value:
    """Decode exactly one canonical value from ``data`` (at most ``max_bytes``)."""
    if len(data) > max_bytes:
        raise DecodeError("too large")
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_reject_map,
            ext_hook=_reject_ext,
        )
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed: {exc.__class__.__name__}") from None
    _check_types(value, 0)
    if encode(value) != data:
        raise DecodeError("not canonical")
    return value  # type: ignore[no-any-return]  # checked by _check_types


_SCALARS: Final = frozenset({int, bytes, str, bool, type(None)})


def _check_types(value: object, depth: int) -> None:
    kind = type(value)
    if kind is list:
        if depth >= NESTING_MAX:
            raise DecodeError("nested too deep")
        for item in value:  # type: ignore[attr-defined]  # kind is list
            if type(item) is list:
                _check_types(item, depth + 1)
            elif type(item) not in _SCALARS:
                raise DecodeError(f"type {type(item).__name__} is not canonical")
    elif kind not in _SCALARS:
        raise DecodeError(f"type {kind.__name__} is not canonical")


def decode_trusted(data: bytes) -> Value:
    """Decode bytes whose canonical form is already established: bytes this node
    wrote itself, or bytes authenticated by a hash that was checked. Skips the
    re-encoding comparison and the type walk (the hot path of every state read);
    callers must read every field with the typed accessors, which reject floats."""
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=True,
            object_pairs_hook=_reject_map,
            ext_hook=_reject_ext,
        )
    except DecodeError:
        raise
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.UnpackException) as exc:
        raise DecodeError(f"malformed: {exc.__class__.__name__}") from None
    return value  # type: ignore[no-any-return]  # the typed accessors check each field


def as_list(value: Value, length: int) -> list[Value]:
    if not isinstance(value, list) or len(value) != length:
        raise DecodeError(f"expected a list of {length}")
    return value


def as_int(value: Value, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise DecodeError("expected an integer")
    if not low <= value <= high:
        raise DecodeError("integer out of range")
    return value


def as_bytes(value: Value, length: int) -> bytes:
    if not isinstance(value, bytes) or len(value) != length:
        raise DecodeError(f"expected {length} bytes")
    return value


def as_str(value: Value, max_chars: int) -> str:
    if not isinstance(value, str) or len(value) > max_chars:
        raise DecodeError("expected a short string")
    return value


def as_bool(value: Value) -> bool:
    if not isinstance(value, bool):
        raise DecodeError("expected a boolean")
    return value
