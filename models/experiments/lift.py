"""The lift report: what the model added over the holdout and over the baseline, from a decision log.

The unit of the experiment is the customer (the hash assigns customers, not decisions), so every
metric is first summed per customer over the log's rows (value = Σ reward, cost, messages, each
outcome) and the groups are compared on those per-customer totals:

- **Differences** (model − holdout, model − baseline) of each metric's mean per customer, with Welch's
  95% interval (``statsmodels`` ``CompareMeans``, unequal variances).
- **CUPED**: the same difference after removing what each customer's pre-period engagement x predicts,
  ``y − θ_g (x − x̄)`` with θ_g the slope of y on x within each group and x̄ the mean over both (Lin's
  regression adjustment: a slope per group never widens the interval, even against a holdout whose
  value is always 0); the variance of the difference shrinks by ``variance_reduction``.
- **Minimum detectable effect** at the current sample size: the difference a two-sided 5% test finds
  with 80% power (``statsmodels`` ``TTestIndPower``), in the metric's units.
- **Sample ratio mismatch**: a chi-square test of the customers per group against the configured shares
  (``scipy.stats.chisquare``); p below ``SRM_ALPHA`` flags the split, whose differences then do not hold.
- **Shadow mode**: how often the model would have chosen the arm that was sent (Wilson interval) and,
  where the log has the model's probability of each arm sent (``model_sent_probability``), what the
  model would have earned per decision on those rows against what they earned: self-normalised IPS
  (``SNIPS``) weighing each row by the model's probability over the baseline's, with a seeded percentile
  bootstrap interval. It can only see the model's value where the baseline's options overlap the
  model's: against a fixed baseline it is the model's value on the options the two share, which is not
  its value on the whole traffic (the model picks the baseline's option where that option is good), so
  the report puts the model group's measured value per decision beside it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
import scipy.stats

from ..ope import SNIPS, LoggedFeedback
from .assignment import BASELINE, GROUPS, HOLDOUT, MODEL

CONFIDENCE = 0.95
SRM_ALPHA = 0.001  # the usual SRM threshold: a fair split is flagged once in a thousand experiments
POWER = 0.8
VALUE = "value"
COMPARISONS = ((MODEL, HOLDOUT), (MODEL, BASELINE))


@dataclass(frozen=True)
class GroupSummary:
    """One group's totals and its means per customer (``per_customer``: metric -> mean)."""

    group: str
    customers: int
    decisions: int
    messages: int
    cost: float
    outcomes: dict[str, float]
    per_customer: dict[str, float]


@dataclass(frozen=True)
class Difference:
    """``treatment − control`` of one metric's mean per customer, plain and CUPED-adjusted (None without a
    pre-period covariate), each with its 95% interval and minimum detectable effect."""

    treatment: str
    control: str
    metric: str
    estimate: float
    low: float
    high: float
    p_value: float
    mde: float
    cuped_estimate: float | None = None
    cuped_low: float | None = None
    cuped_high: float | None = None
    cuped_mde: float | None = None
    variance_reduction: float | None = None


@dataclass(frozen=True)
class SampleRatio:
    """Customers per group against the configured shares; ``flagged`` when p < ``alpha`` or a group with no
    configured share has customers."""

    observed: dict[str, int]
    expected_share: dict[str, float]
    statistic: float
    p_value: float
    alpha: float
    flagged: bool


@dataclass(frozen=True)
class ShadowSummary:
    """Of the decisions logged with the model's would-be choice, how many matched what was sent."""

    decisions: int
    agreement: float
    low: float
    high: float
    logged_value: float = math.nan  # mean reward per decision of those rows, as served
    model_value: float = math.nan  # what the model would have earned per decision on them (SNIPS)
    model_value_low: float = math.nan
    model_value_high: float = math.nan
    overlap: float = math.nan  # effective sample size of the weights over the rows: how much of them SNIPS uses
    model_group_value: float = math.nan  # mean reward per decision the model earned on its own group, measured


