"""Estimators named by specs (``ips(clip=10)``), and the doubly robust family: switch-DR, DRos and SNDR
against hand-computed values and their limits."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from sendwise.cli.main import main
from sendwise.models import LoggedFeedback, write_logs
from sendwise.models.ope import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    SNDR,
    DRos,
    SwitchDR,
    evaluate,
    parse_estimator,
    parse_estimators,
)

# Four rounds, three actions (as in test_ope). Weights w = [1, 4, 0.8, 4]; residuals r − q̂(a_i) =
# [0.5, −0.4, 0.5, 0.1]; Σ_a π q̂ per round = [0.35, 0.4, 0.42, 0.9], summing to 2.07.
REWARD = np.array([1.0, 0.0, 1.0, 1.0])
ACTION = np.array([0, 1, 1, 2])
PROPENSITY = np.array([0.5, 0.25, 0.25, 0.25])
TARGET = np.array([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6], [0.0, 0.0, 1.0]])
Q_HAT = np.array([[0.5, 0.2, 0.1], [0.3, 0.4, 0.2], [0.1, 0.5, 0.5], [0.6, 0.2, 0.9]])
ROUNDS = (REWARD, ACTION, PROPENSITY, TARGET, Q_HAT)


def test_new_estimators_match_hand_computed_values() -> None:
    assert SwitchDR(tau=2).estimate_policy_value(*ROUNDS) == pytest.approx((2.07 + 0.5 + 0.4) / 4)
    shrunk = [4 * w / (w**2 + 4) for w in (1, 4, 0.8, 4)]  # λ w / (w² + λ), λ = 4
    correction = float(np.dot(shrunk, [0.5, -0.4, 0.5, 0.1]))
    assert DRos(lambda_=4).estimate_policy_value(*ROUNDS) == pytest.approx((2.07 + correction) / 4)
    assert SNDR().estimate_policy_value(*ROUNDS) == pytest.approx(2.07 / 4 - 0.3 / 9.8)
    assert SwitchDR(tau=2).diagnostics(*ROUNDS).max_weight == 1.0  # the weights it applies


def test_sndr_interval_brackets_its_estimate() -> None:
    low, high = SNDR().estimate_interval(*ROUNDS, n_bootstrap=200, random_state=0)
    assert low <= SNDR().estimate_policy_value(*ROUNDS) <= high


@st.composite
def logged_rounds(draw: st.DrawFn) -> tuple[np.ndarray, ...]:
    """Random rounds with positive propensities, a target whose rows sum to 1 and a reward model."""
    n_rounds, n_actions = draw(st.integers(1, 30)), draw(st.integers(1, 5))
    unit = st.floats(0.0, 1.0)
    reward = draw(arrays(np.float64, n_rounds, elements=unit))
    action = draw(arrays(np.int64, n_rounds, elements=st.integers(0, n_actions - 1)))
    propensity = draw(arrays(np.float64, n_rounds, elements=st.floats(0.05, 1.0)))
    scores = draw(arrays(np.float64, (n_rounds, n_actions), elements=st.floats(0.01, 1.0)))
    q_hat = draw(arrays(np.float64, (n_rounds, n_actions), elements=unit))
    return reward, action, propensity, scores / scores.sum(axis=1, keepdims=True), q_hat


@settings(max_examples=60, deadline=None)
@given(rounds=logged_rounds())
def test_switch_dr_spans_dm_to_dr(rounds: tuple[np.ndarray, ...]) -> None:
    dr, dm = DR().estimate_policy_value(*rounds), DM().estimate_policy_value(*rounds)
    assert SwitchDR().estimate_policy_value(*rounds) == pytest.approx(dr, abs=1e-12)  # tau = inf
    assert SwitchDR(tau=1e300).estimate_policy_value(*rounds) == pytest.approx(dr, abs=1e-12)
    assert SwitchDR(tau=0).estimate_policy_value(*rounds) == pytest.approx(dm, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(rounds=logged_rounds())
def test_dros_spans_dm_to_dr(rounds: tuple[np.ndarray, ...]) -> None:
    dr, dm = DR().estimate_policy_value(*rounds), DM().estimate_policy_value(*rounds)
    assert DRos(lambda_=math.inf).estimate_policy_value(*rounds) == pytest.approx(dr, abs=1e-12)
    assert DRos(lambda_=1e12).estimate_policy_value(*rounds) == pytest.approx(dr, abs=1e-6)
    assert DRos().estimate_policy_value(*rounds) == pytest.approx(dm, abs=1e-12)  # lambda_ = 0


@settings(max_examples=60, deadline=None)
@given(rounds=logged_rounds())
def test_sndr_is_dr_when_the_weights_average_one(rounds: tuple[np.ndarray, ...]) -> None:
    reward, action, propensity, target, q_hat = rounds
    weights = target[np.arange(action.size), action] / propensity
    rescaled = propensity * weights.mean()  # the same target, weights divided by their mean
    if np.all(rescaled <= 1):
        dr = DR().estimate_policy_value(reward, action, rescaled, target, q_hat)
        assert SNDR().estimate_policy_value(reward, action, rescaled, target, q_hat) == pytest.approx(dr, abs=1e-12)
    # Otherwise SNDR is DR with its correction divided by the mean weight.
    dm = DM().estimate_policy_value(*rounds)
    expected = dm + (DR().estimate_policy_value(*rounds) - dm) / weights.mean()
    assert SNDR().estimate_policy_value(*rounds) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("cls", list(ESTIMATORS.values()), ids=list(ESTIMATORS))
def test_every_estimator_reads_back_from_its_spec(cls: type) -> None:
    default = cls()
    assert parse_estimator(default.spec) == default and default.spec == cls.name
    assert set(default.get_params()) == {p for p in ("clip", "tau", "lambda_") if hasattr(default, p)}


@pytest.mark.parametrize("spec, expected", [
    pytest.param("ips(clip=10)", IPS(clip=10), id="int"),
    pytest.param(" dr ( clip = 2.5 ) ", DR(clip=2.5), id="spaces"),
    pytest.param("ips(clip=None)", IPS(), id="none"),
    pytest.param("switch-dr(tau=inf)", SwitchDR(), id="inf"),
    pytest.param("dr-os(lambda_=1e3)", DRos(lambda_=1000.0), id="exponent"),
    pytest.param("sndr()", SNDR(), id="empty-parens"),
])
def test_parse_estimator(spec: str, expected: object) -> None:
    assert parse_estimator(spec) == expected


def test_specs_label_only_the_parameters_that_differ() -> None:
    assert [e.spec for e in parse_estimators("ips(clip=10.0),ips,switch-dr(tau=0.5),dr-os(lambda_=inf)")] == [
        "ips(clip=10)", "ips", "switch-dr(tau=0.5)", "dr-os(lambda_=inf)"]
    assert IPS(clip=10).get_params() == {"clip": 10}


INVALID_SPECS = [
    pytest.param("magic", "unknown estimator 'magic'; known: ips, snips, dm, dr, switch-dr, dr-os, sndr, replay, "
                 "logged", id="unknown"),
    pytest.param("ips(clp=3)", "estimator spec 'ips(clp=3)': ips has no parameter 'clp' (its parameters: clip)",
                 id="unknown-param"),
    pytest.param("snips(clip=3)", "estimator spec 'snips(clip=3)': snips has no parameter 'clip' (its parameters: "
                 "none)", id="no-params"),
    pytest.param("ips(clip=-1)", "estimator spec 'ips(clip=-1)': `clip` must be None or a number > 0; got -1",
                 id="invalid-value"),
    pytest.param("switch-dr(tau=nan)", "estimator spec 'switch-dr(tau=nan)': value 'nan' of 'tau' must be a number, "
                 "inf, true, false or none", id="nan"),
    pytest.param("ips(clip=__import__('os'))", "estimator spec \"ips(clip=__import__('os'))\" is malformed",
                 id="code"),
    pytest.param("ips(clip=ten)", "estimator spec 'ips(clip=ten)': value 'ten' of 'clip' must be a number",
                 id="word"),
    pytest.param("ips(10)", "estimator spec 'ips(10)': parameter '10' must be written param=value", id="positional"),
    pytest.param("ips(clip=1,clip=2)", "estimator spec 'ips(clip=1,clip=2)': parameter 'clip' is given twice",
                 id="repeated-param"),
    pytest.param("ips(clip=1", "estimator spec 'ips(clip=1' is malformed", id="unclosed"),
    pytest.param(" , ", "no estimator in ' , '", id="empty"),
]


@pytest.mark.parametrize("specs, msg", INVALID_SPECS)
def test_bad_specs_name_the_offending_token(specs: str, msg: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(msg)}"):
        parse_estimators(specs)


def small_log() -> LoggedFeedback:
    rng = np.random.default_rng(2)
    n_rounds = 400
    action = rng.integers(0, 3, n_rounds)
    return LoggedFeedback(action=action, propensity=np.full(n_rounds, 1 / 3), n_actions=3,
                          reward=(rng.random(n_rounds) < 0.2 + 0.2 * action).astype(float))


def test_evaluate_takes_objects_and_specs_and_labels_rows_by_spec() -> None:
    log, target = small_log(), np.tile([0.1, 0.1, 0.8], (400, 1))
    result = evaluate(log, target, estimators=[IPS(clip=2), "ips", "sndr", "switch-dr(tau=2)"], n_bootstrap=50,
                      random_state=0)
    assert [r.estimator for r in result.rows] == ["logged", "ips(clip=2)", "ips", "sndr", "switch-dr(tau=2)"]
    assert result.estimate("ips(clip=2)").estimate < result.estimate("ips").estimate  # 2.4 clipped to 2
    assert result == evaluate(log, target, estimators="ips(clip=2),ips,sndr,switch-dr(tau=2)", n_bootstrap=50,
                              random_state=0)
    header, row = result.format_table().splitlines()[3], result.format_table().splitlines()[5]
    value = f"{result.rows[1].estimate:.5f}"
    assert header.index("estimate") + len("estimate") == row.index(value) + len(value)  # right-aligned column


def test_evaluate_rejects_an_estimator_given_twice() -> None:
    with pytest.raises(ValueError, match=re.escape("estimator 'ips(clip=2)' is given twice")):
        evaluate(small_log(), np.full((400, 3), 1 / 3), estimators=["ips(clip=2.0)", IPS(clip=2)])
    with pytest.raises(TypeError, match=re.escape("an estimator must be an Estimator or a spec string")):
        evaluate(small_log(), np.full((400, 3), 1 / 3), estimators=[IPS, "snips"])


def test_sendwise_evaluate_takes_specs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    logs = write_logs(small_log(), tmp_path / "logs.csv")
    probs = tmp_path / "target.npy"
    np.save(probs, np.tile([0.1, 0.1, 0.8], (400, 1)))
    assert main(["evaluate", "--no-track", "--logs", str(logs), "--target-probs", str(probs), "--estimators",
                 "ips(clip=2), ips, dr-os(lambda_=10)", "--bootstrap", "50"]) == 0
    rows = [line.split()[0] for line in capsys.readouterr().out.splitlines()[4:8]]
    assert rows == ["logged", "ips(clip=2)", "ips", "dr-os(lambda_=10)"]
    assert main(["evaluate", "--no-track", "--logs", str(logs), "--target-probs", str(probs),
                 "--estimators", "ips(clip=0)"]) == 2
    assert capsys.readouterr().err == ("sendwise evaluate: error: estimator spec 'ips(clip=0)': `clip` must be None "
                                       "or a number > 0; got 0\n")
