"""Per-step Thompson loops on Bernoulli streams, validated. The kernels are in ``_steps_kernels.py``.

Both loops decide one step, observe its reward and learn it before the next step decides: the
reference cases the bandit literature benchmarks on, and the engine's learning-quality checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._posterior_kernels import Counts, Posterior
from ._steps_kernels import BernoulliStream, _bernoulli_steps, _hier_bernoulli_steps
from .parallel import chunk_generators
from .posterior import _stack_levels
from .validation import (
    as_finite_positive,
    as_float_array,
    as_index_array,
    check_posterior,
    check_same_length,
    check_shape,
    check_unit_interval,
    check_writeable,
)

__all__ = ["bernoulli_steps", "hier_bernoulli_steps"]


def bernoulli_steps(
    alpha: np.ndarray,
    beta: np.ndarray,
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Thompson sampling one step at a time on a Bernoulli stream; learns outcome 0 in place.

    Step t serves cell ``cell_stream[t]``, is rewarded when ``uniforms[t] < true_rates[cell, arm]`` and
    updates before step t+1 decides. Returns the chosen arms, int64 (n_steps,).
    """
    check_posterior(alpha, beta)
    check_writeable(alpha=alpha, beta=beta)
    n_cells, _, n_arms = alpha.shape
    cell_stream = as_index_array("cell_stream", cell_stream, n_cells)
    uniforms = as_float_array("uniforms", uniforms, 1)
    check_same_length(cell_stream=cell_stream, uniforms=uniforms)
    true_rates = as_float_array("true_rates", true_rates, 2)
    check_shape("true_rates", true_rates, (n_cells, n_arms))
    check_unit_interval("true_rates", true_rates)
    out = np.empty(cell_stream.shape[0], np.int64)
    stream = BernoulliStream(cell_stream, uniforms, true_rates)
    _bernoulli_steps(Posterior(alpha, beta), stream, chunk_generators(rng, 1)[0], out)
    return out


def hier_bernoulli_steps(
    level_groups: Sequence[np.ndarray],
    cell_stream: np.ndarray,
    uniforms: np.ndarray,
    true_rates: np.ndarray,
    *,
    strength: float,
    sharpness: float = 1.0,
    rng: np.random.Generator | int | None = None,
) -> np.ndarray:
    """Hierarchical Thompson sampling one step at a time on a Bernoulli stream, from no data.

    Step t serves cell ``cell_stream[t]``, is rewarded when ``uniforms[t] < true_rates[cell, arm]`` and
    learns before step t+1. Each step draws from Beta(sharpness·α, sharpness·β), (α, β) being the
    cell's posterior as :func:`~sendwise.engine.pool_posteriors` gives it. Returns the chosen arms,
    int64 (n_steps,).
    """
    true_rates = as_float_array("true_rates", true_rates, 2)
    n_cells, n_arms = true_rates.shape
    cell_stream = as_index_array("cell_stream", cell_stream, n_cells)
    uniforms = as_float_array("uniforms", uniforms, 1)
    check_same_length(cell_stream=cell_stream, uniforms=uniforms)
    strength = as_finite_positive("strength", strength)
    sharpness = as_finite_positive("sharpness", sharpness)
    cell_groups, n_groups = _stack_levels(level_groups, n_cells)
    out = np.empty(cell_stream.shape[0], np.int64)
    counts = Counts(np.zeros((n_groups, n_arms)), np.zeros((n_groups, n_arms)))
    _hier_bernoulli_steps(counts, cell_groups, strength, sharpness, BernoulliStream(cell_stream, uniforms, true_rates),
                          chunk_generators(rng, 1)[0], out)
    return out
