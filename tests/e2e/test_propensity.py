"""B5: propensity logging. Every decision row carries what off-policy evaluation needs, and it is right.

Rows: model version, seed, a propensity in (0, 1] and at least the exploration floor ε/|allowed|,
where |allowed| is counted from what the response says the guardrails removed.

Calibration: with the posterior frozen (no feedback), ``N_DECISIONS`` decisions for one customer
context (distinct customers, so caps never interfere) are drawn. Each arm is sampled from the very
probability vector whose entry is logged, so the mean of (uniform-target probability / logged
propensity) over the decisions must be 1 up to its standard error (off-policy evaluation's own check).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from tests.support.api import decide, seed_customer
from tests.support.app import app_client
from tests.support.fold import query

N_DECISIONS = 10_000
BATCH = 1_000
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
    with app_client(state) as client:
        epsilon = client.app.state.service.model.policy.epsilon
        decisions = []
        for start in range(0, N_DECISIONS, BATCH):
            batch = [seed_customer(f"p{i}", region="NA", timezone="America/New_York", channels=channels)
                     for i in range(start, start + BATCH)]
            decisions += decide(client, *batch)

    rows = query(state, "SELECT decision_id, model_version, propensity, seed, support, epsilon FROM decisions")
    assert len(rows) == N_DECISIONS
    by_id = {d["decision_id"]: d for d in decisions}
    weights = []
    for decision_id, model_version, propensity, seed, support, logged_epsilon in rows:
        n_allowed = allowed_arms(by_id[decision_id], channels)
        floor = epsilon / n_allowed
        assert model_version and seed is not None, f"decision {decision_id} lacks a model version or seed"
        assert floor <= propensity <= 1.0, f"decision {decision_id}: propensity {propensity} outside [{floor}, 1]"
        assert propensity == by_id[decision_id]["propensity"], "logged and returned propensities differ"
        assert support == n_allowed and logged_epsilon == epsilon, "support and epsilon are logged as used"
        weights.append((1.0 / n_allowed) / propensity)
    # E[uniform(A) / p(A)] = sum over allowed a of p(a) (1/|allowed|) / p(a) = 1 when p is the true probability
    # of what was done. Monte-Carlo estimates of p (the old way) gave 3.9 here; test at 5 standard errors.
    weights = np.array(weights)
    standard_error = weights.std(ddof=1) / np.sqrt(weights.size)
    assert abs(weights.mean() - 1.0) < 5 * standard_error + 1e-9, \
        f"mean uniform-target weight {weights.mean():.3f} ± {standard_error:.3f}: logged propensities are off"
