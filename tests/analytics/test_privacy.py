"""The k threshold: small cells are hidden, and no hidden cell can be recomputed.

The attacker knows every published cell, row total, column total and grand
total, and solves the linear system they form (exact rational elimination):
a hidden cell is recovered when its value is the same in every solution.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from node.analytics import privacy
from node.analytics.privacy import Cell, RawCell
from node.analytics.report import Matrix, Series
from tests.analytics.conftest import History
from tests.analytics.test_aggregates import index_of
from tests.api.harness import NAMUR

Unknown = tuple[int, int]


def _rank(equations: list[dict[Unknown, Fraction]]) -> int:
    """Rank of a sparse rational system (Gauss-Jordan on dictionaries)."""
    pivots: list[tuple[Unknown, dict[Unknown, Fraction]]] = []
    for equation in equations:
        reduced = dict(equation)
        for var, pivot_row in pivots:
            reduced = _eliminate(reduced, var, pivot_row)
        if reduced:
            var = min(reduced)
            scale = reduced[var]
            normal = {v: c / scale for v, c in reduced.items()}
            pivots = [(pv, _eliminate(pr, var, normal)) for pv, pr in pivots]
            pivots.append((var, normal))
    return len(pivots)


def _eliminate(
    row: dict[Unknown, Fraction], var: Unknown, pivot: dict[Unknown, Fraction]
) -> dict[Unknown, Fraction]:
    factor = row.get(var, Fraction(0))
    if not factor:
        return row
    out = dict(row)
    for v, c in pivot.items():
        out[v] = out.get(v, Fraction(0)) - factor * c
    return {v: c for v, c in out.items() if c}


def recoverable(table: list[list[Cell]]) -> set[Unknown]:
    """Hidden cells of an extended table (margins last) that the totals determine."""
    rows, cols = len(table) - 1, len(table[0]) - 1
    hidden = {(i, j) for i in range(rows + 1) for j in range(cols + 1) if table[i][j].suppressed}
    equations: list[dict[Unknown, Fraction]] = []
    for i in range(rows + 1):  # each row: cells - row total = 0 (the margin row too)
        equations.append({(i, j): Fraction(1 if j < cols else -1) for j in range(cols + 1)
                          if (i, j) in hidden})  # fmt: skip
    for j in range(cols + 1):
        equations.append({(i, j): Fraction(1 if i < rows else -1) for i in range(rows + 1)
                          if (i, j) in hidden})  # fmt: skip
    base = _rank(equations)
    return {cell for cell in hidden if _rank([*equations, {cell: Fraction(1)}]) == base}


def naive_attack(table: list[list[Cell]]) -> set[Unknown]:
    """The classic attack: a line with one hidden entry gives it away by subtraction."""
    rows, cols = len(table) - 1, len(table[0]) - 1
    found = set()
    for i in range(rows + 1):
        hidden = [j for j in range(cols + 1) if table[i][j].suppressed]
        if len(hidden) == 1:
            found.add((i, hidden[0]))
    for j in range(cols + 1):
        hidden = [i for i in range(rows + 1) if table[i][j].suppressed]
        if len(hidden) == 1:
            found.add((hidden[0], j))
    return found


def extended(m: Matrix) -> list[list[Cell]]:
    return [
        *([*row, m.row_totals[i]] for i, row in enumerate(m.cells)),
        [*m.column_totals, m.total],
    ]


def series_recoverable(s: Series) -> bool:
    return sum(c.suppressed for c in [*s.cells, s.total]) == 1


def test_a_small_cell_and_its_complements_are_hidden_in_the_simulated_town(
    history: History,
) -> None:
    index = index_of(history)
    open_flows = index.report(NAMUR.public_key, 1).flows
    smallest = min(c.contributors or 0 for row in open_flows.cells for c in row)
    k = smallest + 1  # exactly the smallest zone-to-zone cell falls under k
    flows = index.report(NAMUR.public_key, k).flows
    small = [(i, j) for i, row in enumerate(open_flows.cells) for j, c in enumerate(row)
             if c.contributors == smallest]  # fmt: skip
    for i, j in small:
        assert flows.cells[i][j].suppressed
    table = extended(flows)
    hidden = {(i, j) for i, row in enumerate(table) for j, c in enumerate(row) if c.suppressed}
    assert len(hidden) >= 4  # a cell alone in its row would be given away by the row total
    assert naive_attack(table) == set()
    assert recoverable(table) == set()
    # the published cells are exact: the attack knows them, and they agree with k = 1
    for i, row in enumerate(flows.cells):
        for j, c in enumerate(row):
            if not c.suppressed:
                assert c == open_flows.cells[i][j]


def test_every_published_table_of_the_town_resists_the_attack(history: History) -> None:
    for k in (5, 12, 40):
        report = index_of(history).report(NAMUR.public_key, k)
        for m in (report.hours, report.flows, report.merchant_flows):
            for row, row_total in zip(m.cells, m.row_totals, strict=True):
                for c in [*row, row_total]:
                    assert c.suppressed or c.contributors == 0 or c.contributors >= k
            assert recoverable(extended(m)) == set(), (k, m.name)
        for s in (report.categories, report.daily, report.timing.first_spend,
                  report.timing.redemption, report.multiplier.hops):  # fmt: skip
            assert all(c.suppressed or c.contributors == 0 or c.contributors >= k for c in s.cells)
            assert not series_recoverable(s), (k, s.name)
    heat = index_of(history).report(NAMUR.public_key, 5).hours
    assert any(c.suppressed for row in heat.cells for c in row)  # night hours are thin


def test_the_api_serves_null_for_hidden_cells_and_refuses_a_looser_k(history: History) -> None:
    node = history.node
    token = node.token(NAMUR)
    body = node.get("/v1/analytics/hours", token).json()
    cells = body["cells"]
    assert isinstance(cells, list)
    hidden = [c for row in cells for c in row if c["value"] is None]
    assert hidden and all(c["contributors"] is None for c in hidden)
    assert node.get("/v1/analytics/hours?k=2", token).status == 400
    assert node.get("/v1/analytics/hours?k=50", token).status == 200


raw_cells = st.builds(
    lambda n, v: RawCell(v * n if n else 0, n), st.integers(0, 12), st.integers(1, 900)
)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 5).flatmap(lambda r: st.integers(1, 6).flatmap(
    lambda c: st.lists(st.lists(raw_cells, min_size=c, max_size=c), min_size=r, max_size=r))),
    st.integers(2, 8))  # fmt: skip
def test_random_tables_hide_small_cells_and_resist_the_attack(
    cells: list[list[RawCell]], k: int
) -> None:
    def total(items: list[RawCell]) -> RawCell:  # contributors as if all distinct
        return RawCell(sum(c.value for c in items), sum(c.contributors for c in items))

    rows = [total(row) for row in cells]
    columns = [total([row[j] for row in cells]) for j in range(len(cells[0]))]
    m = privacy.protect_matrix(cells, rows, columns, total(rows), k)
    table = [[*row, m.row_totals[i]] for i, row in enumerate(m.cells)]
    table.append([*m.column_totals, m.total])
    raw = privacy.extended(cells, rows, columns, total(rows))
    for i, row in enumerate(table):
        for j, c in enumerate(row):
            assert not privacy.is_sensitive(raw[i][j], k) or c.suppressed
            assert c.suppressed or c.value == raw[i][j].value
    assert recoverable(table) == set()
