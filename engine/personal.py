"""Personalisation kernels: a row's posterior is its cell's plus a weight times its customer's own counts.

The customer's successes and failures on an arm's channel are added, times ``weight``, to the cell's
Beta parameters of that arm; the row is then decided (or its propensities estimated) by the ordinary
Thompson kernels, so the random stream is consumed exactly as for a cell posterior.

``personal = (successes, failures, arm_channel, weight)``: successes and failures are float64
``(n_customers, n_outcomes, n_channels)``, ``arm_channel`` int64 ``(n_arms,)`` (-1 for the no-message
arm), ``weight`` a float. Other conventions are those of ``sampling.py``. ``_check_personal`` is the
input check the public wrappers run before calling the kernels.
"""

from typing import NamedTuple

import numpy as np
from numba import njit

from ._jit import JIT
from ._validate import as_float_array, as_index_array, as_real, check_non_negative, check_shape
from .sampling import _choice_probabilities, _decide_rows


class PersonalCounts(NamedTuple):
    """Each customer's own outcome counts per channel, added with ``weight`` to their cell's posterior.

    ``successes, failures``: float64 (n_customers, n_outcomes, n_channels); ``arm_channel``: int64
    (n_arms,), the channel of every arm (-1 for the no-message arm, which gets nothing added).
    """

    successes: np.ndarray
    failures: np.ndarray
    arm_channel: np.ndarray
    weight: float


def _check_personal(
    personal: PersonalCounts, customer_idx: np.ndarray, posterior_shape: tuple[int, ...], n_rows: int
) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray, float], np.ndarray]:
    """Personal counts must match the posterior's outcomes and arms; customers must index them."""
    if not isinstance(personal, PersonalCounts):
        raise TypeError(f"`personal` must be a PersonalCounts; got {type(personal).__name__}")
    successes = as_float_array("personal.successes", personal.successes, 3)
    failures = as_float_array("personal.failures", personal.failures, 3)
    check_shape("personal.failures", failures, successes.shape)
    check_non_negative("personal.successes", successes)
    check_non_negative("personal.failures", failures)
    n_customers, n_outcomes, n_channels = successes.shape
    if n_outcomes != posterior_shape[1]:
        raise ValueError(f"`personal.successes` must have {posterior_shape[1]} outcomes like `alpha`; "
                         f"got shape {successes.shape}")
    arm_channel = np.asarray(personal.arm_channel)
    if not np.issubdtype(arm_channel.dtype, np.integer):
        raise TypeError(f"`personal.arm_channel` must be an integer array; got dtype {arm_channel.dtype}")
    check_shape("personal.arm_channel", arm_channel, (posterior_shape[2],))
    bad = np.flatnonzero((arm_channel < -1) | (arm_channel >= n_channels))
    if bad.size:
        raise ValueError(f"`personal.arm_channel` must lie in [-1, {n_channels}); "
                         f"got personal.arm_channel[{bad[0]}] = {arm_channel[bad[0]]}")
    weight = as_real("personal.weight", personal.weight)
    if not (np.isfinite(weight) and weight >= 0):
        raise ValueError(f"`personal.weight` must be a finite number >= 0; got {personal.weight!r}")
    customer_idx = as_index_array("customer_idx", customer_idx, n_customers)
    check_shape("customer_idx", customer_idx, (n_rows,))
    return (successes, failures, np.ascontiguousarray(arm_channel, dtype=np.int64), weight), customer_idx


@njit(**JIT)
def _personal_posterior(alpha_c, beta_c, personal, customer, out):
    """Write one row's posterior: the cell's plus ``weight`` × the customer's counts of each arm's channel.

    ``alpha_c, beta_c``: (n_outcomes, n_arms) of the row's cell; ``customer``: row of the personal
    counts; ``out = (alpha, beta)`` of shape (1, n_outcomes, n_arms), written in place.
    """
    successes, failures, arm_channel, weight = personal
    out_alpha, out_beta = out
    for o in range(alpha_c.shape[0]):
        for a in range(alpha_c.shape[1]):
            ch = arm_channel[a]
            out_alpha[0, o, a] = alpha_c[o, a]
            out_beta[0, o, a] = beta_c[o, a]
            if ch >= 0:
                out_alpha[0, o, a] += weight * successes[customer, o, ch]
                out_beta[0, o, a] += weight * failures[customer, o, ch]


@njit(**JIT)
def _decide_personal_rows(posterior, personal, economics, rows, epsilon, null_arm, gen, out):
    """Choose one arm per row from the row's personalised posterior (see ``_decide_rows``).

    ``rows = (cell_idx, cost_row_idx, customer_idx, mask)``; ``out = (arm, score, explored)`` as in
    ``_decide_rows``, written in place.
    """
    alpha, beta = posterior
    cell_idx, cost_row_idx, customer_idx, mask = rows
    row_post = (np.empty((1, alpha.shape[1], alpha.shape[2])), np.empty((1, alpha.shape[1], alpha.shape[2])))
    one_cell = np.zeros(1, np.int64)
    for i in range(cell_idx.shape[0]):
        _personal_posterior(alpha[cell_idx[i]], beta[cell_idx[i]], personal, customer_idx[i], row_post)
        _decide_rows(row_post, economics, (one_cell, cost_row_idx[i:i + 1], mask[i:i + 1]), epsilon,
                     null_arm, gen, (out[0][i:i + 1], out[1][i:i + 1], out[2][i:i + 1]))


@njit(**JIT)
def _personal_choice_probabilities(posterior, personal, economics, rows, exploration, n_draws, gen, out_probs):
    """Monte-Carlo propensities per row from the row's personalised posterior (see ``_choice_probabilities``).

    ``rows = (cell_idx, cost_row_idx, customer_idx, mask)``; ``exploration = (epsilon, null_arm)``;
    ``out_probs``: float64 (n_rows, n_arms), written in place.
    """
    alpha, beta = posterior
    cell_idx, cost_row_idx, customer_idx, mask = rows
    epsilon, null_arm = exploration
    row_post = (np.empty((1, alpha.shape[1], alpha.shape[2])), np.empty((1, alpha.shape[1], alpha.shape[2])))
    one_cell = np.zeros(1, np.int64)
    for i in range(cell_idx.shape[0]):
        _personal_posterior(alpha[cell_idx[i]], beta[cell_idx[i]], personal, customer_idx[i], row_post)
        _choice_probabilities(row_post, economics, (one_cell, cost_row_idx[i:i + 1], mask[i:i + 1]), epsilon,
                              null_arm, n_draws, gen, out_probs[i:i + 1])
