"""Samplers (decide_batch, choice_probabilities): invariants on any input, determinism, distributions.

Stochastic checks compare distributions (and replay Beta draws with numpy's own sampler), never
golden sequences. Frequency checks use a 5-sigma tolerance on a difference of binomial proportions,
sigma = sqrt(p (1 - p) (1/n1 + 1/n2)) with p pooled: a two-sided normal tail of 5.7e-7 per arm and
comparison, so with at most ~25 arm-comparisons per test a correct engine fails a given seed with
probability below 2e-5. The seeds are fixed, so the tests are deterministic; the bound is how unlucky
a seed could have been.
"""

import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sendwise import engine
from sendwise.engine import reference

PROPERTY = settings(max_examples=60, deadline=None)  # deadline off: the first call loads or compiles kernels
SIGMAS = 5.0

# Beta parameters of every sampling branch: Jöhnk (both <= 1; tiny ones once made numba's own sampler
# loop for ever), the Gamma ratio (either > 1), and learned posteriors.
BETA_CASES = [(1.0, 1.0), (1.0, 40.0), (0.3, 1.0), (0.5, 0.5), (1e-3, 0.5), (1e-3, 1e-3), (1e-12, 1e-12),
              (1e-200, 1e-150), (0.5, 3.0), (3.0, 7.0), (50.0, 950.0), (950.0, 50.0), (2e5, 8e6)]
BETA_PARAM = st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-12, 1e-150]))  # includes the tiny ones
EPSILONS = st.sampled_from([0.0, 0.2, 1.0])  # no exploration, some, only exploration


@st.composite
def decision_cases(draw: st.DrawFn, epsilon: st.SearchStrategy[float] = EPSILONS) -> tuple:
    """Positional inputs (alpha, beta, value, cost, mask) and keyword options of a random decision batch."""
    n_cells, n_outcomes, n_arms = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 7))
    n_rows, n_cost_rows = draw(st.integers(1, 30)), draw(st.integers(1, 3))
    shape = (n_cells, n_outcomes, n_arms)
    mask = draw(arrays(np.bool_, (n_rows, n_arms)))
    mask[np.arange(n_rows), draw(arrays(np.int64, n_rows, elements=st.integers(0, n_arms - 1)))] = True
    inputs = (
        draw(arrays(np.float64, shape, elements=BETA_PARAM)),
        draw(arrays(np.float64, shape, elements=BETA_PARAM)),
        draw(arrays(np.float64, n_outcomes, elements=st.floats(-5.0, 5.0))),
        draw(arrays(np.float64, (n_cost_rows, n_arms), elements=st.floats(-1.0, 3.0))),
        mask,
    )
    options = {
        "cell_idx": draw(arrays(np.int64, n_rows, elements=st.integers(0, n_cells - 1))),
        "cost_row_idx": draw(arrays(np.int64, n_rows, elements=st.integers(0, n_cost_rows - 1))),
        "epsilon": draw(epsilon),
        "null_arm": draw(st.integers(-1, n_arms - 1)),
        "rng": draw(st.integers(0, 2**32)),
        "chunk_size": draw(st.integers(1, 8)),
    }
    return inputs, options


def check_decisions(decisions: engine.Decisions, inputs: tuple, options: dict) -> None:
    """Every chosen arm is allowed; the exploration flag and the score are consistent with the inputs."""
    _, _, value, cost, mask = inputs
    rows = np.arange(mask.shape[0])
    assert mask[rows, decisions.arm].all(), f"masked arms chosen in rows {rows[~mask[rows, decisions.arm]]}"
    if options["epsilon"] in (0.0, 1.0):
        assert (decisions.explored == (options["epsilon"] == 1.0)).all()
    is_null = decisions.arm == options["null_arm"]
    npt.assert_array_equal(decisions.score[is_null], 0.0)
    arm_cost = cost[options["cost_row_idx"], decisions.arm][~is_null]
    tol = 1e-9 * (1.0 + np.abs(value).sum() + np.abs(arm_cost))
    assert np.all(decisions.score[~is_null] <= np.maximum(value, 0).sum() - arm_cost + tol)
    assert np.all(decisions.score[~is_null] >= np.minimum(value, 0).sum() - arm_cost - tol)


