"""The route table's types: an operation (method, path, handler, models, errors), the
routes of one module (``Routes``: its operations and the parts of the API they read) and
the parameters many routes share.

A handler takes the parts its module reads (a small dataclass the module declares), never
the whole ``ApiParts``: ``Routes.parts`` picks them once, when the server registers the
routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Generic, Literal, TypeVar

from aiohttp import web

from node.api.parts import ApiParts
from node.api.schema import JsonSchema, to_json
from node.ledger import tx as t
from node.protocol import limits

P = TypeVar("P")
Handler = Callable[[P, web.Request], Awaitable[object]]


SSE_CONTENT_TYPE: Final = "text/event-stream"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: Literal["path", "query"]
    schema: JsonSchema
    description: str
    required: bool = False


@dataclass(frozen=True, slots=True)
class Operation(Generic[P]):
    method: Literal["GET", "POST"]
    path: str
    handler: Handler[P]
    summary: str
    tag: str
    ok: type | None  # the model of the success response
    params: tuple[Param, ...] = ()
    body: type | None = None
    errors: tuple[int, ...] = ()
    auth: Literal["none", "optional", "required"] = "none"
    ok_status: int = 200
    also_ok: tuple[int, ...] = ()
    content_type: str = "application/json"
    description: str = ""
    extra_responses: dict[int, str] = field(default_factory=dict)
    ok_alternative: type | None = None  # a second success model (a batch's answer)


@dataclass(frozen=True, slots=True)
class Routes(Generic[P]):
    """A module's operations and the parts of the API its handlers read."""

    parts: Callable[[ApiParts], P]
    operations: tuple[Operation[P], ...]


AnyRoutes = Routes[Any]


def pick(cls: Callable[..., P]) -> Callable[[ApiParts], P]:
    """The parts ``cls`` (a dataclass) names, by their names in ``ApiParts``."""
    names = cls.__dataclass_fields__  # type: ignore[attr-defined]

    def parts(api: ApiParts) -> P:
        return cls(**{name: getattr(api, name) for name in names})

    return parts


def query_param(name: str, schema: JsonSchema, description: str) -> Param:
    return Param(name, "query", schema, description)


def path_param(name: str, schema: JsonSchema, description: str) -> Param:
    return Param(name, "path", schema, description, required=True)


HEX32: Final[JsonSchema] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}


CURSOR = query_param(
    "cursor", {"type": "string", "maxLength": 344}, "next_cursor of the previous page"
)


LIMIT = query_param(
    "limit",
    {"type": "integer", "minimum": 1, "maximum": limits.HTTP_PAGE_ITEMS_MAX},
    f"items per page (default 50, at most {limits.HTTP_PAGE_ITEMS_MAX})",
)


KIND = query_param(
    "kind",
    {"type": "string", "enum": [k.name.lower() for k in t.Kind]},
    "only transactions of this kind (repeat for several)",
)


CAMPAIGN_Q = query_param("campaign", {"type": "string", "maxLength": 32}, "only this campaign")


def json_response(model: object, status: int = 200) -> web.Response:
    return web.json_response(to_json(model), status=status)


KEY_P = path_param("key", HEX32, "an account's public key, hex")
