"""sendwise.engine: numba kernels over plain arrays, behind validated wrappers.

Layout: every topic is two modules side by side. ``_<topic>_kernels.py`` holds the numba kernels:
private, typed by their arrays, trusting their input, taking arrays by name or grouped in small
``NamedTuple``s (``Posterior``, ``Counts``, ``Economics``, ``Banks``, ``BernoulliStream``) whose fields
they read by name. ``<topic>.py`` holds the public wrappers that check and coerce the input, then call
the kernels. The topics are ``bank`` (score banks and their exact propensities), ``posterior``
(updates and hierarchical pooling), ``steps`` (per-step Thompson loops) and ``world`` (a simulated
world's rates, fatigue and net values). Beside them: ``validation`` is the engine's one set of input
checks (other layers may use it), ``parallel`` runs chunks of rows on threads with one generator per
chunk, and ``reference`` holds the plain-numpy twin of every wrapper. This module only re-exports.

The wrappers check shapes, dtypes, NaN/inf and ranges once and raise ``ValueError`` (or ``TypeError``
for the wrong kind of array) naming the argument; the kernels behind them trust their input.

Array conventions: ``alpha, beta`` are float64 ``(n_cells, n_outcomes, n_arms)`` Beta parameters;
``value`` float64 ``(n_outcomes,)``; ``cost`` float64 ``(n_cost_rows, n_arms)``; ``mask`` bool
``(n_rows, n_arms)``. ``null_arm`` is the no-message arm (score exactly 0, never sampled), -1 if none.

Randomness: every sampler takes ``rng`` (a seed or a ``numpy.random.Generator``, see
:func:`as_generator`). Rows are cut into chunks of ``chunk_size``; each chunk gets its own generator
seeded from ``rng``, so the output depends only on the seed and ``chunk_size``, never on the number
of threads that run the chunks.
"""

from .bank import bank_probabilities, draw_from, rate_bank, scaled_bank_probabilities, score_bank
from .parallel import chunk_generators, set_num_threads
from .posterior import PooledPosterior, StackedCounts, pool_cells, pool_posteriors, stack_counts, update
from .steps import bernoulli_steps, hier_bernoulli_steps
from .validation import as_generator
from .world import FatigueMultipliers, NetValues, customer_rates, fatigue_multipliers, net_values

__all__ = [
    "FatigueMultipliers",
    "NetValues",
    "PooledPosterior",
    "StackedCounts",
    "as_generator",
    "bank_probabilities",
    "bernoulli_steps",
    "chunk_generators",
    "customer_rates",
    "draw_from",
    "fatigue_multipliers",
    "hier_bernoulli_steps",
    "net_values",
    "pool_cells",
    "pool_posteriors",
    "rate_bank",
    "scaled_bank_probabilities",
    "score_bank",
    "set_num_threads",
    "stack_counts",
    "update",
]
