"""The simulator's progress bar: "compiling" until the first simulated day ends, then an honest clock.

The first day of a run in a fresh process compiles the engine's numba kernels (or loads them from the
cache) and is tens of times slower than the days after it. Timed with them, it makes the first
estimates of the time left tens of times too high, and tqdm's smoothing carries the error for many
days. So the bar shows ``<desc> (compiling)`` until a day is done, then restarts its clock: the rate,
the time left and the elapsed time count from the end of that day, and the time spent before it is
shown once, as ``warm-up <seconds> s``.

The rate is per simulated day, and a day costs a fixed part (posterior draws for every segment the
day's customers fall in, whatever their number) plus a part per customer. A trial with a tenth of the
customers therefore takes well over a tenth of the time: estimate a run from its own bar, or from
trials of two sizes.
"""

from __future__ import annotations

from tqdm.auto import tqdm


class DayBar(tqdm):
    """A tqdm bar over simulated days whose clock starts when the first day is done."""

    def __init__(self, total: int, desc: str = "simulate", disable: bool = False) -> None:
        super().__init__(total=total, desc=f"{desc} (compiling)", unit="day", disable=disable)
        self._label = desc
        self._timed = False

    def update(self, n: float | None = 1) -> bool | None:
        """Count ``n`` finished days; the first call starts the clock instead of timing the warm-up."""
        if self._timed or self.disable or not n:
            return super().update(n)
        self._timed = True
        warm_up = self._time() - self.start_t
        self.reset()
        self.initial = self.n = self.last_print_n = n  # days done before the clock started: not in the rate
        self.set_description_str(self._label, refresh=False)
        self.set_postfix_str(f"warm-up {warm_up:.1f} s")
        return True
