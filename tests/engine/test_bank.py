"""Score banks (score_bank, bank_probabilities, draw_from): twins, invariants, threads, distributions, errors.

The kernels are deterministic given their generators, so they are compared with their numpy twins
exactly: ``score_bank``'s twin replays the kernel's Beta stream from the same per-chunk generators,
and ``bank_probabilities`` adds the same shares in the same order. Frequency checks use a 5-sigma
tolerance (a two-sided normal tail of 5.7e-7 per arm and comparison); the seeds are fixed, so the
tests are deterministic.
"""

import re
from collections.abc import Callable
from fractions import Fraction

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
BETA_PARAM = st.one_of(st.floats(1e-3, 1e3), st.sampled_from([1e-12, 1e-150, 0.5, 1.0]))  # every Beta branch
EPSILONS = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


def allowing_one_per_row(draw: st.DrawFn, n_rows: int, n_arms: int) -> np.ndarray:
    """A random bool mask (n_rows, n_arms) with at least one True per row."""
    mask = draw(arrays(np.bool_, (n_rows, n_arms)))
    mask[np.arange(n_rows), draw(arrays(np.int64, n_rows, elements=st.integers(0, n_arms - 1)))] = True
    return mask


@st.composite
def bank_cases(draw: st.DrawFn) -> tuple[tuple, dict]:
    """Positional inputs of ``score_bank`` up to ``needed``, and its options."""
    n_cells, n_outcomes, n_arms = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 7))
    n_banks, n_cost_rows = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    shape = (n_cells, n_outcomes, n_arms)
    inputs = (
        draw(arrays(np.float64, shape, elements=BETA_PARAM)),
        draw(arrays(np.float64, shape, elements=BETA_PARAM)),
        draw(arrays(np.float64, n_outcomes, elements=st.one_of(st.just(0.0), st.floats(-5.0, 5.0)))),
        draw(arrays(np.float64, (n_cost_rows, n_arms), elements=st.floats(-1.0, 3.0))),
        draw(arrays(np.int64, n_banks, elements=st.integers(0, n_cells - 1))),
        draw(arrays(np.int64, n_banks, elements=st.integers(0, n_cost_rows - 1))),
        draw(arrays(np.bool_, (n_banks, n_arms))),
    )
    options = {"n_draws": draw(st.integers(1, 12)), "null_arm": draw(st.integers(-1, n_arms - 1)),
               "rng": draw(st.integers(0, 2**32)), "chunk_size": draw(st.integers(1, 4))}
    return inputs, options