@dataclass(frozen=True)
class LiftReport:
    groups: list[GroupSummary]
    differences: list[Difference]
    sample_ratio: SampleRatio
    shadow: ShadowSummary | None
    cuped: bool

    def difference(self, treatment: str, control: str, metric: str = VALUE) -> Difference:
        """The difference ``treatment − control`` of ``metric``; KeyError when the log has no such pair."""
        for d in self.differences:
            if (d.treatment, d.control, d.metric) == (treatment, control, metric):
                return d
        raise KeyError(f"no difference {treatment} - {control} of {metric!r} in this report")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (NaN as None)."""
        return _plain({"groups": [asdict(g) for g in self.groups],
                       "differences": [asdict(d) for d in self.differences],
                       "sample_ratio": asdict(self.sample_ratio), "cuped": self.cuped,
                       "shadow": None if self.shadow is None else asdict(self.shadow)})


def lift_report(log: LoggedFeedback, shares: Mapping[str, float], *, srm_alpha: float = SRM_ALPHA) -> LiftReport:
    """The lift report of a log whose ``experiment`` names each row's ``customer`` and ``group``.

    ``shares`` are the configured shares (``Assignment.shares`` or ``group_shares``); the check of the
    split compares the customers in the log against them. ``pre_engagement``, when logged, enables CUPED.
    """
    per_customer = customer_totals(log)
    unknown = sorted(set(shares) - set(GROUPS))
    if unknown or not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
        raise ValueError(f"`shares` must give groups among {', '.join(GROUPS)} that sum to 1; got {dict(shares)}")
    metrics = [VALUE, "cost", "messages", *log.catalog.outcomes]
    groups = [_summary(name, per_customer[per_customer["group"] == name], metrics)
              for name in GROUPS if (per_customer["group"] == name).any()]
    cuped = "pre_engagement" in per_customer and bool(per_customer["pre_engagement"].notna().all())
    differences = []
    for treatment, control in COMPARISONS:
        a, b = per_customer[per_customer["group"] == treatment], per_customer[per_customer["group"] == control]
        if len(a) >= 2 and len(b) >= 2:
            differences += [_difference(treatment, control, metric, a, b, cuped) for metric in metrics]
    return LiftReport(groups=groups, differences=differences,
                      sample_ratio=sample_ratio(per_customer["group"].value_counts().to_dict(), shares, srm_alpha),
                      shadow=_shadow(log), cuped=cuped)


def customer_totals(log: LoggedFeedback) -> pd.DataFrame:
    """One row per customer: ``group``, ``decisions``, ``messages``, ``cost``, ``value``, each outcome and
    ``pre_engagement`` (when logged), summed over the customer's decisions."""
    experiment = log.experiment
    missing = [c for c in ("customer", "group") if experiment is None or c not in experiment]
    if missing:
        raise ValueError(f"the log has no {' or '.join(repr(c) for c in missing)} column: the lift report needs "
                         "each decision's customer and group (`sendwise simulate --holdout-share ... "
                         "--log-decisions FILE` writes them)")
    if log.catalog is None:
        raise ValueError("the lift report needs a log in a catalog's terms (channel + hour), to tell messages "
                         "from 'no message'")
    unknown = sorted(set(experiment["group"]) - set(GROUPS))
    if unknown:
        raise ValueError(f"column 'group' must hold {', '.join(GROUPS)}; got {', '.join(map(repr, unknown))}")
    rows = pd.DataFrame({"customer": experiment["customer"], "group": experiment["group"], "decisions": 1,
                         "messages": (log.action != log.catalog.null_arm).astype(np.int64),
                         "cost": log.cost if log.cost is not None else 0.0, VALUE: log.reward})
    for outcome in log.catalog.outcomes:
        rows[outcome] = log.outcomes[outcome] if log.outcomes is not None and outcome in log.outcomes else 0.0
    if "pre_engagement" in experiment:
        rows["pre_engagement"] = experiment["pre_engagement"]
    groups_each = rows.groupby("customer")["group"].nunique()
    if (groups_each > 1).any():
        customer = groups_each.index[groups_each > 1][0]
        raise ValueError(f"customer {customer!r} appears in more than one group: an assignment must be stable "
                         "per customer (same salt and shares for the whole experiment)")
    sums = rows.drop(columns=["group", *(["pre_engagement"] if "pre_engagement" in rows else [])])
    totals = sums.groupby("customer").sum()
    totals.insert(0, "group", rows.groupby("customer")["group"].first())
    if "pre_engagement" in rows:
        totals["pre_engagement"] = rows.groupby("customer")["pre_engagement"].first()
    return totals


def sample_ratio(observed: Mapping[str, int], shares: Mapping[str, float], alpha: float = SRM_ALPHA) -> SampleRatio:
    """Chi-square test of customers per group against ``shares`` (groups of share 0 must be empty)."""
    counts = {g: int(observed.get(g, 0)) for g in GROUPS if shares.get(g, 0.0) > 0 or observed.get(g, 0)}
    stray = [g for g in counts if shares.get(g, 0.0) == 0.0]
    tested = [g for g in counts if g not in stray]
    total = sum(counts[g] for g in tested)
    statistic, p_value = 0.0, 1.0
    if len(tested) >= 2 and total > 0:
        result = scipy.stats.chisquare([counts[g] for g in tested], [shares[g] * total for g in tested])
        statistic, p_value = float(result.statistic), float(result.pvalue)
    return SampleRatio(observed=counts, expected_share={g: float(shares.get(g, 0.0)) for g in counts},
                       statistic=statistic, p_value=p_value, alpha=alpha, flagged=bool(stray) or p_value < alpha)


def _summary(name: str, customers: pd.DataFrame, metrics: list[str]) -> GroupSummary:
    outcomes = [m for m in metrics if m not in (VALUE, "cost", "messages")]
    return GroupSummary(group=name, customers=len(customers), decisions=int(customers["decisions"].sum()),
                        messages=int(customers["messages"].sum()), cost=float(customers["cost"].sum()),
                        outcomes={o: float(customers[o].sum()) for o in outcomes},
                        per_customer={m: float(customers[m].mean()) for m in metrics})


