"""Printed tables: one number format per column, thousands separators, never exponent notation."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from sendwise.models.mlops.compare import Comparison
from sendwise.models.tables import column_decimals, format_number, render_table


@pytest.mark.parametrize("values, decimals", [
    ([10_660.0, 5_827.0], 0), ([100.0], 0), ([99.4, 3.0], 1), ([5.6], 2), ([0.874, 0.05], 3),
    ([0.0012], 5), ([1e-12], 6), ([0.0, float("nan")], 0), ([], 0),
])
def test_decimals_show_three_digits_of_the_columns_largest_magnitude(values, decimals):
    assert column_decimals(values) == decimals


@pytest.mark.parametrize("value, decimals, text", [
    (10_660.4, 0, "10,660"), (-0.3, 0, "0"), (-0.004, 2, "0.00"), (1234.5678, 2, "1,234.57"),
    (float("nan"), 2, "-"), (float("-inf"), 0, "-inf"),
])
def test_numbers_have_separators_and_no_negative_zero(value, decimals, text):
    assert format_number(value, decimals) == text


def test_every_cell_of_a_column_has_the_same_decimals():
    rows = [["hier_ts", (10_660.0, 9_000.0, 12_000.0), (67.5, 12.0, 99.0), 0.5],
            ["random", (5_827.0, 5_000.0, 6_500.0), (0.75, 0.0, 1.5), None]]
    lines = render_table(["policy", "net value", "unsubscribes", "share"], rows).splitlines()
    assert lines[0].split() == ["policy", "net", "value", "unsubscribes", "share"]
    assert set(lines[1]) == {"-"}
    assert "10,660 [9,000, 12,000]" in lines[2] and "5,827 [5,000, 6,500]" in lines[3]
    assert "67.5 [12.0, 99.0]" in lines[2] and "0.8 [0.0, 1.5]" in lines[3]
    assert lines[2].endswith("0.500") and lines[3].endswith("-")
    assert not any("e+" in line or "e-" in line for line in lines)
    assert len({len(line) for line in lines[2:]}) == 1, "numbers are right-aligned"


def test_rows_must_match_the_header():
    with pytest.raises(ValueError, match=re.escape("every row must have 2 cells like the header; row 1 has 1")):
        render_table(["policy", "cost"], [["a", 1.0], ["b"]])


def test_compare_says_how_many_seeds_its_intervals_come_from():
    summary = {"hier_ts": {"net_value": (10_660.0, 9_100.0, 12_020.0), "cost": (245.0, 12.0, 478.0)},
               "random": {"net_value": (5_827.0, 5_000.0, 6_400.0), "cost": (0.5, 0.25, 0.75)}}
    comparison = Comparison(experiment="sendwise-world-seed", kind="simulation", subject="seed", run_id="abc",
                            started=datetime(2026, 1, 2, 3, 4, tzinfo=UTC), summary=summary,
                            best_runs={"hier_ts": "r1"}, n_seeds=3)
    lines = comparison.format_table().splitlines()
    assert lines[0].endswith("mean [95% bootstrap interval] across 3 seeds (rough: fewer than 5 seeds)")
    assert "10,660 [9,100, 12,020]" in lines[3] and "5,827 [5,000, 6,400]" in lines[4]
    assert "245 [12, 478]" in lines[3] and lines[4].rstrip().endswith("-")
