"""Functions read top to bottom: none in node/, tools/ or wallets/ is over 70 lines
(issue 19). The allow-list below names each exception and why; keep it short."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path
from typing import Final

ROOT = Path(__file__).resolve().parent.parent
PACKAGES: Final = ("node", "tools", "wallets")
LINES_MAX: Final = 70

# "path::qualified name": why it may be longer. Only generated data may ever belong here.
ALLOWED: Final[dict[str, str]] = {}


def long_functions(source: str, path: str) -> Iterator[tuple[str, int]]:
    """Each function (at any depth) of ``source`` over ``LINES_MAX`` lines, with its length."""

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    lines = (child.end_lineno or child.lineno) - child.lineno + 1
                    if lines > LINES_MAX:
                        yield f"{path}::{name}", lines
                yield from walk(child, name + ".")
            else:
                yield from walk(child, prefix)

    yield from walk(ast.parse(source, filename=path), "")


def _all_long() -> dict[str, int]:
    found: dict[str, int] = {}
    for package in PACKAGES:
        for file in sorted((ROOT / package).rglob("*.py")):
            path = file.relative_to(ROOT).as_posix()
            found.update(long_functions(file.read_text(encoding="utf-8"), path))
    return found


def test_no_function_is_over_70_lines() -> None:
    over = {name: lines for name, lines in _all_long().items() if name not in ALLOWED}
    assert not over, f"functions over {LINES_MAX} lines (split them into named steps): {over}"


def test_every_allowed_function_is_still_long() -> None:
    """An entry whose function was split (or moved) goes: the list stays what it says."""
    stale = set(ALLOWED) - set(_all_long())
    assert not stale, f"no longer over {LINES_MAX} lines, remove from ALLOWED: {sorted(stale)}"


def _function(name: str, lines: int, indent: str = "") -> str:
    """The source of a function of exactly ``lines`` lines."""
    body = "".join(f"{indent}    x{i} = {i}\n" for i in range(lines - 2))
    return f"{indent}def {name}():\n{body}{indent}    return 0\n"


def test_the_measure_counts_functions_and_methods_by_their_lines() -> None:
    source = (
        _function("fits", LINES_MAX)
        + _function("long", LINES_MAX + 1)
        + "class Box:\n"
        + _function("method", LINES_MAX + 2, "    ").replace("def", "async def", 1)
        + _function("small", 3, "    ")
    )
    assert dict(long_functions(source, "m.py")) == {
        "m.py::long": LINES_MAX + 1,
        "m.py::Box.method": LINES_MAX + 2,
    }