@st.composite
def probability_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(scores, bank_idx, mask, epsilon)`` with many ties (scores on a coarse grid) and repeated rows.

    Arms a bank did not sample score -inf and no row of that bank allows them, as ``score_bank`` and
    a caller building ``needed`` from the masks would have it.
    """
    n_banks, n_draws, n_arms = draw(st.integers(1, 4)), draw(st.integers(1, 9)), draw(st.integers(1, 6))
    n_distinct, n_rows = draw(st.integers(1, 6)), draw(st.integers(1, 25))
    grid = st.integers(-3, 3).map(lambda k: k / 4)
    scores = draw(arrays(np.float64, (n_banks, n_draws, n_arms), elements=grid))
    distinct_bank = draw(arrays(np.int64, n_distinct, elements=st.integers(0, n_banks - 1)))
    distinct_mask = allowing_one_per_row(draw, n_distinct, n_arms)
    pick = draw(arrays(np.int64, n_rows, elements=st.integers(0, n_distinct - 1)))
    bank_idx, mask = distinct_bank[pick], distinct_mask[pick]
    needed = np.zeros((n_banks, n_arms), np.bool_)
    np.logical_or.at(needed, bank_idx, mask)
    scores[~np.broadcast_to(needed[:, None, :], scores.shape)] = -np.inf
    return scores, bank_idx, mask, draw(EPSILONS)


def learned_bank(n_banks: int, n_arms: int = 12, n_draws: int = 64, rng: int = 5, needed_share: float = 0.8,
                 **options: int) -> np.ndarray:
    """Scores of ``n_banks`` banks over two learned outcomes (click 1, unsubscribe -5), the last arm null;
    each bank needs each arm with probability ``needed_share``."""
    gen = np.random.default_rng(7)
    click, unsub = gen.uniform(0.02, 0.2, (2, n_arms)), gen.uniform(0.001, 0.02, (2, n_arms))
    alpha = np.stack([1 + 200 * click, 1 + 200 * unsub], axis=1)
    beta = np.stack([1 + 200 * (1 - click), 1 + 200 * (1 - unsub)], axis=1)
    needed = gen.random((n_banks, n_arms)) < needed_share
    return engine.score_bank(alpha, beta, np.array([1.0, -5.0]), gen.uniform(0.0, 0.05, (3, n_arms)),
                             gen.integers(0, 2, n_banks), gen.integers(0, 3, n_banks), needed, n_draws,
                             null_arm=n_arms - 1, rng=rng, **options)


# score_bank ---------------------------------------------------------------------------------------------


@given(bank_cases())
@PROPERTY
def test_score_bank_equals_its_numpy_twin_exactly(case: tuple) -> None:
    inputs, options = case
    npt.assert_array_equal(engine.score_bank(*inputs, **options), reference.score_bank(*inputs, **options))


@given(bank_cases())
@PROPERTY
def test_score_bank_is_minus_inf_where_not_needed_zero_on_null_and_bounded_elsewhere(case: tuple) -> None:
    (alpha, beta, value, cost, bank_cell, bank_cost_row, needed), options = case
    scores = engine.score_bank(alpha, beta, value, cost, bank_cell, bank_cost_row, needed, **options)
    n_banks, n_arms = needed.shape
    assert scores.shape == (n_banks, options["n_draws"], n_arms) and scores.dtype == np.float64
    sampled = needed.copy()
    if options["null_arm"] >= 0:
        npt.assert_array_equal(scores[:, :, options["null_arm"]], 0.0)
        sampled[:, options["null_arm"]] = False
    drawn = np.broadcast_to(sampled[:, None, :], scores.shape)
    is_null = np.arange(n_arms) == options["null_arm"]
    assert np.isneginf(scores[~drawn & ~is_null]).all()
    arm_cost = np.broadcast_to(cost[bank_cost_row][:, None, :], scores.shape)[drawn]
    tol = 1e-9 * (1.0 + np.abs(value).sum() + np.abs(arm_cost))
    assert np.all(scores[drawn] <= np.maximum(value, 0).sum() - arm_cost + tol)
    assert np.all(scores[drawn] >= np.minimum(value, 0).sum() - arm_cost - tol)


def test_score_bank_same_seed_same_scores_other_seed_other_scores() -> None:
    first, again, other = learned_bank(4, rng=11), learned_bank(4, rng=11), learned_bank(4, rng=12)
    npt.assert_array_equal(again, first)
    assert not np.array_equal(other, first)


def test_score_bank_draws_follow_the_posterior() -> None:
    """One Beta(3, 7) arm, value 1, cost 0.1: the mean draw is 0.3 - 0.1 within 5 standard errors."""
    n_draws = 20_000
    scores = engine.score_bank(np.full((1, 1, 1), 3.0), np.full((1, 1, 1), 7.0), np.ones(1), np.full((1, 1), 0.1),
                               np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones((1, 1), np.bool_), n_draws, rng=2)
    tol = SIGMAS * np.sqrt(3 * 7 / (10**2 * 11) / n_draws)
    assert abs(scores.mean() - 0.2) <= tol, f"mean {scores.mean()} vs 0.2, tolerance {tol}"


def beta_draws(a: float, b: float, n: int, seed: int) -> np.ndarray:
    """``n`` Beta(a, b) draws from the engine: one bank of one arm, value 1, no cost, one generator."""
    return engine.score_bank(np.full((1, 1, 1), a), np.full((1, 1, 1), b), np.ones(1), np.zeros((1, 1)),
                             np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones((1, 1), np.bool_), n,
                             rng=seed)[0, :, 0]


@pytest.mark.parametrize(("a", "b"), BETA_CASES)
def test_beta_draws_follow_numpys_beta_in_distribution(a: float, b: float) -> None:
    """Compare the engine's Beta draws with numpy's sampler: the means within 5 standard errors, and the
    whole distributions by a two-sample Kolmogorov-Smirnov test at level 1e-6 (critical distance
    sqrt(ln(2/1e-6)/2) * sqrt(2/n))."""
    n = 20_000
    draws = beta_draws(a, b, n, seed=9)
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
    replays them. Equality is up to the last bits of ``pow``/``log``, whose implementations differ
    between numba and numpy."""
    n, seed = 2000, 21
    gen = engine.chunk_generators(seed, 1)[0]
    replay = np.array([gen.beta(a, b) for _ in range(n)])
    npt.assert_allclose(beta_draws(a, b, n, seed), replay, rtol=1e-9, atol=0)


