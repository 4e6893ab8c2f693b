"""Every public engine wrapper rejects bad input with a TypeError or ValueError that names the argument."""

import re
from collections.abc import Callable

import numpy as np
import pytest

from sendwise import engine


def read_only(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def valid_arguments(wrapper: str) -> tuple[Callable, dict]:
    """A public wrapper and a set of arguments it accepts; each table row spoils one of them."""
    posterior = {"alpha": np.ones((1, 1, 3)), "beta": np.ones((1, 1, 3))}
    decision = posterior | {"value": np.ones(1), "cost": np.zeros((1, 3)), "mask": np.ones((2, 3), np.bool_)}
    calls = {
        "decide_batch": (engine.decide_batch, decision),
        "choice_probabilities": (engine.choice_probabilities, decision | {"n_draws": 10}),
        "update": (engine.update, {"alpha": np.ones((1, 2, 3)), "beta": np.ones((1, 2, 3)), "cell_idx": [0],
                                   "outcome_idx": [1], "arm_idx": [2], "successes": [1.0], "failures": [0.0]}),
        "discount": (engine.discount, posterior | {"prior_alpha": np.ones((1, 1, 3)),
                                                   "prior_beta": np.ones((1, 1, 3)), "factor_per_day": 0.9}),
        "pool_priors": (engine.pool_priors, {"successes": np.zeros((2, 1, 3)), "failures": np.zeros((2, 1, 3)),
                                             "level_groups": [], "strength": 10.0}),
        "bernoulli_steps": (engine.bernoulli_steps, posterior | {"cell_stream": [0, 0], "uniforms": [0.5, 0.5],
                                                                 "true_rates": [[0.1, 0.2, 0.3]]}),
        "set_num_threads": (engine.set_num_threads, {"n_threads": 1}),
    }
    return calls[wrapper]


NAN3, INF3 = np.array([[[1.0, np.nan, 1.0]]]), np.array([[[np.inf, 1.0, 1.0]]])
ONE = np.ones((1, 1, 3))

INVALID = [
    # posteriors (every sampler and updater shares these checks)
    ("decide_batch", {"alpha": ONE.tolist()}, TypeError, "`alpha` must be a C-contiguous float64 ndarray",
     "alpha-list"),
    ("decide_batch", {"alpha": ONE.astype(np.float32)}, TypeError, "`alpha` must be a C-contiguous float64 ndarray",
     "alpha-float32"),
    ("decide_batch", {"alpha": np.ones((1, 1, 6))[:, :, ::2]}, TypeError,
     "`alpha` must be a C-contiguous float64 ndarray", "alpha-strided"),
    ("decide_batch", {"alpha": np.ones((1, 3))}, ValueError,
     "`alpha` must have shape (n_cells, n_outcomes, n_arms); got (1, 3)", "alpha-2d"),
    ("decide_batch", {"alpha": NAN3}, ValueError,
     "`alpha` must be finite; 1 of 3 values are not (first at flat index 1: nan)", "alpha-nan"),
    ("decide_batch", {"beta": INF3}, ValueError,
     "`beta` must be finite; 1 of 3 values are not (first at flat index 0: inf)", "beta-inf"),
    ("decide_batch", {"alpha": np.array([[[1.0, 1.0, 0.0]]])}, ValueError,
     "`alpha` must be > 0; 1 of 3 values are not (first at flat index 2: 0.0)", "alpha-zero"),
    ("decide_batch", {"beta": np.array([[[-1.0, 1.0, 1.0]]])}, ValueError,
     "`beta` must be > 0; 1 of 3 values are not (first at flat index 0: -1.0)", "beta-negative"),
    ("decide_batch", {"beta": np.ones((1, 1, 4))}, ValueError, "`beta` must have shape (1, 1, 3); got (1, 1, 4)",
     "beta-shape"),
    # economics
    ("decide_batch", {"value": np.ones(2)}, ValueError, "`value` must have shape (1,); got (2,)", "value-length"),
    ("decide_batch", {"value": [np.nan]}, ValueError,
     "`value` must be finite; 1 of 1 values are not (first at flat index 0: nan)", "value-nan"),
    ("decide_batch", {"value": ["1"]}, TypeError, "`value` must be a numeric array; got dtype <U1", "value-str"),
    ("decide_batch", {"value": [True]}, TypeError, "`value` must be a numeric array; got dtype bool", "value-bool"),
    ("decide_batch", {"cost": np.zeros((1, 4))}, ValueError, "`cost` must have shape (n_cost_rows, 3); got (1, 4)",
     "cost-arms"),
    ("decide_batch", {"cost": np.zeros(3)}, ValueError, "`cost` must have 2 dimension(s); got shape (3,)", "cost-1d"),
    ("decide_batch", {"cost": [[0.0, -np.inf, 0.0]]}, ValueError,
     "`cost` must be finite; 1 of 3 values are not (first at flat index 1: -inf)", "cost-inf"),
    # rows
    ("decide_batch", {"mask": np.ones((2, 3), np.int64)}, TypeError, "`mask` must be a bool array; got dtype int64",
     "mask-int"),
    ("decide_batch", {"mask": np.ones(3, np.bool_)}, ValueError, "`mask` must have shape (n_rows, 3); got (3,)",
     "mask-1d"),
    ("decide_batch", {"mask": np.ones((2, 4), np.bool_)}, ValueError, "`mask` must have shape (2, 3); got (2, 4)",
     "mask-arms"),
    ("decide_batch", {"mask": np.array([[True, True, True], [False, False, False]])}, ValueError,
     "`mask` must allow at least one arm per row; 1 rows allow none (first: row 1)", "mask-empty-row"),
    ("decide_batch", {"cell_idx": [0, 1]}, ValueError,
     "`cell_idx` must lie in [0, 1); 1 of 2 values do not (first: cell_idx[1] = 1)", "cell-too-big"),
    ("decide_batch", {"cell_idx": [-1, 0]}, ValueError,
     "`cell_idx` must lie in [0, 1); 1 of 2 values do not (first: cell_idx[0] = -1)", "cell-negative"),
    ("decide_batch", {"cell_idx": [0.0, 0.0]}, TypeError, "`cell_idx` must be an integer array; got dtype float64",
     "cell-float"),
    ("decide_batch", {"cell_idx": [0, 0, 0]}, ValueError,
     "arrays must share their first dimension; got mask=2, cell_idx=3, cost_row_idx=2", "cell-length"),
    ("decide_batch", {"cost_row_idx": [0, 2]}, ValueError,
     "`cost_row_idx` must lie in [0, 1); 1 of 2 values do not (first: cost_row_idx[1] = 2)", "cost-row-too-big"),
    # scalar options
    ("decide_batch", {"null_arm": 3}, ValueError, "`null_arm` must be -1 or lie in [0, 3); got 3", "null-too-big"),
    ("decide_batch", {"null_arm": -2}, ValueError, "`null_arm` must be -1 or lie in [0, 3); got -2", "null-negative"),
    ("decide_batch", {"null_arm": 1.0}, TypeError, "`null_arm` must be an integer; got 1.0", "null-float"),
    ("decide_batch", {"epsilon": 1.5}, ValueError, "`epsilon` must lie in [0, 1]; got 1.5", "epsilon-big"),
    ("decide_batch", {"epsilon": float("nan")}, ValueError, "`epsilon` must lie in [0, 1]; got nan", "epsilon-nan"),
    ("decide_batch", {"epsilon": "0.1"}, TypeError, "`epsilon` must be a real number; got '0.1'", "epsilon-str"),
    ("decide_batch", {"chunk_size": 0}, ValueError, "`chunk_size` must be >= 1; got 0", "chunk-zero"),
    ("decide_batch", {"chunk_size": 2.5}, TypeError, "`chunk_size` must be an integer; got 2.5", "chunk-float"),
    ("decide_batch", {"rng": "seed"}, TypeError,
     "`rng` must be None, an int seed or a numpy.random.Generator; got 'seed'", "rng-str"),
    ("decide_batch", {"rng": -1}, ValueError,
     "`rng` must be None, an int seed >= 0 or a numpy.random.Generator; got -1", "rng-negative"),
    ("choice_probabilities", {"n_draws": 0}, ValueError, "`n_draws` must be >= 1; got 0", "draws-zero"),
    ("choice_probabilities", {"n_draws": 10.0}, TypeError, "`n_draws` must be an integer; got 10.0", "draws-float"),
    ("choice_probabilities", {"mask": np.zeros((1, 3), np.bool_)}, ValueError,
     "`mask` must allow at least one arm per row; 1 rows allow none (first: row 0)", "propensity-empty-row"),
    # update
    ("update", {"alpha": read_only(np.ones((1, 2, 3)))}, TypeError,
     "`alpha` is updated in place, so it must be a writeable ndarray; got a read-only one", "update-read-only"),
    ("update", {"cell_idx": [1]}, ValueError,
     "`cell_idx` must lie in [0, 1); 1 of 1 values do not (first: cell_idx[0] = 1)", "update-cell"),
    ("update", {"outcome_idx": [2]}, ValueError,
     "`outcome_idx` must lie in [0, 2); 1 of 1 values do not (first: outcome_idx[0] = 2)", "update-outcome"),
    ("update", {"arm_idx": [3]}, ValueError,
     "`arm_idx` must lie in [0, 3); 1 of 1 values do not (first: arm_idx[0] = 3)", "update-arm"),
    ("update", {"arm_idx": [[0]]}, ValueError, "`arm_idx` must have 1 dimension(s); got shape (1, 1)", "update-arm-2d"),
    ("update", {"successes": [-1.0]}, ValueError,
     "`successes` must be >= 0; 1 of 1 values are not (first at flat index 0: -1.0)", "update-negative"),
    ("update", {"failures": [np.nan]}, ValueError,
     "`failures` must be finite; 1 of 1 values are not (first at flat index 0: nan)", "update-nan"),
    ("update", {"successes": [1.0, 1.0]}, ValueError,
     "arrays must share their first dimension; got cell_idx=1, outcome_idx=1, arm_idx=1, successes=2, failures=1",
     "update-length"),
    # discount
    ("discount", {"factor_per_day": 0.0}, ValueError, "`factor_per_day` must lie in (0, 1]; got 0.0", "factor-zero"),
    ("discount", {"factor_per_day": 1.1}, ValueError, "`factor_per_day` must lie in (0, 1]; got 1.1", "factor-big"),
    ("discount", {"days": -1.0}, ValueError, "`days` must be a finite number >= 0; got -1.0", "days-negative"),
    ("discount", {"days": np.inf}, ValueError, "`days` must be a finite number >= 0; got inf", "days-inf"),
    ("discount", {"days": None}, TypeError, "`days` must be a real number; got None", "days-none"),
    ("discount", {"prior_alpha": np.ones((1, 1, 2))}, ValueError,
     "`prior_alpha` must have shape (1, 1, 3); got (1, 1, 2)", "prior-shape"),
    ("discount", {"prior_beta": np.zeros((1, 1, 3))}, ValueError,
     "`prior_beta` must be > 0; 3 of 3 values are not (first at flat index 0: 0.0)", "prior-zero"),
    ("discount", {"beta": read_only(np.ones((1, 1, 3)))}, TypeError,
     "`beta` is updated in place, so it must be a writeable ndarray; got a read-only one", "discount-read-only"),
    # pool_priors
    ("pool_priors", {"failures": np.zeros((1, 1, 3))}, ValueError,
     "`failures` must have shape (2, 1, 3); got (1, 1, 3)", "pool-shape"),
    ("pool_priors", {"successes": -np.ones((2, 1, 3))}, ValueError,
     "`successes` must be >= 0; 6 of 6 values are not (first at flat index 0: -1.0)", "pool-negative"),
    ("pool_priors", {"strength": 0.0}, ValueError, "`strength` must be a finite number > 0; got 0.0", "strength-zero"),
    ("pool_priors", {"strength": np.nan}, ValueError, "`strength` must be a finite number > 0; got nan",
     "strength-nan"),
    ("pool_priors", {"strength": None}, TypeError, "`strength` must be a real number; got None", "strength-none"),
    ("pool_priors", {"base_alpha": 0.0}, ValueError, "`base_alpha`, `base_beta` must be finite and > 0; got 0.0, 1.0",
     "base-zero"),
    ("pool_priors", {"level_groups": [np.array([0, 0, 0])]}, ValueError,
     "`level_groups[0]` must have shape (2,); got (3,)", "groups-length"),
    ("pool_priors", {"level_groups": [np.array([0, 2])]}, ValueError,
     "`level_groups[0]` must lie in [0, 2); 1 of 2 values do not (first: level_groups[0][1] = 2)", "groups-range"),
    ("pool_priors", {"level_groups": [np.array([0.0, 1.0])]}, TypeError,
     "`level_groups[0]` must be an integer array; got dtype float64", "groups-float"),
    ("pool_priors", {"successes": np.zeros((3, 1, 1)), "failures": np.zeros((3, 1, 1)),
                     "level_groups": [np.array([0, 0, 1]), np.array([0, 1, 1])]}, ValueError,
     "`level_groups[1]` must be nested in `level_groups[0]`: group 1 has cells under more than one parent "
     "(e.g. cell 1)",
     "groups-not-nested"),
    # bernoulli_steps
    ("bernoulli_steps", {"true_rates": [[0.1, 0.2, 1.5]]}, ValueError,
     "`true_rates` must lie in [0, 1]; 1 of 3 values do not (first at flat index 2: 1.5)", "rates-range"),
    ("bernoulli_steps", {"true_rates": [0.1, 0.2, 0.3]}, ValueError,
     "`true_rates` must have 2 dimension(s); got shape (3,)", "rates-1d"),
    ("bernoulli_steps", {"true_rates": [[0.1, 0.2]]}, ValueError, "`true_rates` must have shape (1, 3); got (1, 2)",
     "rates-shape"),
    ("bernoulli_steps", {"uniforms": [0.5, 0.5, 0.5]}, ValueError,
     "arrays must share their first dimension; got cell_stream=2, uniforms=3", "uniforms-length"),
    ("bernoulli_steps", {"cell_stream": [0, 1]}, ValueError,
     "`cell_stream` must lie in [0, 1); 1 of 2 values do not (first: cell_stream[1] = 1)", "stream-cell"),
    ("bernoulli_steps", {"alpha": read_only(np.ones((1, 1, 3)))}, TypeError,
     "`alpha` is updated in place, so it must be a writeable ndarray; got a read-only one", "steps-read-only"),
    # threads
    ("set_num_threads", {"n_threads": 0}, ValueError, "`n_threads` must be >= 1; got 0", "threads-zero"),
    ("set_num_threads", {"n_threads": 1.5}, TypeError, "`n_threads` must be an integer; got 1.5", "threads-float"),
]


@pytest.mark.parametrize(("wrapper", "spoiled", "error", "message"),
                         [pytest.param(*row[:4], id=row[4]) for row in INVALID])
def test_bad_input_is_rejected_with_a_message_naming_it(wrapper: str, spoiled: dict, error: type,
                                                        message: str) -> None:
    function, arguments = valid_arguments(wrapper)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        function(**(arguments | spoiled))


@pytest.mark.parametrize("wrapper", ["decide_batch", "choice_probabilities", "update", "discount", "pool_priors",
                                     "bernoulli_steps"])
def test_the_valid_arguments_of_the_table_are_accepted(wrapper: str) -> None:
    """Guards the table: each row fails only because of what it spoils."""
    function, arguments = valid_arguments(wrapper)
    function(**arguments)


def test_numpy_scalars_and_lists_are_accepted() -> None:
    decisions = engine.decide_batch(np.ones((1, 1, 2)), np.ones((1, 1, 2)), [1.0], [[0.0, 0.0]], [[True, True]],
                                    cell_idx=[0], epsilon=np.float32(0.5), null_arm=np.int64(1), rng=np.uint32(3),
                                    chunk_size=np.int32(4))
    assert decisions.arm.dtype == np.int64 and decisions.arm.shape == (1,)
    pooled = engine.pool_priors(np.zeros((2, 1, 1)), np.zeros((2, 1, 1)), [[0, 1]], np.int64(4), base_alpha=2)
    np.testing.assert_allclose(pooled.alpha + pooled.beta, 4.0)
