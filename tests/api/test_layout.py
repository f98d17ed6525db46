"""The API's layout (issue 19): a route module's or a page's handlers take the parts of the
API they read (``node.api.operation.Routes``, ``node.api.page_parts.PageParts``), never
the whole composition ``ApiParts``, which only the server builds; and no function in the
route modules exceeds 70 lines (the settlement routes were one 165-line function)."""

from __future__ import annotations

import ast
from pathlib import Path

from node.api.operation import Routes
from node.api.routes import ROUTES as TABLE
from node.api.routes import (
    accounts,
    analytics,
    blocks,
    payouts,
    proofs,
    state,
    status,
    stream,
    submit,
    transactions,
)

API = Path(__file__).resolve().parents[2] / "node" / "api"
ROUTES = API / "routes"
LINES_MAX = 70
# The composition itself, the route table's type (``pick``) and the server that builds it;
# the state routes pick their parts by hand (their snapshots are kept per application).
MAY_NAME_THE_WHOLE = {"parts.py", "operation.py", "server.py", "page_parts.py", "state.py"}


def test_no_route_function_exceeds_70_lines() -> None:
    long = []
    for path in sorted(ROUTES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > LINES_MAX:
                    long.append(f"{path.name}:{node.name} ({lines} lines)")
    assert long == []
    assert (ROUTES / "settlement.py").exists()


def test_handlers_and_pages_take_their_parts_not_the_whole() -> None:
    naming = sorted(
        str(path.relative_to(API))
        for path in API.rglob("*.py")
        if path.name not in MAY_NAME_THE_WHOLE and "ApiParts" in path.read_text(encoding="utf-8")
    )
    assert naming == []
    assert not (API / "core.py").exists()  # the service locator is gone


def test_every_route_module_declares_its_routes() -> None:
    modules = (accounts, analytics, blocks, payouts, proofs, state, status, stream, submit,
               transactions)  # fmt: skip
    assert all(isinstance(module.ROUTES, Routes) for module in modules)
    assert len(TABLE) == 8  # the ``/v1`` table; analytics, state and settlement are added