# bank_probabilities -------------------------------------------------------------------------------------


@given(probability_cases())
@PROPERTY
def test_bank_probabilities_equal_their_numpy_twin_exactly(case: tuple) -> None:
    scores, bank_idx, mask, epsilon = case
    npt.assert_array_equal(engine.bank_probabilities(scores, bank_idx, mask, epsilon),
                           reference.bank_probabilities(scores, bank_idx, mask, epsilon))


@given(probability_cases())
@PROPERTY
def test_bank_probabilities_are_zero_when_masked_floored_when_allowed_and_sum_to_one(case: tuple) -> None:
    scores, bank_idx, mask, epsilon = case
    probs = engine.bank_probabilities(scores, bank_idx, mask, epsilon)
    npt.assert_array_equal(probs[~mask], 0.0)
    floor = np.broadcast_to((epsilon / mask.sum(axis=1))[:, None], mask.shape)
    assert np.all(probs[mask] >= floor[mask]), "an allowed arm fell below epsilon / n_allowed"
    npt.assert_allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-12)


def exact_probabilities(scores: np.ndarray, bank: int, mask_row: np.ndarray, epsilon: Fraction) -> list[Fraction]:
    """The definition in rationals: each draw's unit split equally among the allowed arms at its maximum."""
    allowed = np.flatnonzero(mask_row)
    share = [Fraction(0)] * mask_row.size
    for draw in scores[bank]:
        best = draw[allowed].max()
        tied = [a for a in allowed if draw[a] == best]
        for a in tied:
            share[a] += Fraction(1, len(tied))
    n_draws = scores.shape[1]
    return [(1 - epsilon) * share[a] / n_draws + epsilon / allowed.size if mask_row[a] else Fraction(0)
            for a in range(mask_row.size)]


@given(probability_cases())
@PROPERTY
def test_ties_split_each_draw_equally(case: tuple) -> None:
    """Against the rational definition: every probability is within 1e-15 of the exact fraction."""
    scores, bank_idx, mask, epsilon = case
    probs = engine.bank_probabilities(scores, bank_idx, mask, epsilon)
    for i in range(mask.shape[0]):
        exact = np.array([float(p) for p in exact_probabilities(scores, bank_idx[i], mask[i], Fraction(epsilon))])
        npt.assert_allclose(probs[i], exact, rtol=0, atol=1e-15, err_msg=f"row {i}, tolerance 1e-15")


def test_a_full_tie_is_uniform_over_the_allowed_arms() -> None:
    scores = np.zeros((1, 7, 5))
    mask = np.array([[True, False, True, True, False]])
    npt.assert_array_equal(engine.bank_probabilities(scores, [0], mask, epsilon=0.3), [[1 / 3, 0, 1 / 3, 1 / 3, 0]])


@given(probability_cases())
@PROPERTY
def test_deduplicated_rows_equal_rows_computed_one_by_one(case: tuple) -> None:
    scores, bank_idx, mask, epsilon = case
    one_by_one = np.vstack([engine.bank_probabilities(scores, bank_idx[i : i + 1], mask[i : i + 1], epsilon)
                            for i in range(mask.shape[0])])
    npt.assert_array_equal(engine.bank_probabilities(scores, bank_idx, mask, epsilon, chunk_size=2), one_by_one)


