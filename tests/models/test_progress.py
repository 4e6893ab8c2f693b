"""The simulator's progress bar times the days after the first one, so compiling does not count as a day."""

from __future__ import annotations

import pytest
from tqdm import tqdm

from sendwise.models.sim.progress import DayBar

COMPILE_S, DAY_S, TOTAL = 30.0, 1.0, 10


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """tqdm's clock, moved by hand: ``clock[0]`` is now."""
    now = [1000.0]
    monkeypatch.setattr("tqdm.std.time", lambda: now[0])
    return now


def _run(bar: tqdm, clock: list[float], days: int) -> None:
    """A first day that compiles, then ``days - 1`` ordinary days."""
    clock[0] += COMPILE_S + DAY_S
    bar.update(1)
    for _ in range(days - 1):
        clock[0] += DAY_S
        bar.update(1)


def test_the_bar_says_compiling_until_the_first_day_is_done(clock: list[float]) -> None:
    with DayBar(total=TOTAL) as bar:
        assert bar.desc == "simulate (compiling)"
        _run(bar, clock, 1)
        assert (bar.desc, bar.postfix) == ("simulate", f"warm-up {COMPILE_S + DAY_S:.1f} s")


def test_the_time_left_is_counted_from_the_days_after_the_first(clock: list[float]) -> None:
    with DayBar(total=TOTAL) as bar:
        _run(bar, clock, 5)
        info = bar.format_dict
    assert info["elapsed"] == pytest.approx(4 * DAY_S)
    assert (TOTAL - info["n"]) / info["rate"] == pytest.approx((TOTAL - 5) * DAY_S)


def test_a_plain_bar_would_count_compiling_as_a_day(clock: list[float]) -> None:
    """What ``DayBar`` avoids: tqdm's smoothed rate still carries the compile time four days later."""
    with tqdm(total=TOTAL, disable=False) as bar:
        _run(bar, clock, 5)
        eta = (TOTAL - bar.n) / bar.format_dict["rate"]
    assert eta > 2 * (TOTAL - 5) * DAY_S, f"time left {eta:.1f} s, true {(TOTAL - 5) * DAY_S:.1f} s"


def test_a_hidden_bar_counts_nothing(clock: list[float]) -> None:
    with DayBar(total=TOTAL, disable=True) as bar:
        _run(bar, clock, 3)
        assert bar.n == 0
