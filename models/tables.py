"""Plain-text tables for people: one number format per column, so a column reads down at a glance.

Every printed table (``sendwise simulate``, ``sendwise compare``, the demo) goes through
``render_table``. A column's decimals come from its largest magnitude (``column_decimals``): three
significant digits there, none from 100 up, thousands separators always, never ``1.066e+04`` next to
``5,827``. A cell is text, a number, or ``(value, low, high)``, printed ``value [low, high]``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

SIGNIFICANT = 3  # digits shown of a column's largest magnitude
MAX_DECIMALS = 6
MISSING = "-"

Bounds = tuple[float, float, float]
Cell = str | float | Bounds | None


def column_decimals(values: Iterable[float]) -> int:
    """Decimals that show the largest finite magnitude among ``values`` with ``SIGNIFICANT`` digits.

    Examples
    --------
    >>> column_decimals([5827.0, 10_660.0]), column_decimals([67.5, 3.0]), column_decimals([0.874, 0.05])
    (0, 1, 3)
    """
    largest = max((abs(v) for v in values if math.isfinite(v)), default=0.0)
    if largest == 0.0:
        return 0
    return min(MAX_DECIMALS, max(0, SIGNIFICANT - 1 - math.floor(math.log10(largest))))


def format_number(value: float, decimals: int) -> str:
    """``value`` with thousands separators and ``decimals`` decimals; ``-`` when NaN, never ``-0``."""
    if math.isnan(value):
        return MISSING
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if round(value, decimals) == 0:
        value = 0.0
    return f"{value:,.{decimals}f}"


def render_table(header: Sequence[str], rows: Sequence[Sequence[Cell]]) -> str:
    """A plain-text table: a header, a rule, then ``rows``; text left-aligned, numbers right-aligned.

    Numbers and ``(value, low, high)`` cells of one column share one format (``column_decimals`` over
    every value and bound in it); a bounds cell whose bounds are NaN or equal (one seed) shows its value
    alone; ``None`` shows as ``-``.

    Examples
    --------
    >>> print(render_table(["policy", "cost", "runs"], [["a", (1234.5, 1001.0, 1500.0), 3.0], ["b", None, 12.5]]))
    policy                  cost  runs
    ----------------------------------
    a       1,234 [1,001, 1,500]   3.0
    b                          -  12.5
    """
    n_columns = len(header)
    bad = [i for i, row in enumerate(rows) if len(row) != n_columns]
    if bad:
        raise ValueError(f"every row must have {n_columns} cells like the header; row {bad[0]} has {len(rows[bad[0]])}")
    columns = [[row[k] for row in rows] for k in range(n_columns)]
    numeric = [any(c is not None and not isinstance(c, str) for c in column) for column in columns]
    decimals = [column_decimals(v for c in column if c is not None and not isinstance(c, str)
                                for v in (c if isinstance(c, tuple) else (c,)))
                for column in columns]
    text = [[*header], *([_cell(c, decimals[k]) for k, c in enumerate(row)] for row in rows)]
    widths = [max(len(line[k]) for line in text) for k in range(n_columns)]
    lines = ["  ".join(cell.rjust(w) if numeric[k] else cell.ljust(w)
                       for k, (cell, w) in enumerate(zip(line, widths, strict=True))).rstrip()
             for line in text]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return "\n".join(lines)


def _cell(cell: Cell, decimals: int) -> str:
    if cell is None:
        return MISSING
    if isinstance(cell, str):
        return cell
    if not isinstance(cell, tuple):
        return format_number(float(cell), decimals)
    value, low, high = (float(v) for v in cell)
    if math.isnan(low) or math.isnan(high) or low == high:
        return format_number(value, decimals)
    return f"{format_number(value, decimals)} [{format_number(low, decimals)}, {format_number(high, decimals)}]"