def test_probability_of_a_known_race() -> None:
    """Beta(2, 1) beats Beta(1, 1) with probability 2/3; with ε = 0.1 that is 0.9·2/3 + 0.1/2."""
    n_draws = 100_000
    scores = engine.score_bank(np.array([[[2.0, 1.0]]]), np.ones((1, 1, 2)), np.ones(1), np.zeros((1, 2)),
                               np.zeros(1, np.int64), np.zeros(1, np.int64), np.ones((1, 2), np.bool_), n_draws, rng=4)
    probs = engine.bank_probabilities(scores, [0], np.ones((1, 2), np.bool_), epsilon=0.1)[0]
    exact = np.array([0.9 * 2 / 3 + 0.05, 0.9 / 3 + 0.05])
    tol = SIGMAS * 0.9 * np.sqrt(2 / 9 / n_draws)
    npt.assert_allclose(probs, exact, rtol=0, atol=tol, err_msg=f"tolerance {tol} ({SIGMAS} sigma)")


def test_choosing_from_the_bank_has_exactly_the_logged_propensities() -> None:
    """Decide each row by exploring with probability ε (uniform allowed arm), else argmax of a uniformly
    drawn draw with ties at random: the choice frequencies match ``bank_probabilities`` within 5 sigma."""
    n, epsilon = 40_000, 0.2
    scores = np.round(learned_bank(1, n_arms=6, n_draws=16, needed_share=1.0), 2)  # rounded: some draws tie
    mask_row = np.array([True, True, False, True, True, True])
    probs = engine.bank_probabilities(scores, [0], mask_row[None], epsilon, null_arm=5)[0]
    gen = np.random.default_rng(3)
    draws = np.where(mask_row, scores[0], -np.inf)[gen.integers(0, 16, n)]
    ties = draws == draws.max(axis=1, keepdims=True)
    greedy = np.where(ties, gen.random(ties.shape), -1.0).argmax(axis=1)
    explore = np.flatnonzero(mask_row)[gen.integers(0, mask_row.sum(), n)]
    chosen = np.where(gen.random(n) < epsilon, explore, greedy)
    assert_matches(np.bincount(chosen, minlength=6) / n, n, probs, "bank choice vs bank_probabilities")


@pytest.mark.usefixtures("restore_threads")
def test_results_do_not_depend_on_the_number_of_threads() -> None:
    results = []
    for n_threads in (1, 2):
        engine.set_num_threads(n_threads)
        scores = learned_bank(9, n_draws=40, rng=3, chunk_size=2)
        mask = np.random.default_rng(1).random((300, 12)) < 0.6
        mask[:, -1] = True
        bank_idx = np.arange(300) % 9
        mask &= (scores[bank_idx, 0] > -np.inf)  # only arms the banks sampled
        results.append((scores, engine.bank_probabilities(scores, bank_idx, mask, 0.05, 11, chunk_size=7)))
    npt.assert_array_equal(results[1][0], results[0][0])
    npt.assert_array_equal(results[1][1], results[0][1])


def test_a_row_allowing_an_arm_its_bank_did_not_sample_is_rejected() -> None:
    scores = np.zeros((2, 3, 3))
    scores[1, :, 2] = -np.inf  # bank 1 was not asked for arm 2
    mask = np.array([[True, True, True], [True, False, False], [False, True, True]])
    msg = ("`mask` row 2 allows arm 2, which bank 1 did not sample (its scores are -inf); 1 rows do so. "
           "Build each bank's `needed` as the union of the masks of its rows")
    with pytest.raises(ValueError, match=re.escape(msg)):
        engine.bank_probabilities(scores, [0, 1, 1], mask)


# draw_from ----------------------------------------------------------------------------------------------


def assert_matches(freq: np.ndarray, n: int, probs: np.ndarray, what: str) -> None:
    """Frequencies of ``n`` draws agree with exact probabilities within SIGMAS binomial standard errors."""
    tol = SIGMAS * np.sqrt(probs * (1 - probs) / n) + 1e-12
    bad = np.abs(freq - probs) > tol
    assert not bad.any(), (f"{what}: arms {np.flatnonzero(bad)} differ by more than {SIGMAS} sigma: "
                           f"got {freq[bad]}, want {probs[bad]}, tolerance {tol[bad]}")