@given(decision_cases())
@PROPERTY
def test_decide_batch_never_chooses_a_masked_arm(case: tuple) -> None:
    inputs, options = case
    check_decisions(engine.decide_batch(*inputs, **options), inputs, options)


@given(decision_cases())
@PROPERTY
def test_numpy_twin_never_chooses_a_masked_arm(case: tuple) -> None:
    inputs, options = case
    check_decisions(reference.decide_batch(*inputs, **options), inputs, options)


@given(decision_cases(epsilon=st.floats(0.0, 1.0)))
@PROPERTY
def test_propensities_are_zero_when_masked_floored_when_allowed_and_sum_to_one(case: tuple) -> None:
    inputs, options = case
    mask, epsilon = inputs[4], options["epsilon"]
    probs = engine.choice_probabilities(*inputs, **options, n_draws=20)
    npt.assert_array_equal(probs[~mask], 0.0)
    floor = np.broadcast_to((epsilon / mask.sum(axis=1))[:, None], mask.shape)
    assert np.all(probs[mask] >= floor[mask] - 1e-12)
    npt.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)


@st.composite
def losing_cases(draw: st.DrawFn) -> tuple:
    """Decision batches where every arm's cost exceeds the most any outcome mix could earn on it."""
    (alpha, beta, value, cost, mask), options = draw(decision_cases(epsilon=st.just(0.0)))
    null_arm = options["null_arm"] if options["null_arm"] >= 0 else mask.shape[1] - 1
    mask[:, null_arm] = True
    margin = draw(arrays(np.float64, cost.shape, elements=st.floats(1e-6, 2.0)))
    return (alpha, beta, value, np.maximum(value, 0).sum() + margin, mask), {**options, "null_arm": null_arm}


@given(losing_cases())
@PROPERTY
def test_no_message_wins_when_every_cost_exceeds_every_value(case: tuple) -> None:
    inputs, options = case
    npt.assert_array_equal(engine.decide_batch(*inputs, **options).arm, options["null_arm"])
    npt.assert_array_equal(reference.decide_batch(*inputs, **options).arm, options["null_arm"])


def learned_case(n_rows: int, n_arms: int = 12) -> tuple:
    """Two outcomes (click worth 1, unsubscribe worth -5), learned posteriors, ragged masks, a null arm."""
    rng = np.random.default_rng(7)
    click, unsub = rng.uniform(0.02, 0.2, n_arms), rng.uniform(0.001, 0.02, n_arms)
    alpha = np.stack([1 + 200 * click, 1 + 200 * unsub])[None]
    beta = np.stack([1 + 200 * (1 - click), 1 + 200 * (1 - unsub)])[None]
    mask = rng.random((n_rows, n_arms)) < 0.7
    mask[:, -1] = True
    cost = rng.uniform(0.0, 0.05, (2, n_arms))
    options = {"cost_row_idx": rng.integers(0, 2, n_rows), "epsilon": 0.05, "null_arm": n_arms - 1}
    return (alpha, beta, np.array([1.0, -5.0]), cost, mask), options


def test_same_seed_gives_the_same_decisions_and_another_seed_does_not() -> None:
    inputs, options = learned_case(3000)
    first = engine.decide_batch(*inputs, **options, rng=11)
    again = engine.decide_batch(*inputs, **options, rng=np.random.default_rng(11))
    other = engine.decide_batch(*inputs, **options, rng=12)
    for got, want in zip(again, first, strict=True):
        npt.assert_array_equal(got, want)
    assert not np.array_equal(other.score, first.score)


@pytest.mark.usefixtures("restore_threads")
def test_decisions_do_not_depend_on_the_number_of_threads() -> None:
    inputs, options = learned_case(2000)
    results = []
    for n_threads in (1, 2):
        engine.set_num_threads(n_threads)
        results.append((engine.decide_batch(*inputs, **options, rng=3, chunk_size=100),
                        engine.choice_probabilities(*inputs[:4], inputs[4][:12], epsilon=0.05, null_arm=11,
                                                    n_draws=50, rng=3, chunk_size=2)))
    (serial, serial_probs), (threaded, threaded_probs) = results
    for got, want in zip(threaded, serial, strict=True):
        npt.assert_array_equal(got, want)
    npt.assert_array_equal(threaded_probs, serial_probs)


