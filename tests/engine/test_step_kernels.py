"""The per-step loop (bernoulli_steps): it learns, keeps its books, and behaves like its numpy twin."""

import numpy as np
import numpy.testing as npt

from sendwise import engine
from sendwise.engine import reference

RATES = np.linspace(0.02, 0.20, 8)[None, :]  # one cell, 8 arms, the best one clearly better


def run(n_steps: int, seed: int, twin: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Arms chosen, final alpha and beta, and the reward uniforms of one run from Beta(1, 1)."""
    uniforms = np.random.default_rng(1000 + seed).random(n_steps)
    alpha, beta = np.ones((1, 1, RATES.shape[1])), np.ones((1, 1, RATES.shape[1]))
    cells = np.zeros(n_steps, np.int64)
    arms = (reference if twin else engine).bernoulli_steps(alpha, beta, cells, uniforms, RATES, rng=seed)
    return arms, alpha, beta, uniforms


def regret(arms: np.ndarray) -> float:
    return float(np.sum(RATES.max() - RATES[0, arms]))


def test_thompson_steps_learn() -> None:
    """After 4,000 steps the pseudo-regret is well below that of choosing at random."""
    n_steps = 4000
    arms = run(n_steps, seed=0)[0]
    random_regret = n_steps * (RATES.max() - RATES.mean())
    assert regret(arms) < 0.25 * random_regret, f"regret {regret(arms):.1f} vs random {random_regret:.1f}"
    assert np.mean(arms[-1000:] == RATES.argmax()) > 0.5


def test_every_step_adds_one_observation_to_the_arm_it_chose() -> None:
    arms, alpha, beta, uniforms = run(3000, seed=1)
    rewarded = uniforms < RATES[0, arms]
    npt.assert_array_equal(alpha[0, 0] - 1, np.bincount(arms[rewarded], minlength=RATES.shape[1]))
    npt.assert_array_equal(beta[0, 0] - 1, np.bincount(arms[~rewarded], minlength=RATES.shape[1]))


def test_only_the_cells_in_the_stream_learn() -> None:
    rates = np.array([[0.1, 0.5], [0.5, 0.1], [0.3, 0.3]])
    alpha, beta = np.ones((3, 2, 2)), np.ones((3, 2, 2))
    cells = np.array([0, 2, 0, 2, 0] * 100)
    engine.bernoulli_steps(alpha, beta, cells, np.random.default_rng(2).random(cells.size), rates, rng=2)
    npt.assert_array_equal(alpha[1], 1.0)
    npt.assert_array_equal(beta[1], 1.0)
    npt.assert_array_equal(alpha[:, 1], 1.0)  # only outcome 0 is learned
    npt.assert_array_equal((alpha + beta - 2)[:, 0].sum(axis=1), [300, 0, 200])


def test_same_seed_gives_the_same_run() -> None:
    npt.assert_array_equal(run(500, seed=3)[0], run(500, seed=3)[0])


def test_steps_match_the_numpy_twin_in_distribution() -> None:
    """Mean pseudo-regret and share of best-arm pulls over 20 runs of 600 steps, engine vs twin.

    Each run is one sample; the tolerance is 5 standard errors of the difference of the two means,
    estimated from the runs themselves (t with 38 degrees of freedom: a false failure below 1e-4).
    """
    n_runs, n_steps = 20, 600
    stats = {}
    for twin in (False, True):
        runs = [run(n_steps, seed=100 + r, twin=twin)[0] for r in range(n_runs)]
        stats[twin] = np.array([[regret(arms), np.mean(arms == RATES.argmax())] for arms in runs])
    diff = stats[False].mean(axis=0) - stats[True].mean(axis=0)
    tol = 5 * np.sqrt((stats[False].var(axis=0, ddof=1) + stats[True].var(axis=0, ddof=1)) / n_runs)
    assert np.all(np.abs(diff) <= tol), f"engine - twin (regret, best share) = {diff}, tolerance {tol}"


def test_steps_finish_on_tiny_posteriors() -> None:
    """Beta(1e-12, 1e-12) is almost surely 0 or 1; numba's own Beta sampler never returned on it."""
    alpha, beta = np.full((1, 1, 4), 1e-12), np.full((1, 1, 4), 1e-12)
    arms = engine.bernoulli_steps(alpha, beta, np.zeros(50, np.int64), np.full(50, 0.5), np.full((1, 4), 0.5), rng=0)
    assert arms.min() >= 0 and arms.max() < 4
    npt.assert_allclose((alpha + beta).sum(), 50 + 8e-12)