@st.composite
def draw_cases(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Rows with zeros (often at the end) normalised in floating point, and uniforms up to 1 - 2**-53."""
    n_rows, n_arms = draw(st.integers(1, 20)), draw(st.integers(1, 8))
    weights = draw(arrays(np.float64, (n_rows, n_arms), elements=st.one_of(st.just(0.0), st.floats(1e-3, 1.0))))
    weights[np.arange(n_rows), draw(arrays(np.int64, n_rows, elements=st.integers(0, n_arms - 1)))] += 0.5
    uniforms = draw(arrays(np.float64, n_rows, elements=st.one_of(
        st.floats(0.0, 1.0, exclude_max=True), st.sampled_from([0.0, 1 - 2**-53, 1 - 1e-12]))))
    return weights / weights.sum(axis=1, keepdims=True), uniforms


@given(draw_cases())
@PROPERTY
def test_draw_from_is_the_inverse_cdf_and_never_returns_a_zero_probability_arm(case: tuple) -> None:
    probs, uniforms = case
    arms = engine.draw_from(probs, uniforms)
    assert arms.dtype == np.int64
    rows = np.arange(probs.shape[0])
    assert np.all(probs[rows, arms] > 0), f"zero-probability arms drawn in rows {rows[probs[rows, arms] == 0]}"
    for i in rows:
        cdf = np.cumsum(probs[i])
        first = int(np.searchsorted(cdf, uniforms[i], side="right"))
        assert arms[i] == (first if first < probs.shape[1] else np.flatnonzero(probs[i])[-1]), f"row {i}"


def test_draw_from_guards_the_top_end_against_round_off() -> None:
    probs = np.array([[0.3, 0.7 - 1e-12, 0.0, 0.0]])  # sums to 1 - 1e-12 < the uniform
    npt.assert_array_equal(engine.draw_from(probs, [1 - 1e-13]), [1])


def test_draw_from_frequencies_match_the_probabilities() -> None:
    n = 200_000
    probs = np.array([0.05, 0.0, 0.25, 0.4, 0.0, 0.3 - 1e-13])
    arms = engine.draw_from(np.broadcast_to(probs, (n, 6)), np.random.default_rng(12).random(n))
    freq = np.bincount(arms, minlength=6) / n
    assert freq[1] == freq[4] == 0.0
    assert_matches(freq, n, probs, "draw_from")


# errors -------------------------------------------------------------------------------------------------


def valid_arguments(wrapper: str) -> tuple[Callable, dict]:
    """A public wrapper and a set of arguments it accepts; each table row spoils one of them."""
    bank = {"alpha": np.ones((2, 1, 3)), "beta": np.ones((2, 1, 3)), "value": np.ones(1), "cost": np.zeros((1, 3)),
            "bank_cell": [0, 1], "bank_cost_row": [0, 0], "needed": np.ones((2, 3), np.bool_), "n_draws": 4}
    probabilities = {"scores": np.zeros((2, 4, 3)), "bank_idx": [0, 1, 1], "mask": np.ones((3, 3), np.bool_),
                     "epsilon": 0.1}
    draw = {"probs": [[0.5, 0.5], [1.0, 0.0]], "uniforms": [0.1, 0.9]}
    calls = {"score_bank": (engine.score_bank, bank), "bank_probabilities": (engine.bank_probabilities, probabilities),
             "draw_from": (engine.draw_from, draw)}
    return calls[wrapper]


SCORES_NAN = np.zeros((2, 4, 3))
SCORES_NAN[1, 0, 2] = np.nan
SCORES_NULL = np.zeros((2, 4, 3))
SCORES_NULL[1, 2, 2] = 0.5

INVALID = [
    ("score_bank", {"alpha": np.ones((2, 3))}, ValueError,
     "`alpha` must have shape (n_cells, n_outcomes, n_arms); got (2, 3)", "alpha-2d"),
    ("score_bank", {"beta": np.zeros((2, 1, 3))}, ValueError,
     "`beta` must be > 0; 6 of 6 values are not (first at flat index 0: 0.0)", "beta-zero"),
    ("score_bank", {"value": np.ones(2)}, ValueError, "`value` must have shape (1,); got (2,)", "value-length"),
    ("score_bank", {"cost": np.zeros((1, 4))}, ValueError, "`cost` must have shape (n_cost_rows, 3); got (1, 4)",
     "cost-arms"),
    ("score_bank", {"bank_cell": [0, 2]}, ValueError,
     "`bank_cell` must lie in [0, 2); 1 of 2 values do not (first: bank_cell[1] = 2)", "bank-cell-range"),
    ("score_bank", {"bank_cost_row": [0, -1]}, ValueError,
     "`bank_cost_row` must lie in [0, 1); 1 of 2 values do not (first: bank_cost_row[1] = -1)", "cost-row-range"),
    ("score_bank", {"bank_cost_row": [0]}, ValueError,
     "arrays must share their first dimension; got bank_cell=2, bank_cost_row=1", "bank-lengths"),
    ("score_bank", {"bank_cell": [0.0, 1.0]}, TypeError, "`bank_cell` must be an integer array; got dtype float64",
     "bank-cell-float"),
    ("score_bank", {"needed": np.ones((2, 3), np.int64)}, TypeError, "`needed` must be a bool array; got dtype int64",
     "needed-int"),
    ("score_bank", {"needed": np.ones((3, 3), np.bool_)}, ValueError, "`needed` must have shape (2, 3); got (3, 3)",
     "needed-banks"),
    ("score_bank", {"n_draws": 0}, ValueError, "`n_draws` must be >= 1; got 0", "n-draws-zero"),
    ("score_bank", {"n_draws": 2.0}, TypeError, "`n_draws` must be an integer; got 2.0", "n-draws-float"),
    ("score_bank", {"null_arm": 3}, ValueError, "`null_arm` must be -1 or lie in [0, 3); got 3", "null-arm-range"),
    ("score_bank", {"chunk_size": 0}, ValueError, "`chunk_size` must be >= 1; got 0", "chunk-size-zero"),
    ("score_bank", {"rng": -1}, ValueError,
     "`rng` must be None, an int seed >= 0 or a numpy.random.Generator; got -1", "rng-negative"),
    ("bank_probabilities", {"scores": np.zeros((2, 4, 3), np.float32)}, TypeError,
     "`scores` must be a float64 array (as score_bank returns); got dtype float32", "scores-float32"),
    ("bank_probabilities", {"scores": np.zeros((2, 3))}, ValueError,
     "`scores` must have shape (n_banks, n_draws >= 1, n_arms); got (2, 3)", "scores-2d"),
    ("bank_probabilities", {"scores": np.zeros((2, 0, 3))}, ValueError,
     "`scores` must have shape (n_banks, n_draws >= 1, n_arms); got (2, 0, 3)", "scores-no-draws"),
    ("bank_probabilities", {"scores": SCORES_NAN}, ValueError,
     "`scores` must be finite or -inf; 1 of 24 values are not (first at flat index 14: nan)", "scores-nan"),
    ("bank_probabilities", {"scores": np.full((2, 4, 3), np.inf)}, ValueError,
     "`scores` must be finite or -inf; 24 of 24 values are not (first at flat index 0: inf)", "scores-inf"),
    ("bank_probabilities", {"scores": SCORES_NULL, "null_arm": 2}, ValueError,
     "`scores` must be exactly 0 on `null_arm` 2, as score_bank gives; 1 banks are not (first: bank 1)",
     "scores-null-arm"),
    ("bank_probabilities", {"null_arm": -2}, ValueError, "`null_arm` must be -1 or lie in [0, 3); got -2",
     "null-arm-range"),
    ("bank_probabilities", {"bank_idx": [0, 2, 1]}, ValueError,
     "`bank_idx` must lie in [0, 2); 1 of 3 values do not (first: bank_idx[1] = 2)", "bank-idx-range"),
    ("bank_probabilities", {"bank_idx": [0, 1]}, ValueError,
     "arrays must share their first dimension; got bank_idx=2, mask=3", "bank-idx-length"),
    ("bank_probabilities", {"mask": np.ones((3, 3), np.int64)}, TypeError,
     "`mask` must be a bool array; got dtype int64", "mask-int"),
    ("bank_probabilities", {"mask": np.ones(3, np.bool_)}, ValueError,
     "`mask` must have shape (n_rows, 3); got (3,)", "mask-1d"),
    ("bank_probabilities", {"mask": np.ones((3, 4), np.bool_)}, ValueError,
     "`mask` must have shape (3, 3); got (3, 4)", "mask-arms"),
    ("bank_probabilities", {"mask": np.array([[True] * 3, [True] * 3, [False] * 3])}, ValueError,
     "`mask` must allow at least one arm per row; 1 rows allow none (first: row 2)", "mask-empty-row"),
    ("bank_probabilities", {"epsilon": 1.5}, ValueError, "`epsilon` must lie in [0, 1]; got 1.5", "epsilon-above"),
    ("bank_probabilities", {"epsilon": -0.1}, ValueError, "`epsilon` must lie in [0, 1]; got -0.1", "epsilon-below"),
    ("bank_probabilities", {"epsilon": "0.1"}, TypeError, "`epsilon` must be a real number; got '0.1'",
     "epsilon-str"),
    ("bank_probabilities", {"chunk_size": 0}, ValueError, "`chunk_size` must be >= 1; got 0", "chunk-size-zero"),
    ("draw_from", {"probs": [0.5, 0.5]}, ValueError, "`probs` must have 2 dimension(s); got shape (2,)", "probs-1d"),
    ("draw_from", {"probs": [[0.5, 0.5], [1.5, -0.5]]}, ValueError,
     "`probs` must be >= 0; 1 of 4 values are not (first at flat index 3: -0.5)", "probs-negative"),
    ("draw_from", {"probs": [[0.5, 0.5], [np.nan, 1.0]]}, ValueError,
     "`probs` must be finite; 1 of 4 values are not (first at flat index 2: nan)", "probs-nan"),
    ("draw_from", {"probs": [[0.5, 0.4], [1.0, 0.0]]}, ValueError,
     "`probs` rows must sum to 1 (within 1e-09); 1 rows do not (first: row 0 sums to 0.9)", "probs-sum"),
    ("draw_from", {"uniforms": [0.1, 1.0]}, ValueError,
     "`uniforms` must lie in [0, 1); 1 of 2 values do not (first: uniforms[1] = 1.0)", "uniforms-one"),
    ("draw_from", {"uniforms": [0.1]}, ValueError,
     "arrays must share their first dimension; got probs=2, uniforms=1", "uniforms-length"),
    ("draw_from", {"uniforms": [True, False]}, TypeError, "`uniforms` must be a numeric array; got dtype bool",
     "uniforms-bool"),
]


@pytest.mark.parametrize(("wrapper", "spoiled", "err", "msg"), [row[:4] for row in INVALID],
                         ids=[f"{row[0]}-{row[4]}" for row in INVALID])
def test_wrappers_reject_bad_input_with_exact_messages(wrapper: str, spoiled: dict, err: type, msg: str) -> None:
    fn, kwargs = valid_arguments(wrapper)
    fn(**kwargs)  # the unspoiled arguments are accepted
    with pytest.raises(err, match=f"^{re.escape(msg)}$"):
        fn(**(kwargs | spoiled))


@st.composite
def scaled_cases(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Rate draws of ``rate_bank``, economics, rows with their banks, cost rows, factors and masks."""
    n_cells, n_outcomes, n_arms = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(2, 7))
    n_banks, n_rows = draw(st.integers(1, 4)), draw(st.integers(1, 8))
    shape = (n_cells, n_outcomes, n_arms)
    alpha, beta = (draw(arrays(np.float64, shape, elements=BETA_PARAM)) for _ in range(2))
    null_arm = n_arms - 1
    rates = engine.rate_bank(alpha, beta, draw(arrays(np.int64, n_banks, elements=st.integers(0, n_cells - 1))),
                             np.ones((n_banks, n_arms), np.bool_), draw(st.integers(1, 10)),
                             np.arange(n_outcomes), null_arm, draw(st.integers(0, 2**32)))
    value = draw(arrays(np.float64, n_outcomes, elements=st.floats(-5.0, 5.0)))
    cost = draw(arrays(np.float64, (2, n_arms), elements=st.floats(0.0, 1.0)))
    cost[:, null_arm] = 0.0
    bank_idx = draw(arrays(np.int64, n_rows, elements=st.integers(0, n_banks - 1)))
    cost_row_idx = draw(arrays(np.int64, n_rows, elements=st.integers(0, 1)))
    n_channels = draw(st.integers(1, 3))
    factor = draw(arrays(np.float64, (n_rows, n_outcomes, n_channels), elements=st.floats(0.05, 20.0)))
    arm_channel = draw(arrays(np.int64, n_arms, elements=st.integers(0, n_channels - 1)))
    arm_channel[null_arm] = -1
    return (rates, value, cost, cost_row_idx, bank_idx, factor, arm_channel,
            allowing_one_per_row(draw, n_rows, n_arms))


