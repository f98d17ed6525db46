"""Functions that read top to bottom: none in the API's route modules exceeds 70 lines
(issue 19; the settlement routes were one 165-line function of closures)."""

from __future__ import annotations

import ast
from pathlib import Path

ROUTES = Path(__file__).resolve().parents[2] / "node" / "api" / "routes"
LINES_MAX = 70


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
