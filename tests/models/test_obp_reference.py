"""sendwise's estimators give Open Bandit Pipeline's numbers on the Open Bandit Dataset sample.

OBP's estimates are committed in ``tests/data/obp_reference.json``, written by
``benchmarks/obp_reference.py`` in a virtual environment with OBP (its docstring says how); this test
rebuilds the same target and reward model with that script's ``reference_inputs``, checks the inputs'
checksum, and compares every estimate to a relative tolerance of 1e-9.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from sendwise.models.ope import ESTIMATORS, load_obd, parse_estimator

REPO = Path(__file__).resolve().parents[2]
REFERENCE = json.loads((REPO / "tests" / "data" / "obp_reference.json").read_text())
RELATIVE_TOLERANCE = 1e-9


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("obp_reference", REPO / "benchmarks" / "obp_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()


@pytest.fixture(scope="module")
def rounds() -> tuple[np.ndarray, ...]:
    log = load_obd()
    target_probs, q_hat = SCRIPT.reference_inputs(log.context["position"].to_numpy(),
                                                  log.context[list(SCRIPT.USER_FEATURES)].to_numpy())
    return log.reward, log.action, log.propensity, target_probs, q_hat


def test_the_inputs_are_the_ones_obp_saw(rounds: tuple[np.ndarray, ...]) -> None:
    reward, action, propensity, target_probs, q_hat = rounds
    assert SCRIPT.checksum(action, reward, propensity, target_probs, q_hat) == REFERENCE["inputs_sha256"]


@pytest.mark.parametrize("spec", list(REFERENCE["estimates"]))
def test_estimate_equals_obp(spec: str, rounds: tuple[np.ndarray, ...]) -> None:
    ours, theirs = parse_estimator(spec).estimate_policy_value(*rounds), REFERENCE["estimates"][spec]
    assert ours == pytest.approx(theirs, rel=RELATIVE_TOLERANCE, abs=0), (
        f"{spec}: sendwise {ours!r}, OBP {REFERENCE['obp_version']} {theirs!r}; tolerance relative {RELATIVE_TOLERANCE}"
    )


def test_the_reference_covers_every_estimator_that_uses_the_target() -> None:
    """Replay needs a deterministic target and 'logged' ignores the target; every other one is checked."""
    checked = {parse_estimator(spec).name for spec in REFERENCE["estimates"]}
    assert checked == set(ESTIMATORS) - {"replay", "logged"}