def test_output_is_a_function_of_seed_and_chunk_size() -> None:
    """Each chunk of rows draws from its own generator seeded from ``rng``: replaying a batch needs the
    same seed and the same ``chunk_size`` (by design; the thread count does not matter)."""
    inputs, options = learned_case(1000)
    once = engine.decide_batch(*inputs, **options, rng=5, chunk_size=64)
    twice = engine.decide_batch(*inputs, **options, rng=5, chunk_size=64)
    resplit = engine.decide_batch(*inputs, **options, rng=5, chunk_size=128)
    npt.assert_array_equal(once.score, twice.score)
    assert not np.array_equal(once.score, resplit.score)


def assert_same_frequencies(got: np.ndarray, n_got: int, want: np.ndarray, n_want: int, what: str) -> None:
    """Per-arm frequencies agree within SIGMAS binomial standard errors of their difference."""
    pooled = (got * n_got + want * n_want) / (n_got + n_want)
    tol = SIGMAS * np.sqrt(pooled * (1 - pooled) * (1 / n_got + 1 / n_want)) + 1e-12
    bad = np.abs(got - want) > tol
    assert not bad.any(), (f"{what}: arms {np.flatnonzero(bad)} differ by more than {SIGMAS} sigma: "
                           f"got {got[bad]}, want {want[bad]}, tolerance {tol[bad]}")


def frequencies(arms: np.ndarray, n_arms: int) -> np.ndarray:
    """Share of rows that chose each arm."""
    return np.bincount(arms, minlength=n_arms) / arms.size


def test_choice_frequencies_agree_with_propensities_and_with_the_numpy_twin() -> None:
    n = 40_000
    inputs, options = learned_case(n, n_arms=6)
    inputs[4][:] = [True, True, False, True, True, True]  # one pattern, so every row has the same law
    options["cost_row_idx"][:] = 1
    engine_freq = frequencies(engine.decide_batch(*inputs, **options, rng=1).arm, 6)
    twin_freq = frequencies(reference.decide_batch(*inputs, **options, rng=2).arm, 6)
    one_row = (*inputs[:4], inputs[4][:1])
    probs = engine.choice_probabilities(*one_row, **(options | {"cost_row_idx": [1]}), n_draws=n, rng=3)[0]
    twin_probs = reference.choice_probabilities(*one_row, **(options | {"cost_row_idx": [1]}), n_draws=n, rng=4)[0]
    assert engine_freq[2] == twin_freq[2] == probs[2] == twin_probs[2] == 0.0
    assert_same_frequencies(engine_freq, n, probs, n, "decide_batch vs choice_probabilities")
    assert_same_frequencies(engine_freq, n, twin_freq, n, "decide_batch vs numpy twin")
    assert_same_frequencies(probs, n, twin_freq, n, "choice_probabilities vs numpy twin")
    assert_same_frequencies(probs, n, twin_probs, n, "choice_probabilities vs its numpy twin")


def test_propensity_of_a_known_race() -> None:
    """Beta(2, 1) beats Beta(1, 1) with probability E[X] = 2/3; with ε = 0.1 that is 0.9·2/3 + 0.1/2."""
    n = 100_000
    alpha, beta = np.array([[[2.0, 1.0]]]), np.ones((1, 1, 2))
    mask = np.ones((n, 2), np.bool_)
    exact = np.array([0.9 * 2 / 3 + 0.05, 0.9 / 3 + 0.05])
    probs = engine.choice_probabilities(alpha, beta, np.ones(1), np.zeros((1, 2)), mask[:1], epsilon=0.1,
                                        n_draws=n, rng=4)[0]
    chosen = engine.decide_batch(alpha, beta, np.ones(1), np.zeros((1, 2)), mask, epsilon=0.1, rng=4).arm
    # the exact law has no sampling error, so compare as if it came from an enormous sample
    assert_same_frequencies(probs, n, exact, 10**15, "choice_probabilities vs exact")
    assert_same_frequencies(frequencies(chosen, 2), n, exact, 10**15, "decide_batch vs exact")


