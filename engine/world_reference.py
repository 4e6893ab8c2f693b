"""Plain-numpy twins of the simulated-world kernels: slow, obviously right, used by tests and benchmarks.

Same arguments and results as the public wrappers in ``world_kernels.py``, without validation.
"""

from __future__ import annotations

import numpy as np


def customer_rates(channel_scale: np.ndarray, unsubscribe_rate: np.ndarray, hour_curves: np.ndarray,
                   curve_row: np.ndarray, hour_shift: np.ndarray, arm_channel: np.ndarray,
                   arm_hour: np.ndarray) -> np.ndarray:
    """float64 (n_rows, 2, n_arms): clipped click rate at the shifted hour, unsubscribe rate; 0 on no-message."""
    n_hours = hour_curves.shape[2]
    message = arm_channel >= 0
    channel, hour = arm_channel[message], arm_hour[message]
    shifted_hour = (hour[None, :] - hour_shift[:, None]) % n_hours
    weight = hour_curves[curve_row[:, None], channel[None, :], shifted_hour]
    out = np.zeros((channel_scale.shape[0], 2, arm_channel.shape[0]))
    out[:, 0, message] = np.minimum(1.0, channel_scale[:, channel] * weight)
    out[:, 1, message] = unsubscribe_rate[:, channel]
    return out


def fatigue_multipliers(recent_sends: np.ndarray, click_power: np.ndarray, unsubscribe_power: np.ndarray,
                        cross_channel_scale: float, cross_channel_power: float,
                        lift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Click and unsubscribe multipliers of one more message per channel, float64 (n_rows, n_channels)."""
    n = recent_sends + 1.0
    total = recent_sends.sum(axis=1, keepdims=True)
    touched = (recent_sends > 0).sum(axis=1, keepdims=True) + (recent_sends == 0)
    boost = np.where(touched < 2, 1.0, np.where(touched == 2, lift[:, :1], lift[:, 1:]))
    cross = (1.0 + (total + 1) / cross_channel_scale) ** -cross_channel_power
    return n ** -click_power * cross * boost, n ** unsubscribe_power


def net_values(rates: np.ndarray, value: np.ndarray, cost: np.ndarray, cost_row_idx: np.ndarray,
               mask: np.ndarray, arm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Expected net value of the chosen arm and of the best allowed arm, float64 (n_rows,) each."""
    net = np.einsum("o,ioa->ia", value, rates) - cost[cost_row_idx]
    chosen = net[np.arange(net.shape[0]), arm]
    best = np.where(mask, net, -np.inf).max(axis=1)
    return chosen, best