@PROPERTY
@given(scaled_cases(), EPSILONS)
def test_scaled_bank_probabilities_match_their_twin_and_sum_to_one(case: tuple, epsilon: float) -> None:
    probs = engine.scaled_bank_probabilities(*case, epsilon, chunk_size=3)
    npt.assert_allclose(probs, reference.scaled_bank_probabilities(*case, epsilon), rtol=0, atol=1e-12)
    npt.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(probs[~case[-1]] == 0.0)


@PROPERTY
@given(scaled_cases())
def test_unit_factors_give_the_bank_probabilities_of_the_net_values(case: tuple) -> None:
    rates, value, cost, cost_row_idx, bank_idx, factor, arm_channel, mask = case
    unit = np.ones_like(factor)
    rows = np.arange(bank_idx.size)  # one bank of net-value draws per row: its own cost row
    net = np.einsum("o,rmoa->rma", value, rates[bank_idx]) - cost[cost_row_idx][:, None, :]
    net[:, :, -1] = 0.0
    expected = engine.bank_probabilities(net, rows, mask, epsilon=0.0, null_arm=mask.shape[1] - 1)
    got = engine.scaled_bank_probabilities(rates, value, cost, cost_row_idx, bank_idx, unit, arm_channel, mask, 0.0)
    npt.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_a_larger_factor_on_an_arm_never_lowers_its_probability() -> None:
    rng = np.random.default_rng(5)
    alpha, beta = rng.uniform(1, 30, (2, 1, 6)), rng.uniform(50, 300, (2, 1, 6))
    rates = engine.rate_bank(alpha, beta, [0, 1], np.ones((2, 6), np.bool_), 200, [0], null_arm=5, rng=1)
    factor = np.ones((2, 1, 5))  # one channel per arm but the no-message one
    mask, arm_channel = np.ones((2, 6), np.bool_), np.array([0, 1, 2, 3, 4, -1])
    args = (np.array([1.0]), np.full((1, 6), 0.01), np.zeros(2, np.int64), np.array([0, 1]))
    before = engine.scaled_bank_probabilities(rates, *args, factor, arm_channel, mask, 0.0)
    factor[0, 0, 2] = 3.0
    after = engine.scaled_bank_probabilities(rates, *args, factor, arm_channel, mask, 0.0)
    assert after[0, 2] >= before[0, 2] and after[0, 2] > 0.5
    npt.assert_array_equal(after[1], before[1])  # another row's choice does not move


