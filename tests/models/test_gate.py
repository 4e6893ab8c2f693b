"""The promotion gate on its own, without a registry: a candidate passes when its lower bound beats the
champion's estimate on the same logs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sendwise.models import Catalog, LoggedFeedback, ThompsonPolicy, write_logs
from sendwise.models.ope import IPS, GateResult, gate

CATALOG = Catalog(regions=("NA", "EU"), industries=("ecommerce", "gaming"))
GOOD_ARM, BAD_ARM = CATALOG.arm("email", 14), CATALOG.arm("sms", 3)


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Email at 14 logged 10% of the time (enough for a tight interval), the other arms evenly; email at
    14 is clicked 90% of the time, every other arm 10%."""
    rng = np.random.default_rng(3)
    n_rounds = 3000
    logging = np.full(CATALOG.n_arms, 0.9 / (CATALOG.n_arms - 1))
    logging[GOOD_ARM] = 0.1
    action = rng.choice(CATALOG.n_arms, n_rounds, p=logging)
    click = (rng.random(n_rounds) < np.where(action == GOOD_ARM, 0.9, 0.1)).astype(float)
    context = pd.DataFrame({"region": rng.choice(CATALOG.regions, n_rounds),
                            "industry": rng.choice(CATALOG.industries, n_rounds), "campaign_type": "broadcast"})
    log = LoggedFeedback(action=action, propensity=logging[action], reward=click, context=context,
                         outcomes=pd.DataFrame({"click": click}), catalog=CATALOG)
    return write_logs(log, tmp_path_factory.mktemp("gate") / "uniform.parquet")


def preferring(arm: int) -> ThompsonPolicy:
    policy = ThompsonPolicy(CATALOG, np.array([1.0, 0.0]), np.zeros((2, CATALOG.n_arms)), random_state=0)
    policy.beta_[:, 0, :] += 50.0
    policy.alpha_[:, 0, arm] += 200.0
    return policy


def test_a_better_candidate_passes_and_a_worse_one_fails(logs: Path) -> None:
    good, bad = preferring(GOOD_ARM), preferring(BAD_ARM)
    passed = gate(good, bad, logs, n_draws=100, n_bootstrap=200)
    assert passed.passed and passed.estimator == "snips" and passed.logs == "uniform.parquet"
    assert passed.candidate[1] > passed.champion[0]
    failed = gate(bad, good, logs, n_draws=100, n_bootstrap=200)
    assert not failed.passed
    assert failed.describe("version 2", "version 1").startswith("snips on uniform.parquet: version 2 lower 95% bound ")
    assert " <= version 1 estimate " in failed.describe("version 2", "version 1")


def test_without_a_champion_the_candidate_passes(logs: Path) -> None:
    result = gate(preferring(BAD_ARM), None, logs, estimator=IPS(clip=50), n_draws=100, n_bootstrap=50)
    assert (result.passed, result.champion, result.estimator) == (True, None, "ips(clip=50)")
    assert result.describe() == "there is no champion; candidate passes"


def test_a_spec_and_the_object_it_names_give_the_same_answer(logs: Path) -> None:
    good, bad = preferring(GOOD_ARM), preferring(BAD_ARM)
    by_spec = gate(good, bad, logs, estimator="ips(clip=50)", n_draws=100, n_bootstrap=50, seed=4)
    assert by_spec == gate(good, bad, logs, estimator=IPS(clip=50), n_draws=100, n_bootstrap=50, seed=4)


@pytest.mark.parametrize("candidate, champion, passed", [
    pytest.param((0.3, 0.21, 0.4), (0.2, 0.1, 0.3), True, id="lower-bound-above"),
    pytest.param((0.3, 0.2, 0.4), (0.2, 0.1, 0.3), False, id="lower-bound-equal"),
    pytest.param((0.3, 0.15, 0.4), (0.2, 0.1, 0.3), False, id="better-estimate-only"),
])
def test_the_lower_bound_must_beat_the_champion_estimate(candidate: tuple[float, float, float],
                                                        champion: tuple[float, float, float], passed: bool) -> None:
    assert GateResult("snips", "logs.csv", candidate, champion).passed is passed
