"""Personalisation kernels: a row's posterior is its cell's plus a weight times its customer's own counts.

The customer's successes and failures on an arm's channel are added, times ``weight``, to the cell's
Beta parameters of that arm; the row is then decided (or its propensities estimated) by the ordinary
Thompson kernels, so the random stream is consumed exactly as for a cell posterior.

``personal = (successes, failures, arm_channel, weight)``: successes and failures are float64
``(n_customers, n_outcomes, n_channels)``, ``arm_channel`` int64 ``(n_arms,)`` (-1 for the no-message
arm), ``weight`` a float. Other conventions are those of ``sampling.py``.
"""

import numpy as np
from numba import njit

from ._jit import JIT
from .sampling import _choice_probabilities, _decide_rows


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
