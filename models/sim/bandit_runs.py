"""Reference Bernoulli bandit runs over the engine: the context-free and contextual learning checks.

The contextual reference case follows the peers' benchmark: 16 segments × 168 arms with true rates
``default_rng(1000).uniform(0.01, 0.10, (16, 168))``, segment stream ``default_rng(20000 + run)`` and
reward ``U[t] < P[s_t, a_t]`` with ``U = default_rng(10000 + run).random(n)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from sendwise import engine

REFERENCE_SEGMENTS = 16
REFERENCE_ARMS = 168


@dataclass(frozen=True)
class BanditRun:
    """What one run produced: pseudo-regret, realised reward and speed."""

    policy: str
    n_steps: int
    regret: float
    reward: float
    decisions_per_s: float
    arms: np.ndarray


def reference_rates(n_segments: int = REFERENCE_SEGMENTS, n_arms: int = REFERENCE_ARMS) -> np.ndarray:
    """True click rates of the contextual reference case, float64 (n_segments, n_arms)."""
    seed = 1000 if n_segments > 1 else 0
    return np.random.default_rng(seed).uniform(0.01, 0.10, (n_segments, n_arms))


def reference_streams(n_steps: int, run: int, n_segments: int) -> tuple[np.ndarray, np.ndarray]:
    """Segment stream and reward uniforms of run ``run`` (common random numbers across policies)."""
    uniforms = np.random.default_rng(10_000 + run).random(n_steps)
    segments = np.random.default_rng(20_000 + run).integers(0, n_segments, n_steps).astype(np.int64)
    return segments, uniforms


def pseudo_regret(rates: np.ndarray, segments: np.ndarray, arms: np.ndarray) -> float:
    """Σ_t max_a P[s_t, a] − P[s_t, a_t]."""
    return float(np.sum(rates.max(axis=1)[segments] - rates[segments, arms]))


def run_bandit(policy: str, rates: np.ndarray, n_steps: int, run: int = 0, seed: int = 0) -> BanditRun:
    """Run ``policy`` ("ts": per-segment Beta(1,1) Thompson sampling, or "random") on the reference streams."""
    n_segments, n_arms = rates.shape
    segments, uniforms = reference_streams(n_steps, run, n_segments)
    start = time.perf_counter()
    if policy == "ts":
        alpha, beta = np.ones((n_segments, 1, n_arms)), np.ones((n_segments, 1, n_arms))
        arms = engine.bernoulli_steps(alpha, beta, segments, uniforms, rates, rng=seed)
    elif policy == "random":
        arms = np.random.default_rng(seed).integers(0, n_arms, n_steps)
    else:
        raise ValueError(f"unknown bandit policy {policy!r}; known: ts, random")
    elapsed = time.perf_counter() - start
    reward = float(np.sum(uniforms < rates[segments, arms]))
    return BanditRun(policy, n_steps, pseudo_regret(rates, segments, arms), reward,
                     n_steps / max(elapsed, 1e-9), arms)