@pytest.mark.parametrize(("null_arm", "arm_cost"), [(-1, 0.5), (5, 0.0)], ids=["equal-costs", "all-zero-with-null"])
def test_ties_are_broken_uniformly(null_arm: int, arm_cost: float) -> None:
    """No outcome has value, so every allowed score is −cost: all tie, each allowed arm is equally likely."""
    n = 40_000
    alpha, beta = np.ones((1, 1, 6)), np.ones((1, 1, 6))
    allowed = np.array([True, False, True, True, False, True])
    mask = np.broadcast_to(allowed, (n, 6)).copy()
    args = (alpha, beta, np.zeros(1), np.full((1, 6), arm_cost))
    uniform = np.where(allowed, 1 / allowed.sum(), 0.0)
    options = {"epsilon": 0.0, "null_arm": null_arm}
    for what, freq in [
        ("decide_batch", frequencies(engine.decide_batch(*args, mask, **options, rng=6).arm, 6)),
        ("numpy twin", frequencies(reference.decide_batch(*args, mask, **options, rng=6).arm, 6)),
        ("choice_probabilities", engine.choice_probabilities(*args, mask[:1], **options, n_draws=n, rng=6)[0]),
    ]:
        assert_same_frequencies(freq, n, uniform, 10**15, what)


def test_full_exploration_is_uniform_over_allowed_arms() -> None:
    n = 40_000
    inputs, options = learned_case(n, n_arms=5)
    inputs[4][:] = [True, False, True, True, True]
    decisions = engine.decide_batch(*inputs, **(options | {"epsilon": 1.0}), rng=8)
    assert decisions.explored.all()
    assert_same_frequencies(frequencies(decisions.arm, 5), n, np.array([0.25, 0, 0.25, 0.25, 0.25]), 10**15,
                            "epsilon = 1")


@pytest.mark.parametrize(("a", "b"), BETA_CASES)
def test_beta_draws_follow_numpys_beta_in_distribution(a: float, b: float) -> None:
    """One arm, value 1, no cost: each row's score is one Beta(a, b) draw. Compare with numpy's sampler:
    the means within 5 standard errors, and the whole distributions by a two-sample Kolmogorov-Smirnov
    test at level 1e-6 (critical distance sqrt(ln(2/1e-6)/2) * sqrt(2/n))."""
    n = 20_000
    draws = engine.decide_batch(np.full((1, 1, 1), a), np.full((1, 1, 1), b), np.ones(1), np.zeros((1, 1)),
                                np.ones((n, 1), np.bool_), epsilon=0.0, rng=9).score
    numpy_draws = np.random.default_rng(9).beta(a, b, n)
    variance = a * b / ((a + b) ** 2 * (a + b + 1))
    tol = SIGMAS * np.sqrt(2 * variance / n) + 1e-12
    assert abs(draws.mean() - numpy_draws.mean()) <= tol, f"means {draws.mean()} vs {numpy_draws.mean()}, tol {tol}"
    points = np.concatenate([draws, numpy_draws])
    distance = np.max(np.abs(np.searchsorted(np.sort(draws), points, side="right")
                             - np.searchsorted(np.sort(numpy_draws), points, side="right"))) / n
    critical = np.sqrt(np.log(2 / 1e-6) / 2) * np.sqrt(2 / n)
    assert distance <= critical, f"Kolmogorov-Smirnov distance {distance:.4f} > {critical:.4f} for Beta({a}, {b})"


@pytest.mark.parametrize(("a", "b"), BETA_CASES)
def test_beta_draws_replay_numpys_stream(a: float, b: float) -> None:
    """The kernels draw Beta variates by numpy's own algorithm, so a numpy Generator in the same state
    replays them: with one allowed arm a row takes one exploration coin, then one Beta draw. Equality
    is up to the last bits of ``pow``/``log``, whose implementations differ between numba and numpy."""
    n, seed = 2000, 21
    draws = engine.decide_batch(np.full((1, 1, 1), a), np.full((1, 1, 1), b), np.ones(1), np.zeros((1, 1)),
                                np.ones((n, 1), np.bool_), epsilon=0.0, rng=seed, chunk_size=n).score
    gen = engine.chunk_generators(seed, 1)[0]
    replay = np.array([(gen.random(), gen.beta(a, b))[1] for _ in range(n)])
    npt.assert_allclose(draws, replay, rtol=1e-9, atol=0)
