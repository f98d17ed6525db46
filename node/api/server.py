"""The node's HTTP face (aiohttp): the ``/v1`` API, ``/metrics``, the dashboards.

One middleware guards every request, in this order: per-client rate limit
(429), declared body size (413; aiohttp's ``client_max_size`` enforces it
while reading too), the handler, then any error as a problem document
(RFC 9457), the latency metric, and CORS headers only for configured origins
(CORS is off by default).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Final

from aiohttp import web

from node.api import bank_page, commune_vouchers, counter, dashboards, offload
from node.api.access import BALANCE_COOKIE, SESSION_COOKIE
from node.api.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from node.api.metrics import NodeMetrics
from node.api.openapi import openapi_document
from node.api.operation import AnyRoutes, Operation, P, json_response, pick
from node.api.page_parts import PageParts
from node.api.parts import ApiConfig, ApiParts, NodeStatus
from node.api.problems import ApiError
from node.api.ratelimit import client_of
from node.api.routes import ROUTES
from node.api.routes import analytics as analytics_routes
from node.api.routes import state as state_routes
from node.api.view_gate import ApiViews
from node.app.ledger_app import LedgerApp
from node.protocol import limits

__all__ = ["API_KEY", "PAGES_KEY", "ApiConfig", "ApiViews", "NodeStatus", "client_of", "create_app"]

logger = logging.getLogger(__name__)

API_KEY: Final = web.AppKey("api", ApiParts)
PAGES_KEY: Final = web.AppKey("pages", PageParts)  # the parts the dashboards were given
API_VERSION: Final = "1.0.0"
UNLIMITED_PATHS: Final = frozenset({"/metrics", "/v1/health"})
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_app(
    ledger: LedgerApp,
    status: NodeStatus,
    views: ApiViews,
    config: ApiConfig | None = None,
    metrics: NodeMetrics | None = None,
    extra_routes: Sequence[AnyRoutes] = (),
) -> web.Application:
    """The aiohttp application of one node, reading the derived views the node runs.

    The API's parts are built here, once; each route module gets the parts it reads
    (``Routes.parts``) as it is registered. ``extra_routes`` are routes only some nodes
    serve (the bank's settlement routes); they are documented in that node's OpenAPI
    document like the others."""
    api = ApiParts.build(ledger, status, views, config or ApiConfig(), metrics)
    app = web.Application(client_max_size=limits.HTTP_BODY_BYTES_MAX, middlewares=[guard])
    app[API_KEY] = api
    offload.install(app)
    tables = (*ROUTES, analytics_routes.ROUTES, state_routes.ROUTES, *extra_routes)
    for routes in tables:
        parts = routes.parts(api)
        for op in routes.operations:
            app.router.add_route(op.method, op.path, _bind(parts, op))
    document = openapi_document(API_VERSION, tuple(op for r in tables for op in r.operations))

    async def openapi(request: web.Request) -> web.Response:
        return web.json_response(document)

    async def metrics_page(request: web.Request) -> web.Response:
        if api.metrics is None:
            raise ApiError(404, "metrics are not enabled on this node")
        return web.Response(
            body=api.metrics.render(), headers={"Content-Type": METRICS_CONTENT_TYPE}
        )

    app.router.add_get("/v1/openapi.json", openapi)
    app.router.add_get("/metrics", metrics_page)
    pages = app[PAGES_KEY] = pick(PageParts)(api)
    dashboards.add_routes(app, pages)
    bank_page.add_routes(app, pages)
    counter.add_routes(app, pages)
    analytics_routes.install(app, analytics_routes.ROUTES.parts(api))
    commune_vouchers.install(app, pages)
    app.on_response_prepare.append(_answer_headers)
    app.on_shutdown.append(_close_streams)
    app.on_cleanup.append(_release_snapshots)
    return app


async def _close_streams(app: web.Application) -> None:
    app[API_KEY].gate.hub.close_all()


async def _release_snapshots(app: web.Application) -> None:
    state_routes.snapshots(app[API_KEY]).close()


def _bind(parts: P, op: Operation[P]) -> _Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        result = await op.handler(parts, request)
        if isinstance(result, web.StreamResponse):
            return result
        return json_response(result, op.ok_status)

    handle.__name__ = op.handler.__name__
    return handle


@web.middleware
async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
    api = request.app[API_KEY]
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    started = time.perf_counter()
    response: web.StreamResponse
    try:
        response = await _guarded(api, request, handler)
    except ApiError as error:
        response = error.response()
    except web.HTTPException as exc:
        response = _from_http_exception(exc)
    except Exception:
        logger.exception("API %s %s failed", request.method, request.path)
        response = ApiError(500, "the node failed to answer; see its log").response()
    if api.metrics is not None:
        api.metrics.api_latency.labels(route=route, method=request.method).observe(
            time.perf_counter() - started
        )
        api.metrics.api_responses.labels(
            route=route, method=request.method, status=str(response.status)
        ).inc()
    return response


async def _answer_headers(request: web.Request, response: web.StreamResponse) -> None:
    """CORS and ``no-store``, set as any answer is about to be sent: also those a handler
    streams itself (``offload.stream``), whose headers are gone before ``guard`` sees them."""
    origin = request.headers.get("Origin")
    if origin is not None and origin in request.app[API_KEY].config.cors_origins:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    if _with_credentials(request):
        response.headers.setdefault("Cache-Control", "no-store")


_CREDENTIAL_COOKIES: Final = (SESSION_COOKIE, BALANCE_COOKIE)


def _with_credentials(request: web.Request) -> bool:
    """Whether the answer may be someone's own data (a token or a dashboard cookie came
    with the request): no cache keeps it, neither a shared proxy nor the browser's
    history on a library computer after logout. Static files are the same for all."""
    if request.path.startswith(dashboards.STATIC_PREFIX):
        return False
    return "Authorization" in request.headers or any(
        name in request.cookies for name in _CREDENTIAL_COOKIES
    )


async def _guarded(api: ApiParts, request: web.Request, handler: _Handler) -> web.StreamResponse:
    if request.path not in UNLIMITED_PATHS and not api.limiter.allow(
        client_of(request, api.config.trust_forwarded_for)
    ):
        raise ApiError(
            429,
            f"more than {api.config.requests_per_s:g} requests a second from this client",
            slug="rate-limited",
            headers={"Retry-After": str(api.limiter.retry_after_s())},
        )
    declared = request.content_length
    if declared is not None and declared > limits.HTTP_BODY_BYTES_MAX:
        raise ApiError(413, f"bodies are at most {limits.HTTP_BODY_BYTES_MAX} bytes")
    if request.method == "OPTIONS" and request.headers.get("Origin") in api.config.cors_origins:
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Methods": "GET, POST",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600",
            },
        )
    return await handler(request)


def _from_http_exception(exc: web.HTTPException) -> web.StreamResponse:
    if exc.status < 400:  # a redirect (aiohttp's static files raise them)
        return web.Response(status=exc.status, headers=exc.headers)
    if exc.status == 413:
        detail = f"bodies are at most {limits.HTTP_BODY_BYTES_MAX} bytes"
    elif exc.status == 404:
        detail = "no such route"
    elif exc.status == 405:
        detail = "this route does not take this method"
    else:
        detail = exc.reason
    headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return ApiError(exc.status, detail, headers=headers).response()
