"""JSON Schema from the API's dataclasses, and JSON from their instances.

The handlers build frozen dataclasses (``node.api.models``); this module turns
the same classes into the OpenAPI document's schemas and their instances into
JSON, so the document cannot drift from what is served.

Conventions:
- a field typed ``X | None`` without a default is required and nullable;
- a field with the default ``None`` is optional: omitted from the JSON when
  None, and typed ``X`` (not nullable) in the schema;
- ``dict[str, object]`` is a free-form object; bytes never appear (hex strings do);
- a class with ``OPEN = True`` allows more properties (problem documents).
- field metadata may carry ``description``, ``pattern``, ``minimum``, ``maximum``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Final, Literal, Union, get_args, get_origin

JsonSchema = dict[str, object]  # JSON Schema is free-form JSON

_SCALARS: Final[dict[type, str]] = {int: "integer", str: "string", bool: "boolean"}
_META_KEYS: Final = ("description", "pattern", "minimum", "maximum", "format", "example")


def ref(cls: type) -> JsonSchema:
    return {"$ref": f"#/components/schemas/{cls.__name__}"}


def schema_of(tp: object, components: dict[str, JsonSchema]) -> JsonSchema:
    """The JSON Schema of type ``tp``; dataclasses are added to ``components``."""
    if tp is type(None):
        return {"type": "null"}
    if isinstance(tp, type) and tp in _SCALARS:
        return {"type": _SCALARS[tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        _add_component(tp, components)
        return ref(tp)
    origin, args = get_origin(tp), get_args(tp)
    if origin is Literal:
        return {"enum": list(args)}
    if origin in (list, tuple):
        return {"type": "array", "items": schema_of(args[0], components)}
    if origin is dict:
        return {"type": "object"}
    if origin in (Union, types.UnionType):
        choices = [schema_of(a, components) for a in args]
        if all(set(c) == {"type"} and isinstance(c["type"], str) for c in choices):
            return {"type": [c["type"] for c in choices]}
        return {"anyOf": choices}
    if tp is object:
        return {}
    raise TypeError(f"no JSON Schema for {tp!r}")


def _optional_inner(tp: object) -> object:
    """``X`` for ``X | None``; ``tp`` otherwise."""
    args = [a for a in get_args(tp) if a is not type(None)]
    if get_origin(tp) in (Union, types.UnionType) and len(args) == 1:
        return args[0]
    return tp


def _add_component(cls: type, components: dict[str, JsonSchema]) -> None:
    name = cls.__name__
    if name in components:
        return
    components[name] = {}  # placeholder: recursion stops here
    hints = typing.get_type_hints(cls)
    properties: dict[str, JsonSchema] = {}
    required: list[str] = []
    for f in dataclasses.fields(cls):
        optional = f.default is None
        tp = _optional_inner(hints[f.name]) if optional else hints[f.name]
        prop = schema_of(tp, components)
        extra = {k: f.metadata[k] for k in _META_KEYS if k in f.metadata}
        prop = {"allOf": [prop], **extra} if extra and "$ref" in prop else {**prop, **extra}
        properties[f.name] = prop
        if not optional:
            required.append(f.name)
    doc = (cls.__doc__ or "").strip()
    schema: JsonSchema = {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": bool(getattr(cls, "OPEN", False)),
    }
    if doc and not doc.startswith(name + "("):
        schema["description"] = " ".join(doc.split())
    components[name] = schema


def to_json(value: object) -> object:
    """A model instance as JSON-ready data (see the conventions above)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, object] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if item is None and f.default is None:
                continue
            out[f.name] = to_json(item)
        return out
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.hex()
    return value
