"""The simulated-world kernels agree with their numpy twins and reject bad input with clear messages."""

from __future__ import annotations

import re

import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise import engine
from sendwise.engine import reference as naive

N_HOURS = 24
SETTINGS = settings(max_examples=40, deadline=None)


def _arms(n_channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Arm layout of the catalog: channel-major, 24 hours each, the no-message arm last."""
    channel = np.append(np.repeat(np.arange(n_channels), N_HOURS), -1)
    hour = np.append(np.tile(np.arange(N_HOURS), n_channels), -1)
    return channel, hour


@SETTINGS
@given(n_rows=st.integers(0, 9), n_channels=st.integers(1, 4), n_curves=st.integers(1, 3),
       seed=st.integers(0, 2**32 - 1))
def test_customer_rates_match_naive(n_rows: int, n_channels: int, n_curves: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    args = (rng.uniform(0, 2, (n_rows, n_channels)), rng.uniform(0, 1, (n_rows, n_channels)),
            rng.uniform(0, 1, (n_curves, n_channels, N_HOURS)), rng.integers(0, n_curves, n_rows),
            rng.integers(-5, 6, n_rows), *_arms(n_channels))
    got = engine.customer_rates(*args)
    npt.assert_allclose(got, naive.customer_rates(*args), rtol=0, atol=0)
    assert got.max(initial=0.0) <= 1.0
    assert np.all(got[:, :, -1] == 0.0)


@SETTINGS
@given(n_rows=st.integers(0, 9), n_channels=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_fatigue_multipliers_match_naive(n_rows: int, n_channels: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    recent = rng.integers(0, 4, (n_rows, n_channels)) * (rng.random((n_rows, n_channels)) < 0.5)
    args = (recent, rng.uniform(0, 1, n_channels), rng.uniform(0, 1, n_channels),
            float(rng.uniform(1, 20)), float(rng.uniform(0, 1)), rng.uniform(1, 1.5, (n_rows, 2)))
    got_click, got_unsub = engine.fatigue_multipliers(*args)
    ref_click, ref_unsub = naive.fatigue_multipliers(*args)
    npt.assert_allclose(got_click, ref_click, rtol=1e-12)
    npt.assert_allclose(got_unsub, ref_unsub, rtol=1e-12)


def test_fatigue_of_a_fresh_customer_is_only_cross_channel_pressure() -> None:
    click, unsub = engine.fatigue_multipliers(np.zeros((1, 3), np.int64), np.full(3, 0.3), np.full(3, 0.5),
                                              10.0, 0.2, np.array([[1.1, 1.2]]))
    npt.assert_allclose(click, np.full((1, 3), 1.1 ** -0.2))
    npt.assert_allclose(unsub, np.ones((1, 3)))


def test_fatigue_lift_counts_distinct_channels_including_this_message() -> None:
    # Touched email and push already: a third channel makes 3 (lift 1.2), email again stays at 2 (lift 1.1).
    recent = np.array([[1, 1, 0]])
    click, _ = engine.fatigue_multipliers(recent, np.zeros(3), np.zeros(3), 10.0, 0.0, np.array([[1.1, 1.2]]))
    npt.assert_allclose(click, [[1.1, 1.1, 1.2]])


@SETTINGS
@given(n_rows=st.integers(1, 9), n_arms=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_net_values_match_naive(n_rows: int, n_arms: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = rng.random((n_rows, n_arms)) < 0.6
    mask[np.arange(n_rows), rng.integers(0, n_arms, n_rows)] = True
    args = (rng.random((n_rows, 2, n_arms)), np.array([1.0, -2.0]), rng.uniform(0, 0.1, (3, n_arms)),
            rng.integers(0, 3, n_rows), mask, rng.integers(0, n_arms, n_rows))
    got, ref = engine.net_values(*args), naive.net_values(*args)
    npt.assert_allclose(got[0], ref[0], rtol=1e-12)
    npt.assert_allclose(got[1], ref[1], rtol=1e-12)


def test_net_values_regret_is_zero_for_the_best_allowed_arm() -> None:
    rates = np.array([[[0.1, 0.5, 0.0], [0.0, 0.0, 0.0]]])
    mask = np.array([[True, False, True]])  # the best arm overall (1) is masked
    chosen, best = engine.net_values(rates, np.array([1.0, -1.0]), np.zeros((1, 3)), [0], mask, [0])
    assert chosen[0] == best[0] == pytest.approx(0.1)


BAD_INPUTS = [
    pytest.param("customer_rates", {"unsubscribe_rate": np.full((1, 1), 1.5)},
                 "`unsubscribe_rate` must lie in [0, 1]; 1 of 1 values do not (first at flat index 0: 1.5)",
                 id="unsubscribe-above-one"),
    pytest.param("customer_rates", {"hour_shift": np.array([30])},
                 "`hour_shift` must lie in [-24, 24); 1 of 1 values do not (first: hour_shift[0] = 30)",
                 id="shift-out-of-range"),
    pytest.param("customer_rates", {"arm_hour": np.append(np.arange(N_HOURS), 0)},
                 "`arm_channel` and `arm_hour` must both be -1 on the no-message arm and only there",
                 id="null-arm-mismatch"),
    pytest.param("net_values", {"mask": np.zeros((1, 25), bool)},
                 "`mask` must allow at least one arm per row; 1 rows allow none (first: row 0)", id="empty-mask"),
]


def _valid(kernel: str) -> dict[str, object]:
    if kernel == "customer_rates":
        channel, hour = _arms(1)
        return {"channel_scale": np.ones((1, 1)), "unsubscribe_rate": np.zeros((1, 1)),
                "hour_curves": np.ones((1, 1, N_HOURS)), "curve_row": np.zeros(1, np.int64),
                "hour_shift": np.zeros(1, np.int64), "arm_channel": channel, "arm_hour": hour}
    return {"rates": np.zeros((1, 2, 25)), "value": np.ones(2), "cost": np.zeros((1, 25)),
            "cost_row_idx": np.zeros(1, np.int64), "mask": np.ones((1, 25), bool), "arm": np.zeros(1, np.int64)}


@pytest.mark.parametrize("kernel, change, message", BAD_INPUTS)
def test_world_kernels_reject_bad_input(kernel: str, change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(engine, kernel)(**{**_valid(kernel), **change})
