"""Simulated-world computations, validated: true rates, fatigue, and the oracle's net values.

The kernels are in ``_world_kernels.py``; see it for how arms and hour curves are described.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._world_kernels import _customer_rates, _fatigue, _net_values
from .validation import (
    as_float_array,
    as_index_array,
    as_int_range,
    as_mask,
    as_value_and_cost,
    check_non_negative,
    check_rows_allow_an_arm,
    check_same_length,
    check_shape,
    check_unit_interval,
)

__all__ = ["FatigueMultipliers", "NetValues", "customer_rates", "fatigue_multipliers", "net_values"]


class FatigueMultipliers(NamedTuple):
    """Multipliers of the click and unsubscribe rates of one more message, float64 (n_rows, n_channels) each."""

    click: np.ndarray
    unsubscribe: np.ndarray


class NetValues(NamedTuple):
    """Expected net value of the chosen arm and of the best allowed arm, float64 (n_rows,) each."""

    chosen: np.ndarray
    best: np.ndarray


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
    check_unit_interval("unsubscribe_rate", unsubscribe_rate)
    n_rows = channel_scale.shape[0]
    check_shape("channel_scale", channel_scale, (n_rows, n_channels))
    check_shape("unsubscribe_rate", unsubscribe_rate, (n_rows, n_channels))
    curve_row = as_index_array("curve_row", curve_row, n_curves)
    hour_shift = as_int_range("hour_shift", hour_shift, -n_hours, n_hours)
    check_same_length(channel_scale=channel_scale, curve_row=curve_row, hour_shift=hour_shift)
    arm_channel = as_int_range("arm_channel", arm_channel, -1, n_channels)
    arm_hour = as_int_range("arm_hour", arm_hour, -1, n_hours)
    check_same_length(arm_channel=arm_channel, arm_hour=arm_hour)
    if np.any((arm_channel < 0) != (arm_hour < 0)):
        raise ValueError("`arm_channel` and `arm_hour` must both be -1 on the no-message arm and only there")
    out = np.empty((n_rows, 2, arm_channel.shape[0]))
    _customer_rates(channel_scale, unsubscribe_rate, hour_curves, curve_row, hour_shift, arm_channel, arm_hour, out)
    return out


def fatigue_multipliers(
    recent_sends: np.ndarray,
    click_power: np.ndarray,
    unsubscribe_power: np.ndarray,
    cross_channel_scale: float,
    cross_channel_power: float,
    lift: np.ndarray,
) -> FatigueMultipliers:
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
    scale, power = as_float_array("cross_channel", [cross_channel_scale, cross_channel_power], 1)
    if not (scale > 0 and power >= 0):
        raise ValueError(f"`cross_channel_scale` must be > 0 and `cross_channel_power` >= 0; "
                         f"got {[scale.item(), power.item()]}")
    lift = as_float_array("lift", lift, 2)
    check_shape("lift", lift, (n_rows, 2))
    check_non_negative("lift", lift)
    out = FatigueMultipliers(np.empty((n_rows, n_channels)), np.empty((n_rows, n_channels)))
    _fatigue(recent_sends, click_power, unsubscribe_power, scale, power, lift, out)
    return out


def net_values(
    rates: np.ndarray,
    value: np.ndarray,
    cost: np.ndarray,
    cost_row_idx: np.ndarray,
    mask: np.ndarray,
    arm: np.ndarray,
) -> NetValues:
    """Expected net value (Σ_o value[o]·rates[o] − cost) of the chosen arm and of the best allowed arm.

    Returns ``NetValues(chosen, best)``, float64 (n_rows,) each; ``best - chosen`` is the decision's
    regret against an oracle that knows ``rates``. Every row must allow at least one arm.
    """
    rates = as_float_array("rates", rates, 3)
    n_rows, n_outcomes, n_arms = rates.shape
    value, cost = as_value_and_cost(value, cost, n_outcomes, n_arms)
    cost_row_idx = as_index_array("cost_row_idx", cost_row_idx, cost.shape[0])
    mask = as_mask("mask", mask, (n_rows, n_arms))
    arm = as_index_array("arm", arm, n_arms)
    check_same_length(rates=rates, cost_row_idx=cost_row_idx, arm=arm)
    check_rows_allow_an_arm("mask", mask)
    out = NetValues(np.empty(n_rows), np.empty(n_rows))
    _net_values(rates, value, cost, cost_row_idx, mask, arm, out)
    return out
