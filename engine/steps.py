"""Per-step loop kernel: decide one, observe one Bernoulli reward, update one (benchmarks, references)."""

import numpy as np
from numba import njit

from ._jit import JIT
from .sampling import _argmax_random_ties, _sample_scores


@njit(**JIT)
def _bernoulli_steps(posterior, cell_stream, uniforms, true_rates, gen, out_arm):
    """Run one Thompson step per entry of ``cell_stream``, learning outcome 0 of ``posterior`` in place.

    ``posterior = (alpha, beta)``: float64 (n_cells, n_outcomes, n_arms); ``cell_stream``: int64 (n_steps,);
    ``uniforms``: float64 (n_steps,), the reward at step t is ``uniforms[t] < true_rates[cell, arm]``;
    ``true_rates``: float64 (n_cells, n_arms); ``out_arm``: int64 (n_steps,), written in place.
    """
    alpha, beta = posterior
    n_arms = alpha.shape[2]
    value = np.zeros(alpha.shape[1])
    value[0] = 1.0
    no_cost = np.zeros(n_arms)
    allowed = np.ones(n_arms, dtype=np.bool_)
    scores = np.empty(n_arms)
    for t in range(cell_stream.shape[0]):
        c = cell_stream[t]
        _sample_scores(alpha[c], beta[c], value, no_cost, allowed, -1, gen, scores)
        arm = _argmax_random_ties(scores, gen)
        out_arm[t] = arm
        if uniforms[t] < true_rates[c, arm]:
            alpha[c, 0, arm] += 1.0
        else:
            beta[c, 0, arm] += 1.0
