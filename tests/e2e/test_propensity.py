"""B5: propensity logging. Every decision row carries what off-policy evaluation needs, and it is right.

Rows: model version, seed, a propensity in (0, 1] and at least the exploration floor ε/|allowed|,
where |allowed| is counted from what the response says the guardrails removed.

Calibration: with the posterior frozen (no feedback), ``N_DECISIONS`` decisions for one customer
context (distinct customers, so caps never interfere) are drawn and their arm frequencies compared with
the logged propensities by a chi-square test. The logged propensity is itself a Monte-Carlo estimate
from ``M`` draws, which inflates the statistic by about ``1 + N/M``; it is divided out. The test fails
when the corrected p-value is below 1e-4, so a correct server fails it about once in 10,000 runs.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from e2e_helpers import app_client, customer, decide, query
from scipy import stats

N_DECISIONS = 10_000
BATCH = 1_000
PROPENSITY_DRAWS = 100_000
P_VALUE_FLOOR = 1e-4
N_HOURS = 24


def allowed_arms(decision: dict[str, Any], channels: list[str]) -> int:
    """Arms the request allowed: every hour of each channel minus the hours a guardrail removed, plus no message."""
    removed: dict[str, set[int]] = defaultdict(set)
    for guardrail in decision["reason"]["guardrails"]:
        for channel in [guardrail["channel"]] if guardrail["channel"] else channels:
            removed[channel] |= set(guardrail["hours"])
    return sum(N_HOURS - len(removed[channel]) for channel in channels) + 1


def test_logged_propensities_are_complete_floored_and_calibrated(tmp_path: Path) -> None:
    channels = ["email", "push", "sms"]  # sms has quiet hours in NA, so |allowed| is not trivial
    state = tmp_path / "state"
    with app_client(state, propensity_draws=PROPENSITY_DRAWS) as client:
        epsilon = client.app.state.service.model.policy.epsilon
        decisions = []
        for start in range(0, N_DECISIONS, BATCH):
            batch = [customer(f"p{i}", region="NA", timezone="America/New_York", channels=channels)
                     for i in range(start, start + BATCH)]
            decisions += decide(client, batch)[0]

    rows = query(state, "SELECT decision_id, model_version, propensity, seed FROM decisions")
    assert len(rows) == N_DECISIONS
    by_id = {d["decision_id"]: d for d in decisions}
    for decision_id, model_version, propensity, seed in rows:
        floor = epsilon / allowed_arms(by_id[decision_id], channels)
        assert model_version and seed is not None, f"decision {decision_id} lacks a model version or seed"
        assert floor <= propensity <= 1.0, f"decision {decision_id}: propensity {propensity} outside [{floor}, 1]"
        assert propensity == by_id[decision_id]["propensity"], "logged and returned propensities differ"

    counts: dict[tuple[str, int | None], int] = defaultdict(int)
    logged: dict[tuple[str, int | None], set[float]] = defaultdict(set)
    for decision in decisions:
        arm = (decision["channel"], decision["local_hour"])
        counts[arm] += 1
        logged[arm].add(decision["propensity"])
    assert all(len(p) == 1 for p in logged.values()), "one context, frozen posterior: one propensity per arm"
    observed = np.array([counts[arm] for arm in counts], dtype=float)
    expected = N_DECISIONS * np.array([logged[arm].pop() for arm in counts])
    # Arms expected fewer than 5 times, and the never-chosen rest, share one bin (chi-square needs >= 5).
    small = expected < 5
    rest = N_DECISIONS - expected[~small].sum()
    observed, expected = np.append(observed[~small], observed[small].sum()), np.append(expected[~small], rest)
    correction = 1 + N_DECISIONS / PROPENSITY_DRAWS
    statistic = float(((observed - expected) ** 2 / np.maximum(expected, 1e-9)).sum() / correction)
    p_value = stats.chi2.sf(statistic, df=len(observed) - 1)
    worst = np.argsort(-np.abs(observed - expected))[:3]
    assert p_value > P_VALUE_FLOOR, (
        f"arm frequencies do not match logged propensities: chi2={statistic:.1f}, df={len(observed) - 1}, "
        f"p={p_value:.2e} <= {P_VALUE_FLOOR}; worst bins observed={observed[worst]}, expected={expected[worst]}")
