"""Statistical disclosure control: a cell shows only if k distinct people make it.

Primary suppression: a cell with 0 < contributors < k is hidden. Empty cells
(no contributor) are published as zero: they are structural (the merchant
directory is public) and never serve as complements.

Secondary suppression, so that no hidden cell can be recomputed from the
published cells and totals:

- a series (cells and their total) hides at least two of its entries or none;
- a matrix with its row totals, column totals and grand total is seen as a
  bipartite graph: a node per row and per column, plus a "total" row node and
  a "total" column node; each cell (margins included) is the edge between its
  row and column node. Publishing every non-hidden value gives one linear
  equation per node, and a hidden cell is then exactly determined if and only
  if its edge is a bridge of the graph of hidden edges (it lies on no cycle).
  While a bridge remains, the cheapest path of published, non-empty cells
  that closes a cycle through it is hidden too (cost: the cell's value, so
  small cells go first). Adding edges never creates a bridge, so this ends.

Tables that share totals are published from one source (the zone series are
the margins of the flow matrix), so they cannot disagree.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

K_DEFAULT: Final = 5
K_MAX: Final = 1_000


@dataclass(frozen=True, slots=True)
class RawCell:
    value: int  # cents, or a count for tables of counts
    contributors: int  # distinct holders (or merchants, for merchant-only tables)


EMPTY: Final = RawCell(0, 0)


@dataclass(frozen=True, slots=True)
class Cell:
    """A published cell: both values None when suppressed."""

    value: int | None
    contributors: int | None

    @property
    def suppressed(self) -> bool:
        return self.value is None


def is_sensitive(cell: RawCell, k: int) -> bool:
    return 0 < cell.contributors < k


def publish(cell: RawCell, hidden: bool) -> Cell:
    return Cell(None, None) if hidden else Cell(cell.value, cell.contributors)


# --- series -------------------------------------------------------------------------------


def protect_series(cells: Sequence[RawCell], total: RawCell, k: int) -> tuple[list[Cell], Cell]:
    """Cells and total of a one-way table, with primary and secondary suppression."""
    hidden = {i for i, c in enumerate(cells) if is_sensitive(c, k)}
    total_hidden = is_sensitive(total, k)
    if total_hidden:
        hidden = {i for i, c in enumerate(cells) if c.contributors > 0}
    elif len(hidden) == 1:
        spare = sorted(
            (c.value, i) for i, c in enumerate(cells) if i not in hidden and c.contributors > 0
        )
        if spare:
            hidden.add(spare[0][1])
        else:
            total_hidden = True
    return [publish(c, i in hidden) for i, c in enumerate(cells)], publish(total, total_hidden)


# --- matrices -----------------------------------------------------------------------------

Node = tuple[str, int]  # ("r", i) or ("c", j); the total row is r=R, the total column c=C
Edge = tuple[int, int]  # (i, j) in the extended table


@dataclass(frozen=True, slots=True)
class Matrix:
    cells: list[list[Cell]]
    row_totals: list[Cell]
    column_totals: list[Cell]
    total: Cell


def extended(
    cells: Sequence[Sequence[RawCell]],
    row_totals: Sequence[RawCell],
    column_totals: Sequence[RawCell],
    total: RawCell,
) -> list[list[RawCell]]:
    """The (R+1) x (C+1) table: margins as the last row and column."""
    table = [[*row, row_totals[i]] for i, row in enumerate(cells)]
    table.append([*column_totals, total])
    return table


def protect_matrix(
    cells: Sequence[Sequence[RawCell]],
    row_totals: Sequence[RawCell],
    column_totals: Sequence[RawCell],
    total: RawCell,
    k: int,
) -> Matrix:
    table = extended(cells, row_totals, column_totals, total)
    hidden = hidden_cells(table, k)
    rows, cols = len(table) - 1, len(table[0]) - 1
    out = [
        [publish(table[i][j], (i, j) in hidden) for j in range(cols + 1)] for i in range(rows + 1)
    ]
    return Matrix(
        cells=[row[:cols] for row in out[:rows]],
        row_totals=[row[cols] for row in out[:rows]],
        column_totals=out[rows][:cols],
        total=out[rows][cols],
    )


def hidden_cells(table: Sequence[Sequence[RawCell]], k: int) -> set[Edge]:
    """Which cells of an extended table to hide (primary, then secondary)."""
    edges = [(i, j) for i in range(len(table)) for j in range(len(table[0]))]
    usable = {e for e in edges if table[e[0]][e[1]].contributors > 0}
    hidden = {e for e in edges if is_sensitive(table[e[0]][e[1]], k)}
    while True:
        bridge = first_bridge(hidden)
        if bridge is None:
            return hidden
        path = cheapest_cycle(table, usable, hidden, bridge)
        if path is None:  # no cycle can be closed: hide everything that is not empty
            return hidden | usable
        hidden |= path


def _adjacency(edges: set[Edge]) -> dict[Node, list[tuple[Node, Edge]]]:
    adjacent: dict[Node, list[tuple[Node, Edge]]] = {}
    for e in sorted(edges):
        a, b = ("r", e[0]), ("c", e[1])
        adjacent.setdefault(a, []).append((b, e))
        adjacent.setdefault(b, []).append((a, e))
    return adjacent


def _connected(edges: set[Edge], start: Node, goal: Node) -> bool:
    adjacent = _adjacency(edges)
    seen, todo = {start}, [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        for other, _ in adjacent.get(node, []):
            if other not in seen:
                seen.add(other)
                todo.append(other)
    return False


def first_bridge(hidden: set[Edge]) -> Edge | None:
    """The first (in table order) hidden cell that lies on no cycle of hidden cells."""
    for e in sorted(hidden):
        if not _connected(hidden - {e}, ("r", e[0]), ("c", e[1])):
            return e
    return None


def cheapest_cycle(
    table: Sequence[Sequence[RawCell]], usable: set[Edge], hidden: set[Edge], bridge: Edge
) -> set[Edge] | None:
    """Cells to hide so that ``bridge`` lies on a cycle: the cheapest path from its column
    node back to its row node, through hidden cells (free) and usable ones (their value)."""
    allowed = (usable | hidden) - {bridge}
    adjacent = _adjacency(allowed)
    start, goal = ("c", bridge[1]), ("r", bridge[0])
    best: dict[Node, int] = {start: 0}
    came: dict[Node, tuple[Node, Edge]] = {}
    queue: list[tuple[int, Node]] = [(0, start)]
    while queue:
        cost, node = heapq.heappop(queue)
        if node == goal:
            break
        if cost > best.get(node, cost):
            continue
        for other, e in adjacent.get(node, []):
            step = 0 if e in hidden else table[e[0]][e[1]].value + 1
            if cost + step < best.get(other, cost + step + 1):
                best[other] = cost + step
                came[other] = (node, e)
                heapq.heappush(queue, (cost + step, other))
    if goal not in best:
        return None
    path: set[Edge] = set()
    node = goal
    while node != start:
        node, e = came[node]
        path.add(e)
    return path - hidden
