"""Simulated-world kernels: each customer's true outcome rates, fatigue, and the oracle's net values.

The engine knows nothing of channels or hours by name: an arm is described by ``arm_channel`` (int64,
-1 for the no-message arm) and ``arm_hour`` (int64, -1 for the no-message arm), and hour-of-day curves
are rows of a ``(n_curves, n_channels, n_hours)`` table. Outcome 0 is the click (value-weighted),
outcome 1 the unsubscribe. Each kernel has a numpy twin in ``world_reference.py``.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ._jit import JIT
from ._validate import (
    _as_array,
    as_float_array,
    as_index_array,
    as_mask,
    check_non_negative,
    check_same_length,
    check_shape,
)


@njit(**JIT)
def _customer_rates(channel_scale, unsubscribe_rate, hour_curves, curve_row, hour_shift, arms, out):
    """Fill ``out`` with each row's true outcome rates on every arm.

    Parameters
    ----------
    channel_scale : float64 (n_rows, n_channels), click rate at the hour curve's peak.
    unsubscribe_rate : float64 (n_rows, n_channels), unsubscribe probability per message.
    hour_curves : float64 (n_curves, n_channels, n_hours), hour-of-day weights.
    curve_row : int64 (n_rows,), row of ``hour_curves`` (the customer's region).
    hour_shift : int64 (n_rows,), the customer's preferred hour is the curve shifted by this many hours.
    arms : (arm_channel, arm_hour), int64 (n_arms,) each; -1 marks the no-message arm.
    out : float64 (n_rows, 2, n_arms), written in place: out[i, 0, a] = min(1, scale × weight at
        (hour - shift) mod n_hours), out[i, 1, a] = unsubscribe rate; 0 on the no-message arm.
    """
    arm_channel, arm_hour = arms
    n_hours = hour_curves.shape[2]
    for i in range(out.shape[0]):
        curves = hour_curves[curve_row[i]]
        for a in range(arm_channel.shape[0]):
            c = arm_channel[a]
            if c < 0:
                out[i, 0, a] = 0.0
                out[i, 1, a] = 0.0
                continue
            weight = curves[c, (arm_hour[a] - hour_shift[i]) % n_hours]
            out[i, 0, a] = min(1.0, channel_scale[i, c] * weight)
            out[i, 1, a] = unsubscribe_rate[i, c]


@njit(**JIT)
def _fatigue(recent_sends, click_power, unsubscribe_power, cross_channel, lift, out):
    """Fatigue and cross-channel lift of one more message on each channel, per row.

    Parameters
    ----------
    recent_sends : int64 (n_rows, n_channels), messages per channel in the trailing window, before this one.
    click_power, unsubscribe_power : float64 (n_channels,), exponents of n = recent_sends + 1.
    cross_channel : float64 (2,), (scale, power): every click rate scales by (1 + (total + 1)/scale)^-power.
    lift : float64 (n_rows, 2), click lift when 2 and when 3+ distinct channels are touched (this one counted).
    out : (click, unsubscribe), float64 (n_rows, n_channels) each, written in place:
        click = n^-click_power × cross × lift, unsubscribe = n^unsubscribe_power.
    """
    click, unsubscribe = out
    scale, power = cross_channel[0], cross_channel[1]
    n_channels = recent_sends.shape[1]
    for i in range(recent_sends.shape[0]):
        total, distinct = 0, 0
        for c in range(n_channels):
            total += recent_sends[i, c]
            distinct += recent_sends[i, c] > 0
        cross = (1.0 + (total + 1) / scale) ** -power
        for c in range(n_channels):
            n = recent_sends[i, c] + 1.0
            touched = distinct + (recent_sends[i, c] == 0)
            boost = 1.0 if touched < 2 else (lift[i, 0] if touched == 2 else lift[i, 1])
            click[i, c] = n ** -click_power[c] * cross * boost
            unsubscribe[i, c] = n ** unsubscribe_power[c]


@njit(**JIT)
def _net_values(rates, value, cost, cost_row_idx, mask, arm, out):
    """Expected net value of the chosen arm and of the best allowed arm, per row.

    Parameters
    ----------
    rates : float64 (n_rows, n_outcomes, n_arms), true outcome rates.
    value : float64 (n_outcomes,); cost : float64 (n_cost_rows, n_arms); cost_row_idx : int64 (n_rows,).
    mask : bool (n_rows, n_arms), allowed arms; arm : int64 (n_rows,), the chosen arms.
    out : (chosen, best), float64 (n_rows,) each, written in place; net value = Σ_o value[o]·rates[o] − cost.
    """
    chosen, best = out
    n_outcomes, n_arms = rates.shape[1], rates.shape[2]
    for i in range(rates.shape[0]):
        best_value = -np.inf
        for a in range(n_arms):
            net = -cost[cost_row_idx[i], a]
            for o in range(n_outcomes):
                net += value[o] * rates[i, o, a]
            if a == arm[i]:
                chosen[i] = net
            if mask[i, a] and net > best_value:
                best_value = net
        best[i] = best_value


def customer_rates(
    channel_scale: np.ndarray,
    unsubscribe_rate: np.ndarray,
    hour_curves: np.ndarray,
    curve_row: np.ndarray,
    hour_shift: np.ndarray,
    arm_channel: np.ndarray,
    arm_hour: np.ndarray,
) -> np.ndarray:
    """True click and unsubscribe rates of every row on every arm, float64 (n_rows, 2, n_arms).

    Click rate = min(1, ``channel_scale[i, c]`` × ``hour_curves[curve_row[i], c, (h - hour_shift[i]) mod
    n_hours]``) for an arm on channel c at hour h; unsubscribe rate = ``unsubscribe_rate[i, c]``; both 0
    on the no-message arm (``arm_channel == -1``).
    """
    hour_curves = as_float_array("hour_curves", hour_curves, 3)
    check_non_negative("hour_curves", hour_curves)
    n_curves, n_channels, n_hours = hour_curves.shape
    channel_scale = as_float_array("channel_scale", channel_scale, 2)
    check_non_negative("channel_scale", channel_scale)
    unsubscribe_rate = as_float_array("unsubscribe_rate", unsubscribe_rate, 2)
    _check_unit("unsubscribe_rate", unsubscribe_rate)
    n_rows = channel_scale.shape[0]
    check_shape("channel_scale", channel_scale, (n_rows, n_channels))
    check_shape("unsubscribe_rate", unsubscribe_rate, (n_rows, n_channels))
    curve_row = as_index_array("curve_row", curve_row, n_curves)
    hour_shift = _as_int_range("hour_shift", hour_shift, -n_hours, n_hours)
    check_same_length(channel_scale=channel_scale, curve_row=curve_row, hour_shift=hour_shift)
    arm_channel = _as_int_range("arm_channel", arm_channel, -1, n_channels)
    arm_hour = _as_int_range("arm_hour", arm_hour, -1, n_hours)
    check_same_length(arm_channel=arm_channel, arm_hour=arm_hour)
    if np.any((arm_channel < 0) != (arm_hour < 0)):
        raise ValueError("`arm_channel` and `arm_hour` must both be -1 on the no-message arm and only there")
    out = np.empty((n_rows, 2, arm_channel.shape[0]))
    _customer_rates(channel_scale, unsubscribe_rate, hour_curves, curve_row, hour_shift, (arm_channel, arm_hour), out)
    return out


def fatigue_multipliers(
    recent_sends: np.ndarray,
    click_power: np.ndarray,
    unsubscribe_power: np.ndarray,
    cross_channel_scale: float,
    cross_channel_power: float,
    lift: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Click and unsubscribe multipliers of one more message per channel, float64 (n_rows, n_channels) each.

    With n = ``recent_sends`` + 1 on the channel and ``total`` = all recent sends: click multiplier =
    n^-click_power × (1 + (total + 1)/scale)^-power × lift (``lift[i, 0]`` when this message makes 2
    distinct channels, ``lift[i, 1]`` when 3 or more, 1 otherwise); unsubscribe multiplier = n^unsubscribe_power.
    """
    recent_sends = as_index_array("recent_sends", recent_sends, np.iinfo(np.int64).max, ndim=2)
    n_rows, n_channels = recent_sends.shape
    click_power = as_float_array("click_power", click_power, 1)
    unsubscribe_power = as_float_array("unsubscribe_power", unsubscribe_power, 1)
    for name, arr in (("click_power", click_power), ("unsubscribe_power", unsubscribe_power)):
        check_shape(name, arr, (n_channels,))
        check_non_negative(name, arr)
    cross = as_float_array("cross_channel", [cross_channel_scale, cross_channel_power], 1)
    if not (cross[0] > 0 and cross[1] >= 0):
        raise ValueError(f"`cross_channel_scale` must be > 0 and `cross_channel_power` >= 0; got {cross.tolist()}")
    lift = as_float_array("lift", lift, 2)
    check_shape("lift", lift, (n_rows, 2))
    check_non_negative("lift", lift)
    out = (np.empty((n_rows, n_channels)), np.empty((n_rows, n_channels)))
    _fatigue(recent_sends, click_power, unsubscribe_power, cross, lift, out)
    return out


def net_values(
    rates: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    cost_row_idx: np.ndarray,
    mask: np.ndarray,
    arm: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected net value (Σ_o value[o]·rates[o] − cost) of the chosen arm and of the best allowed arm.

    Returns ``(chosen, best)``, float64 (n_rows,) each; ``best - chosen`` is the decision's regret
    against an oracle that knows ``rates``. Every row must allow at least one arm.
    """
    rates = as_float_array("rates", rates, 3)
    n_rows, n_outcomes, n_arms = rates.shape
    value = as_float_array("value", value, 1)
    check_shape("value", value, (n_outcomes,))
    cost = as_float_array("cost", cost, 2)
    if cost.shape[1] != n_arms:
        raise ValueError(f"`cost` must have shape (n_cost_rows, {n_arms}); got {cost.shape}")
    cost_row_idx = as_index_array("cost_row_idx", cost_row_idx, cost.shape[0])
    mask = as_mask("mask", mask, (n_rows, n_arms))
    arm = as_index_array("arm", arm, n_arms)
    check_same_length(rates=rates, cost_row_idx=cost_row_idx, arm=arm)
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(f"`mask` must allow at least one arm per row; {empty.size} rows allow none "
                         f"(first: row {empty[0]})")
    out = (np.empty(n_rows), np.empty(n_rows))
    _net_values(rates, value, cost, cost_row_idx, mask, arm, out)
    return out


def _as_int_range(name: str, x: object, low: int, high: int) -> np.ndarray:
    """``x`` as a C-contiguous 1-d int64 array whose values lie in ``[low, high)``."""
    arr = _as_array(name, x, np.int64, 1)
    bad = np.flatnonzero((arr < low) | (arr >= high))
    if bad.size:
        raise ValueError(f"`{name}` must lie in [{low}, {high}); {bad.size} of {arr.size} values do not "
                         f"(first: {name}[{bad[0]}] = {arr[bad[0]]})")
    return arr


def _check_unit(name: str, arr: np.ndarray) -> None:
    bad = np.flatnonzero(~((arr.ravel() >= 0.0) & (arr.ravel() <= 1.0)))
    if bad.size:
        raise ValueError(f"`{name}` must lie in [0, 1]; {bad.size} of {arr.size} values do not "
                         f"(first at flat index {bad[0]}: {float(arr.ravel()[bad[0]])!r})")
