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
    bank = posterior | {"value": np.ones(1), "cost": np.zeros((1, 3)), "bank_cell": [0, 0], "bank_cost_row": [0, 0],
                        "needed": np.ones((2, 3), np.bool_), "n_draws": 4}
    calls = {
        "score_bank": (engine.score_bank, bank),
        "bank_probabilities": (engine.bank_probabilities, {"scores": np.zeros((2, 4, 3)), "bank_idx": [0, 1],
                                                           "mask": np.ones((2, 3), np.bool_)}),
        "update": (engine.update, {"alpha": np.ones((1, 2, 3)), "beta": np.ones((1, 2, 3)), "cell_idx": [0],
                                   "outcome_idx": [1], "arm_idx": [2], "successes": [1.0], "failures": [0.0]}),
        "pool_posteriors": (engine.pool_posteriors, {"successes": np.zeros((2, 1, 3)), "failures": np.zeros((2, 1, 3)),
                                                     "level_groups": [], "strength": 10.0}),
        "bernoulli_steps": (engine.bernoulli_steps, posterior | {"cell_stream": [0, 0], "uniforms": [0.5, 0.5],
                                                                 "true_rates": [[0.1, 0.2, 0.3]]}),
        "set_num_threads": (engine.set_num_threads, {"n_threads": 1}),
        "as_generator": (engine.as_generator, {"seed": 0}),
    }
    return calls[wrapper]


NAN3, INF3 = np.array([[[1.0, np.nan, 1.0]]]), np.array([[[np.inf, 1.0, 1.0]]])
ONE = np.ones((1, 1, 3))

