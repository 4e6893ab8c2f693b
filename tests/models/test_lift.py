"""The lift report: per-customer totals by group, Welch differences, CUPED, the MDE and the SRM check."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models import Catalog, LoggedFeedback, read_logs, write_logs
from sendwise.models.experiments import BASELINE, HOLDOUT, MODEL, Assignment, group_shares, lift_report
from sendwise.models.experiments.lift import sample_ratio

CATALOG = Catalog(channels=("email", "push"), regions=("US",), industries=("ecommerce",),
                  campaign_types=("onboarding",))


def make_log(groups: np.ndarray, value: np.ndarray, *, customers: np.ndarray | None = None,
             pre: np.ndarray | None = None) -> LoggedFeedback:
    """One decision per row: a message (email at 9) worth ``value`` outside the holdout, no message in it."""
    n = len(groups)
    customers = np.array([f"c{i}" for i in range(n)], dtype=object) if customers is None else customers
    holdout = groups == HOLDOUT
    action = np.where(holdout, CATALOG.null_arm, CATALOG.arm("email", 9))
    experiment = {"customer": customers, "group": groups}
    if pre is not None:
        experiment["pre_engagement"] = pre
    return LoggedFeedback(action=action, propensity=np.ones(n), reward=np.where(holdout, 0.0, value),
                          cost=np.where(holdout, 0.0, 0.01), catalog=CATALOG,
                          outcomes=pd.DataFrame({"click": (value > 0).astype(float), "unsubscribe": np.zeros(n)}),
                          experiment=pd.DataFrame(experiment))


def test_groups_are_summed_per_customer_and_compared_by_welch():
    rng = np.random.default_rng(1)
    groups = np.repeat(np.array([MODEL, BASELINE], dtype=object), 300)
    customers = np.array([f"c{i // 2}" for i in range(600)], dtype=object)  # two decisions each
    value = rng.normal(np.where(groups == MODEL, 1.0, 0.8), 1.0)
    report = lift_report(make_log(groups, value, customers=customers), group_shares(0.0, 0.5))
    model = next(g for g in report.groups if g.group == MODEL)
    assert (model.customers, model.decisions, model.messages) == (150, 300, 300)
    per_customer = pd.Series(value).groupby(customers).sum()
    in_model = per_customer[[f"c{i}" for i in range(150)]].to_numpy()
    in_baseline = per_customer[[f"c{i}" for i in range(150, 300)]].to_numpy()
    assert model.per_customer["value"] == pytest.approx(in_model.mean())
    diff = report.difference(MODEL, BASELINE)
    reference = scipy.stats.ttest_ind(in_model, in_baseline, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert diff.estimate == pytest.approx(in_model.mean() - in_baseline.mean())
    assert (diff.low, diff.high, diff.p_value) == pytest.approx((interval.low, interval.high, reference.pvalue))
    assert diff.mde > 0 and report.cuped is False and diff.cuped_estimate is None


@settings(max_examples=4, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), effect=st.floats(-1.0, 1.0))
def test_the_interval_covers_a_known_effect_at_its_rate(seed, effect):
    # 40 experiments of 400 customers: the 95% interval must miss the true effect rarely (<= 6 times)
    rng = np.random.default_rng(seed)
    missed = 0
    for _ in range(40):
        groups = np.where(rng.random(400) < 0.5, MODEL, BASELINE).astype(object)
        value = rng.exponential(1.0, 400) + np.where(groups == MODEL, effect, 0.0)
        diff = lift_report(make_log(groups, value), group_shares(0.0, 0.5)).difference(MODEL, BASELINE)
        missed += not diff.low <= effect <= diff.high
    assert missed <= 6  # P(more than 6 misses of 40 at 5%) < 0.02; a wrong interval misses far more


def test_cuped_narrows_the_interval_when_the_pre_period_predicts_the_value():
    rng = np.random.default_rng(3)
    groups = Assignment(salt="cuped", holdout_share=0.1, baseline_share=0.45).groups([f"c{i}" for i in range(4000)])
    pre = rng.gamma(2.0, 1.0, 4000)
    value = 0.8 * pre + rng.normal(0.0, 0.5, 4000) + np.where(groups == MODEL, 0.3, 0.0)
    report = lift_report(make_log(groups, value, pre=pre), group_shares(0.1, 0.45))
    diff = report.difference(MODEL, BASELINE)
    assert report.cuped and diff.variance_reduction > 0.5
    assert diff.cuped_high - diff.cuped_low < 0.7 * (diff.high - diff.low)
    assert diff.cuped_low < 0.3 < diff.cuped_high
    assert diff.cuped_mde < diff.mde
    holdout = report.difference(MODEL, HOLDOUT)  # a holdout worth 0 throughout: a slope per group still helps
    assert holdout.variance_reduction > 0


def test_the_srm_check_flags_a_52_48_split_of_20000_customers_and_not_a_fair_one():
    shares = group_shares(0.0, 0.5)
    assert sample_ratio({MODEL: 10_400, BASELINE: 9_600}, shares).flagged
    fair = sample_ratio({MODEL: 10_050, BASELINE: 9_950}, shares)
    assert not fair.flagged and fair.p_value > 0.4
    assert sample_ratio({MODEL: 10_000, BASELINE: 9_990, HOLDOUT: 10}, shares).flagged  # a group never configured


def test_the_report_reads_its_columns_back_from_a_written_log(tmp_path):
    groups = np.array([MODEL, HOLDOUT, BASELINE, MODEL], dtype=object)
    log = make_log(groups, np.array([1.0, 0.0, 0.5, 0.0]), pre=np.array([1.0, 2.0, np.nan, 0.0]))
    for suffix in (".parquet", ".csv"):
        back = read_logs(write_logs(log, tmp_path / f"logs{suffix}"))
        assert list(back.experiment["group"]) == list(groups)
        assert "customer" not in back.context.columns and "group" not in back.context.columns
        np.testing.assert_array_equal(back.experiment["pre_engagement"], [1.0, 2.0, np.nan, 0.0])
        assert not lift_report(back, group_shares(0.25, 0.25)).cuped  # a customer without a pre-period value


def test_bad_logs_and_shares_are_refused_with_the_reason():
    groups = np.array([MODEL, BASELINE, MODEL], dtype=object)
    with pytest.raises(ValueError, match="more than one group"):
        lift_report(make_log(groups, np.ones(3), customers=np.array(["a", "a", "b"], dtype=object)),
                    group_shares(0.0, 0.5))
    with pytest.raises(ValueError, match="sum to 1"):
        lift_report(make_log(groups, np.ones(3)), {MODEL: 0.5, BASELINE: 0.4})
    plain = LoggedFeedback(action=[0, 1], propensity=[1.0, 1.0], reward=[0.0, 1.0], catalog=CATALOG)
    with pytest.raises(ValueError, match="no 'customer' or 'group' column"):
        lift_report(plain, group_shares(0.0, 0.5))
    with pytest.raises(ValueError, match="column 'group', row 1: must be a non-empty string"):
        make_log(np.array([MODEL, None, MODEL], dtype=object), np.ones(3))


def test_the_cli_prints_the_report_and_writes_json(tmp_path, capsys):
    from sendwise.cli.main import main

    groups = Assignment(salt="cli", holdout_share=0.2, baseline_share=0.4).groups([f"c{i}" for i in range(500)])
    value = np.random.default_rng(5).exponential(1.0, 500)
    path = write_logs(make_log(groups, value), tmp_path / "logs.parquet")
    out = tmp_path / "lift.json"
    assert main(["lift", "--logs", str(path), "--holdout-share", "0.2", "--baseline-share", "0.4", "--json", str(out),
                 "--no-track"]) == 0
    text = capsys.readouterr().out
    assert "model - holdout" in text and "model - baseline" in text and "sample ratio:" in text
    data = json.loads(out.read_text())
    assert {g["group"] for g in data["groups"]} == {HOLDOUT, MODEL, BASELINE}
    assert main(["lift", "--logs", str(path), "--holdout-share", "0.7", "--baseline-share", "0.4", "--no-track"]) == 2
    assert "must be <= 1" in capsys.readouterr().err


def test_the_cli_says_why_an_empty_log_has_nothing_to_report(tmp_path, capsys):
    from sendwise.cli.main import main

    groups = np.array([HOLDOUT, MODEL] * 5)
    path = write_logs(make_log(groups, np.ones(10)).take([]), tmp_path / "empty.parquet")
    assert main(["lift", "--logs", str(path), "--holdout-share", "0.5", "--no-track"]) == 2
    assert "holds no decision" in capsys.readouterr().err
