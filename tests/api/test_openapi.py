"""The OpenAPI document: valid 3.1, generated from the handlers' own table and models,
and a bounded schemathesis run against the live node (no 5xx, responses match)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from openapi_spec_validator import validate

from node.api.routes import OPERATIONS
from node.api.routes.analytics import ANALYTICS_OPERATIONS
from node.api.routes.state import STATE_OPERATIONS
from tests.api.world import World

CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


def test_the_document_is_valid_openapi_3_1(world: World) -> None:
    response = world.node.get("/v1/openapi.json")
    assert response.status == 200
    document = response.json()
    assert document["openapi"] == "3.1.0"
    validate(document)


def test_every_route_is_documented_and_only_those(world: World) -> None:
    document = world.node.get("/v1/openapi.json").json()
    paths = document["paths"]
    assert isinstance(paths, dict)
    documented = {(method.upper(), path) for path, ops in paths.items() for method in ops}
    served = (*OPERATIONS, *ANALYTICS_OPERATIONS, *STATE_OPERATIONS)
    assert documented == {(op.method, op.path) for op in served}
    routes = {
        (route.method, route.resource.canonical)
        for route in world.node.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/v1/")
        and route.method != "HEAD"
    }
    assert routes - {("GET", "/v1/openapi.json")} == documented
    schemas = document["components"]["schemas"]  # type: ignore[index]
    assert {"Problem", "Account", "Campaign", "Transaction", "StateProof"} <= set(schemas)
    json.dumps(document)  # plain JSON all the way down


def test_schemathesis_finds_no_server_error_and_no_schema_mismatch(world: World) -> None:
    """A bounded run (fixed seed, few examples per operation) as the auditor, who may
    read every route; the stream is left out (it never ends)."""
    node = world.node
    st = Path(sys.executable).parent / "st"
    command = [
        str(st), "run", node.url + "/v1/openapi.json",
        "--checks", ",".join(CHECKS),
        "--exclude-path", "/v1/stream",
        "--header", f"Authorization: Bearer {node.token(world.auditor.signer)}",
        "--max-examples", "12", "--seed", "20261129", "--no-color",
        "--phases", "examples,coverage,fuzzing", "--request-timeout", "10",
        "--generation-database", "none",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert counts is not None, done.stdout[-2000:]
    generated, passed = int(counts[1]), int(counts[2])
    assert generated == passed > 200