INVALID = [
    # posteriors (every sampler and updater shares these checks)
    ("score_bank", {"alpha": ONE.tolist()}, TypeError, "`alpha` must be a C-contiguous float64 ndarray",
     "alpha-list"),
    ("score_bank", {"alpha": ONE.astype(np.float32)}, TypeError, "`alpha` must be a C-contiguous float64 ndarray",
     "alpha-float32"),
    ("score_bank", {"alpha": np.ones((1, 1, 6))[:, :, ::2]}, TypeError,
     "`alpha` must be a C-contiguous float64 ndarray", "alpha-strided"),
    ("score_bank", {"alpha": NAN3}, ValueError,
     "`alpha` must be finite; 1 of 3 values are not (first at flat index 1: nan)", "alpha-nan"),
    ("score_bank", {"beta": INF3}, ValueError,
     "`beta` must be finite; 1 of 3 values are not (first at flat index 0: inf)", "beta-inf"),
    ("score_bank", {"alpha": np.array([[[1.0, 1.0, 0.0]]])}, ValueError,
     "`alpha` must be > 0; 1 of 3 values are not (first at flat index 2: 0.0)", "alpha-zero"),
    ("score_bank", {"beta": np.array([[[-1.0, 1.0, 1.0]]])}, ValueError,
     "`beta` must be > 0; 1 of 3 values are not (first at flat index 0: -1.0)", "beta-negative"),
    ("score_bank", {"beta": np.ones((1, 1, 4))}, ValueError, "`beta` must have shape (1, 1, 3); got (1, 1, 4)",
     "beta-shape"),
    # economics
    ("score_bank", {"value": [np.nan]}, ValueError,
     "`value` must be finite; 1 of 1 values are not (first at flat index 0: nan)", "value-nan"),
    ("score_bank", {"value": ["1"]}, TypeError, "`value` must be a numeric array; got dtype <U1", "value-str"),
    ("score_bank", {"value": [True]}, TypeError, "`value` must be a numeric array; got dtype bool", "value-bool"),
    ("score_bank", {"cost": np.zeros(3)}, ValueError, "`cost` must have 2 dimension(s); got shape (3,)", "cost-1d"),
    ("score_bank", {"cost": [[0.0, -np.inf, 0.0]]}, ValueError,
     "`cost` must be finite; 1 of 3 values are not (first at flat index 1: -inf)", "cost-inf"),
    # scalar options
    ("score_bank", {"null_arm": -2}, ValueError, "`null_arm` must be -1 or lie in [0, 3); got -2", "null-negative"),
    ("score_bank", {"null_arm": 1.0}, TypeError, "`null_arm` must be an integer; got 1.0", "null-float"),
    ("bank_probabilities", {"epsilon": float("nan")}, ValueError, "`epsilon` must lie in [0, 1]; got nan",
     "epsilon-nan"),
    ("score_bank", {"chunk_size": 2.5}, TypeError, "`chunk_size` must be an integer; got 2.5", "chunk-float"),
    ("score_bank", {"rng": "seed"}, TypeError,
     "`rng` must be None, an int seed or a numpy.random.Generator; got 'seed'", "rng-str"),
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
    # pool_posteriors
    ("pool_posteriors", {"failures": np.zeros((1, 1, 3))}, ValueError,
     "`failures` must have shape (2, 1, 3); got (1, 1, 3)", "pool-shape"),
    ("pool_posteriors", {"successes": -np.ones((2, 1, 3))}, ValueError,
     "`successes` must be >= 0; 6 of 6 values are not (first at flat index 0: -1.0)", "pool-negative"),
    ("pool_posteriors", {"strength": 0.0}, ValueError, "`strength` must be a finite number > 0; got 0.0",
     "strength-zero"),
    ("pool_posteriors", {"strength": np.nan}, ValueError, "`strength` must be a finite number > 0; got nan",
     "strength-nan"),
    ("pool_posteriors", {"strength": None}, TypeError, "`strength` must be a real number; got None", "strength-none"),
    ("pool_posteriors", {"level_groups": [np.array([0, 0, 0])]}, ValueError,
     "`level_groups[0]` must have shape (2,); got (3,)", "groups-length"),
    ("pool_posteriors", {"level_groups": [np.array([0.0, 1.0])]}, TypeError,
     "`level_groups[0]` must be an integer array; got dtype float64", "groups-float"),
    ("pool_posteriors", {"successes": np.zeros((3, 1, 1)), "failures": np.zeros((3, 1, 1)),
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
    # seeds
    ("as_generator", {"seed": True}, TypeError,
     "`rng` must be None, an int seed or a numpy.random.Generator; got True", "seed-bool"),
    ("as_generator", {"seed": 2.0}, TypeError,
     "`rng` must be None, an int seed or a numpy.random.Generator; got 2.0", "seed-float"),
    ("as_generator", {"seed": -1}, ValueError,
     "`rng` must be None, an int seed >= 0 or a numpy.random.Generator; got -1", "seed-negative"),
    ("as_generator", {"seed": np.int64(-3)}, ValueError,
     "`rng` must be None, an int seed >= 0 or a numpy.random.Generator; got np.int64(-3)", "seed-numpy-negative"),
]


@pytest.mark.parametrize(("wrapper", "spoiled", "error", "message"),
                         [pytest.param(*row[:4], id=row[4]) for row in INVALID])
def test_bad_input_is_rejected_with_a_message_naming_it(wrapper: str, spoiled: dict, error: type,
                                                        message: str) -> None:
    function, arguments = valid_arguments(wrapper)
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        function(**(arguments | spoiled))


@pytest.mark.parametrize("wrapper", ["score_bank", "bank_probabilities", "update", "pool_posteriors",
                                     "bernoulli_steps", "set_num_threads", "as_generator"])
def test_the_valid_arguments_of_the_table_are_accepted(wrapper: str) -> None:
    """Guards the table: each row fails only because of what it spoils."""
    function, arguments = valid_arguments(wrapper)
    function(**arguments)


def test_numpy_scalars_and_lists_are_accepted() -> None:
    scores = engine.score_bank(np.ones((1, 1, 2)), np.ones((1, 1, 2)), [1.0], [[0.0, 0.0]], [0], [0], [[True, True]],
                               np.int16(3), null_arm=np.int64(1), rng=np.uint32(3), chunk_size=np.int32(4))
    assert scores.dtype == np.float64 and scores.shape == (1, 3, 2)
    probs = engine.bank_probabilities(scores, [0], [[True, True]], epsilon=np.float32(0.5), null_arm=np.int64(1))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    pooled = engine.pool_posteriors(np.zeros((2, 1, 1)), np.zeros((2, 1, 1)), [[0, 1]], np.int64(4))
    np.testing.assert_allclose(pooled.alpha + pooled.beta, 2.0)  # a cold start is Beta(1, 1)


def test_as_generator_passes_a_generator_through_and_seeds_like_numpy() -> None:
    gen = np.random.default_rng(5)
    assert engine.as_generator(gen) is gen
    assert engine.as_generator(7).random() == np.random.default_rng(7).random()
    assert isinstance(engine.as_generator(None), np.random.Generator)
    with pytest.raises(ValueError, match=re.escape("`random_state` must be None, an int seed >= 0")):
        engine.as_generator(-1, name="random_state")
