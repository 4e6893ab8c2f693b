"""Intervals across seeds: a seeded percentile bootstrap that respects the sign of what it bounds."""

from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models.intervals import ROUGH_BELOW, mean_interval, seeds_caption

SEED_TOTALS = st.lists(st.floats(0.0, 1e6, allow_nan=False, allow_infinity=False), min_size=1, max_size=12)


@settings(max_examples=200, deadline=None)
@given(values=SEED_TOTALS, seed=st.integers(0, 2**32 - 1))
def test_a_non_negative_metric_has_an_interval_within_zero_and_inf_around_its_mean(values, seed):
    mean, low, high = mean_interval(np.array(values), n_resamples=200, random_state=seed)
    assert 0.0 <= low <= mean <= high, f"interval [{low}, {high}] around mean {mean}"
    assert mean == pytest.approx(np.mean(values))


def test_the_cost_interval_of_two_seeds_does_not_go_below_zero():
    mean, low, high = mean_interval(np.array([12.0, 478.0]))  # a t-interval would be 245 ± 2,960
    assert (low, high) == (12.0, 478.0) and mean == 245.0


def test_a_signed_metric_agrees_with_scipys_percentile_bootstrap():
    values = np.random.default_rng(4).normal(-3.0, 10.0, size=8)
    _, low, high = mean_interval(values, n_resamples=20_000, random_state=1)
    reference = scipy.stats.bootstrap((values,), np.mean, n_resamples=20_000, method="percentile",
                                      random_state=np.random.default_rng(2)).confidence_interval
    spread = values.std(ddof=1) / np.sqrt(values.size)
    tol = 0.1 * spread
    assert abs(low - reference.low) < tol and abs(high - reference.high) < tol, (
        f"[{low:.3f}, {high:.3f}] vs scipy [{reference.low:.3f}, {reference.high:.3f}], tolerance {tol:.3f}")
    assert low < 0.0 and low < values.mean() < high  # a signed metric is not clipped at zero


def test_columns_are_independent_and_the_result_is_reproducible():
    curves = np.random.default_rng(0).random((5, 3)) * [1.0, 10.0, 100.0]
    first, again = mean_interval(curves), mean_interval(curves)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    mean, low, high = first
    assert mean.shape == low.shape == high.shape == (3,)
    assert ((low <= mean) & (mean <= high)).all()
    assert (high - low)[2] > (high - low)[0]


def test_one_seed_gives_a_zero_width_interval():
    mean, low, high = mean_interval(np.array([[3.0, 0.0]]))
    np.testing.assert_array_equal(np.stack([low, high]), [[3.0, 0.0], [3.0, 0.0]])
    np.testing.assert_array_equal(mean, [3.0, 0.0])


@pytest.mark.parametrize("values, kwargs, msg", [
    pytest.param(np.zeros(0), {}, "`values` must have one row per seed and at least one row; got shape (0,)",
                 id="no-seeds"),
    pytest.param(np.float64(1.0), {}, "`values` must have one row per seed and at least one row; got shape ()",
                 id="scalar"),
    pytest.param(np.array([1.0, np.nan]), {}, "`values` must be finite; 1 entries are not", id="nan"),
    pytest.param(np.ones(3), {"n_resamples": 0}, "`n_resamples` must be >= 1; got 0", id="no-resamples"),
])
def test_bad_input_is_refused_clearly(values, kwargs, msg):
    with pytest.raises(ValueError, match=re.escape(msg)):
        mean_interval(values, **kwargs)


def test_the_caption_says_when_the_seeds_are_too_few():
    assert seeds_caption(1).startswith("one seed: no interval")
    assert "rough" in seeds_caption(ROUGH_BELOW - 1)
    assert seeds_caption(ROUGH_BELOW) == f"mean [95% bootstrap interval] across {ROUGH_BELOW} seeds"
    with pytest.raises(ValueError, match=re.escape("`n_seeds` must be >= 1; got 0")):
        seeds_caption(0)
