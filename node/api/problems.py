"""Errors as ``application/problem+json`` (RFC 9457), carrying the ledger's result code."""

from __future__ import annotations

import json

from aiohttp import web

from node.api.models import Problem
from node.api.schema import to_json
from node.ledger.codes import Result
from node.protocol.errors import ApiProblem

PROBLEM_TYPE_BASE = "https://relance.invalid/problems/"
PROBLEM_CONTENT_TYPE = "application/problem+json"

TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    410: "Gone",
    413: "Body too large",
    415: "Unsupported media type",
    422: "Transaction rejected",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}


class ApiError(ApiProblem):
    """Raised by a handler; the middleware answers it as a problem document."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        slug: str | None = None,
        result: Result | None = None,
        tx_id: str | None = None,
        headers: dict[str, str] | None = None,
        available_cents: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.slug = slug
        self.result = result
        self.tx_id = tx_id
        self.headers = headers or {}
        self.available_cents = available_cents

    def problem(self) -> Problem:
        title = TITLES.get(self.status, "Error")
        if self.result is not None:
            slug = self.result.name.lower().replace("_", "-")
        else:
            slug = self.slug or "-".join(title.lower().split())
        return Problem(
            type=PROBLEM_TYPE_BASE + slug,
            title=title,
            status=self.status,
            detail=self.detail,
            code=None if self.result is None else int(self.result),
            result=None if self.result is None else self.result.name,
            tx_id=self.tx_id,
            available_cents=self.available_cents,
        )

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            text=json.dumps(to_json(self.problem())),
            content_type=PROBLEM_CONTENT_TYPE,
            headers=self.headers,
        )


def problem(status: int, detail: str, result: Result | None = None) -> web.Response:
    return ApiError(status, detail, result=result).response()