def _difference(treatment: str, control: str, metric: str, a: pd.DataFrame, b: pd.DataFrame,
                cuped: bool) -> Difference:
    y_a, y_b = a[metric].to_numpy(np.float64), b[metric].to_numpy(np.float64)
    estimate, low, high, p_value = _welch(y_a, y_b)
    out: dict[str, Any] = {"treatment": treatment, "control": control, "metric": metric, "estimate": estimate,
                           "low": low, "high": high, "p_value": p_value, "mde": _mde(y_a, y_b)}
    if cuped:
        x_a, x_b = a["pre_engagement"].to_numpy(np.float64), b["pre_engagement"].to_numpy(np.float64)
        centre = np.concatenate([x_a, x_b]).mean()
        adj_a, adj_b = y_a - _slope(y_a, x_a) * (x_a - centre), y_b - _slope(y_b, x_b) * (x_b - centre)
        out["cuped_estimate"], out["cuped_low"], out["cuped_high"], _ = _welch(adj_a, adj_b)
        out["cuped_mde"] = _mde(adj_a, adj_b)
        plain = y_a.var(ddof=1) / y_a.size + y_b.var(ddof=1) / y_b.size
        adjusted = adj_a.var(ddof=1) / adj_a.size + adj_b.var(ddof=1) / adj_b.size
        out["variance_reduction"] = float(1.0 - adjusted / plain) if plain > 0 else 0.0
    return Difference(**out)


def _slope(y: np.ndarray, x: np.ndarray) -> float:
    """θ of CUPED: the least-squares slope of y on x within one group (0 when x does not vary)."""
    return float(scipy.stats.linregress(x, y).slope) if np.ptp(x) > 0 else 0.0


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """Mean difference, its Welch 95% interval and two-sided p; a zero-width interval when nothing varies."""
    from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

    estimate = float(a.mean() - b.mean())
    if np.ptp(a) == 0 and np.ptp(b) == 0:  # exactly constant (a variance can come out 1e-36 instead)
        return estimate, estimate, estimate, 1.0 if estimate == 0 else 0.0
    compare = CompareMeans(DescrStatsW(a), DescrStatsW(b))
    low, high = compare.tconfint_diff(alpha=1 - CONFIDENCE, usevar="unequal")
    return estimate, float(low), float(high), float(compare.ttest_ind(usevar="unequal")[1])


def _mde(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest difference a two-sided 5% test detects with 80% power at these sample sizes, in y's units."""
    pooled = math.sqrt(((a.size - 1) * a.var(ddof=1) + (b.size - 1) * b.var(ddof=1)) / (a.size + b.size - 2))
    return _detectable_effect_size(a.size, b.size) * pooled if pooled > 0 else 0.0


@cache
def _detectable_effect_size(n_treatment: int, n_control: int) -> float:
    """Cohen's d detectable with 80% power at 5% (two-sided): one root-finding per pair of sample sizes."""
    from statsmodels.stats.power import TTestIndPower  # statsmodels loads only for a report

    effect = TTestIndPower().solve_power(effect_size=None, nobs1=n_treatment, alpha=1 - CONFIDENCE, power=POWER,
                                         ratio=n_control / n_treatment, alternative="two-sided")
    return float(np.ravel(effect)[0])  # a scalar or, for some sizes, an array of one


def _shadow(log: LoggedFeedback) -> ShadowSummary | None:
    if log.experiment is None or "model_agrees" not in log.experiment:
        return None
    agrees = log.experiment["model_agrees"].dropna().to_numpy(np.float64)
    if not agrees.size:
        return None
    from statsmodels.stats.proportion import proportion_confint

    low, high = proportion_confint(int(agrees.sum()), agrees.size, alpha=1 - CONFIDENCE, method="wilson")
    summary = ShadowSummary(decisions=int(agrees.size), agreement=float(agrees.mean()), low=float(low),
                            high=float(high))
    if "model_sent_probability" not in log.experiment:
        return summary
    probability = log.experiment["model_sent_probability"].to_numpy(np.float64)
    rows = np.isfinite(probability)
    if not rows.any() or probability[rows].sum() <= 0:
        return summary
    # Two actions: the one sent (0) and any other (1); SNIPS reads only the sent one's probability.
    target = np.column_stack([probability[rows], 1.0 - probability[rows]])
    sent = np.zeros(int(rows.sum()), dtype=np.int64)
    reward, propensity = log.reward[rows], log.propensity[rows]
    estimator = SNIPS()
    value = estimator.estimate_policy_value(reward, sent, propensity, target)
    value_low, value_high = estimator.estimate_interval(reward, sent, propensity, target, alpha=1 - CONFIDENCE,
                                                        random_state=0)
    ess = estimator.diagnostics(reward, sent, propensity, target).effective_sample_size
    own = log.experiment["group"].to_numpy() == MODEL
    return replace(summary, logged_value=float(reward.mean()), model_value=value, model_value_low=value_low,
                   model_value_high=value_high, overlap=ess / int(rows.sum()),
                   model_group_value=float(log.reward[own].mean()) if own.any() else math.nan)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
