"""Deterministic posterior kernels: add outcomes, discount old evidence, pool priors up a hierarchy.

``alpha, beta`` are float64 ``(n_cells, n_outcomes, n_arms)`` Beta parameters throughout.
"""

from numba import njit

from ._jit import JIT


@njit(**JIT)
def _update(alpha, beta, index, successes, failures):
    """Add weighted successes to ``alpha`` and failures to ``beta`` in place.

    ``index = (cell_idx, outcome_idx, arm_idx)``, each int64 (n_events,); ``successes, failures``:
    float64 (n_events,). Repeated triples all count (``np.add.at`` semantics).
    """
    cell_idx, outcome_idx, arm_idx = index
    for e in range(cell_idx.shape[0]):
        c, o, a = cell_idx[e], outcome_idx[e], arm_idx[e]
        alpha[c, o, a] += successes[e]
        beta[c, o, a] += failures[e]


@njit(**JIT)
def _discount(alpha, beta, prior_alpha, prior_beta, factor):
    """Shrink the evidence above the prior by ``factor`` in place: x ← prior + factor · (x − prior).

    ``prior_alpha, prior_beta`` have the shape of ``alpha``; ``factor`` in [0, 1].
    """
    flat_a, flat_b = alpha.reshape(-1), beta.reshape(-1)
    prior_a, prior_b = prior_alpha.reshape(-1), prior_beta.reshape(-1)
    for j in range(flat_a.shape[0]):
        flat_a[j] = prior_a[j] + factor * (flat_a[j] - prior_a[j])
        flat_b[j] = prior_b[j] + factor * (flat_b[j] - prior_b[j])


@njit(**JIT)
def _sum_by_group(counts, group_idx, out):
    """Add ``counts[c]`` into ``out[group_idx[c]]`` for every cell c (out is zeroed by the caller).

    ``counts``: (n_cells, n_outcomes, n_arms); ``group_idx``: int64 (n_cells,);
    ``out``: (n_groups, n_outcomes, n_arms).
    """
    for c in range(counts.shape[0]):
        out[group_idx[c]] += counts[c]


@njit(**JIT)
def _shrink_to_parent(parent, parent_idx, counts, strength, out):
    """Child posterior = ``strength`` pseudo-counts at the parent's mean, plus the child's own counts.

    ``parent = (alpha, beta)`` of shape (n_parents, n_outcomes, n_arms); ``parent_idx``: int64
    (n_children,); ``counts = (successes, failures)`` and ``out = (alpha, beta)`` of shape
    (n_children, n_outcomes, n_arms).
    """
    parent_alpha, parent_beta = parent
    successes, failures = counts
    out_alpha, out_beta = out
    for g in range(parent_idx.shape[0]):
        p = parent_idx[g]
        for o in range(successes.shape[1]):
            for a in range(successes.shape[2]):
                mean = parent_alpha[p, o, a] / (parent_alpha[p, o, a] + parent_beta[p, o, a])
                out_alpha[g, o, a] = strength * mean + successes[g, o, a]
                out_beta[g, o, a] = strength * (1.0 - mean) + failures[g, o, a]