def test_rate_bank_matches_its_twin_and_draws_rates_of_each_outcome() -> None:
    rng = np.random.default_rng(2)
    alpha, beta = rng.uniform(0.5, 4, (3, 2, 5)), rng.uniform(0.5, 4, (3, 2, 5))
    needed = rng.random((4, 5)) < 0.7
    args = (alpha, beta, np.array([0, 2, 1, 0]), needed, 6, np.array([1, 0]), 4, 9)
    rates = engine.rate_bank(*args)
    npt.assert_array_equal(rates, reference.rate_bank(*args))
    assert rates.shape == (4, 6, 2, 5)
    sampled = needed.copy()
    sampled[:, 4] = False
    assert np.all((rates[:, :, :, :4] >= 0) | ~sampled[:, None, None, :4])
    assert np.all(np.isneginf(rates).all(axis=(1, 2)) == (~needed & (np.arange(5) != 4)))
    assert np.all(rates[:, :, :, 4] == 0.0)


def test_scaled_bank_probabilities_name_a_bad_factor() -> None:
    rates = engine.rate_bank(np.ones((1, 1, 3)), np.ones((1, 1, 3)), [0], np.ones((1, 3), np.bool_), 2, [0], 2, 0)
    with pytest.raises(ValueError, match="`factor`"):
        engine.scaled_bank_probabilities(rates, [1.0], np.zeros((1, 3)), [0], [0], np.zeros((1, 1, 2)),
                                         [0, 1, -1], np.ones((1, 3), np.bool_))
