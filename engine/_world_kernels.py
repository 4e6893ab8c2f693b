"""Simulated-world kernels: each customer's true outcome rates, fatigue, and the oracle's net values.

The engine knows nothing of channels or hours by name: an arm is described by ``arm_channel`` (int64,
-1 for the no-message arm) and ``arm_hour`` (int64, -1 for the no-message arm), and hour-of-day curves
are rows of a ``(n_curves, n_channels, n_hours)`` table. Outcome 0 is the click (value-weighted),
outcome 1 the unsubscribe. The validated wrappers are in ``world.py``.
"""

import numpy as np
from numba import njit

from ._jit import JIT


@njit(**JIT)
def _customer_rates(channel_scale, unsubscribe_rate, hour_curves, curve_row, hour_shift, arm_channel, arm_hour, out):
    """Fill ``out`` with each row's true outcome rates on every arm.

    Parameters
    ----------
    channel_scale : float64 (n_rows, n_channels), click rate at the hour curve's peak.
    unsubscribe_rate : float64 (n_rows, n_channels), unsubscribe probability per message.
    hour_curves : float64 (n_curves, n_channels, n_hours), hour-of-day weights.
    curve_row : int64 (n_rows,), row of ``hour_curves`` (the customer's region).
    hour_shift : int64 (n_rows,), the customer's preferred hour is the curve shifted by this many hours.
    arm_channel, arm_hour : int64 (n_arms,), each arm's channel and local hour; -1 marks the no-message arm.
    out : float64 (n_rows, 2, n_arms), written in place: out[i, 0, a] = min(1, scale × weight at
        (hour - shift) mod n_hours), out[i, 1, a] = unsubscribe rate; 0 on the no-message arm.
    """
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
def _fatigue(recent_sends, click_power, unsubscribe_power, cross_scale, cross_power, lift, out):
    """Fatigue and cross-channel lift of one more message on each channel, per row.

    Parameters
    ----------
    recent_sends : int64 (n_rows, n_channels), messages per channel in the trailing window, before this one.
    click_power, unsubscribe_power : float64 (n_channels,), exponents of n = recent_sends + 1.
    cross_scale, cross_power : float, every click rate scales by (1 + (total + 1)/cross_scale)^-cross_power.
    lift : float64 (n_rows, 2), click lift when 2 and when 3+ distinct channels are touched (this one counted).
    out : ``FatigueMultipliers`` (click, unsubscribe), float64 (n_rows, n_channels) each, written in place:
        click = n^-click_power × cross × lift, unsubscribe = n^unsubscribe_power.
    """
    n_channels = recent_sends.shape[1]
    for i in range(recent_sends.shape[0]):
        total, distinct = 0, 0
        for c in range(n_channels):
            total += recent_sends[i, c]
            distinct += recent_sends[i, c] > 0
        cross = (1.0 + (total + 1) / cross_scale) ** -cross_power
        for c in range(n_channels):
            n = recent_sends[i, c] + 1.0
            touched = distinct + (recent_sends[i, c] == 0)
            boost = 1.0 if touched < 2 else (lift[i, 0] if touched == 2 else lift[i, 1])
            out.click[i, c] = n ** -click_power[c] * cross * boost
            out.unsubscribe[i, c] = n ** unsubscribe_power[c]


@njit(**JIT)
def _net_values(rates, value, cost, cost_row_idx, mask, arm, out):
    """Expected net value of the chosen arm and of the best allowed arm, per row.

    Parameters
    ----------
    rates : float64 (n_rows, n_outcomes, n_arms), true outcome rates.
    value : float64 (n_outcomes,); cost : float64 (n_cost_rows, n_arms); cost_row_idx : int64 (n_rows,).
    mask : bool (n_rows, n_arms), allowed arms; arm : int64 (n_rows,), the chosen arms.
    out : ``NetValues`` (chosen, best), float64 (n_rows,) each, written in place;
        net value = Σ_o value[o]·rates[o] − cost.
    """
    n_outcomes, n_arms = rates.shape[1], rates.shape[2]
    for i in range(rates.shape[0]):
        best_value = -np.inf
        for a in range(n_arms):
            net = -cost[cost_row_idx[i], a]
            for o in range(n_outcomes):
                net += value[o] * rates[i, o, a]
            if a == arm[i]:
                out.chosen[i] = net
            if mask[i, a] and net > best_value:
                best_value = net
        out.best[i] = best_value
