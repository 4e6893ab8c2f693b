"""The simulator: reproducible, never sends on a masked arm, resolves every decision's feedback exactly once."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from sendwise.cli.main import main
from sendwise.models import (
    POLICIES,
    Choices,
    DecisionBatch,
    Learner,
    Outcomes,
    Policy,
    Resolved,
    Sends,
    load_world,
)
from sendwise.models.domain.population import draw_population
from sendwise.models.policies.factory import make_world_policy
from sendwise.models.sim.simulate import FEEDBACK_DTYPE, FeedbackQueue, run_loop, run_policy, simulate
from tests.models.test_world import SEED_TEXT, edited_world

SMALL = {"n_customers": 600, "n_days": 6}


class Spy:
    """A ``Loop`` around a policy's ``Learner`` that records what it saw, chose and learned, day by day."""

    def __init__(self, inner: Policy) -> None:
        self.inner, self.name = inner, inner.name
        self.learner = Learner(inner)
        self.day = 0
        self.decisions: list[tuple[int, DecisionBatch, np.ndarray]] = []
        self.outcomes: list[tuple[int, Outcomes]] = []

    def decide(self, batch: DecisionBatch, now: float) -> Choices:
        choices = self.learner.decide(batch, now)
        self.decisions.append((self.day, batch, np.asarray(choices.arm)))
        return choices

    def sent(self, sends: Sends) -> None:
        self.learner.sent(sends)

    def resolve(self, resolved: Resolved) -> None:
        self.outcomes.append((self.day, Outcomes(cell_idx=resolved.cell_idx, arm=resolved.arm,
                                                 outcome_idx=resolved.outcome_idx, successes=resolved.successes,
                                                 failures=resolved.failures, customer_idx=resolved.customer_idx)))
        self.learner.resolve(resolved)

    def advance(self, now: float) -> None:
        self.learner.advance(now)

    def next_day(self) -> None:
        self.day += 1


class CustomerOracle(Policy):
    """Best expected net value on each customer's true rates (the simulator's regret reference)."""

    def exploitation_probabilities(self, batch: DecisionBatch, *, bank_draws: int | None = None) -> np.ndarray:
        net = np.einsum("o,ioa->ia", self.value, batch.true_rates) - self.cost[batch.cost_row_idx]
        arm = np.where(batch.mask, net, -np.inf).argmax(axis=1)
        return np.eye(batch.mask.shape[1])[arm]


@pytest.fixture(scope="module")
def tight_world(tmp_path_factory: pytest.TempPathFactory):
    """The seed world with daily triggers, low caps and frequent SMS unsubscribes, so every mask binds."""
    unsubscribe_sms = SEED_TEXT[SEED_TEXT.index("[unsubscribe.sms]"):SEED_TEXT.index("[unsubscribe.whatsapp]")]
    edits = [("trigger_probability = 0.25", "trigger_probability = 0.9"),
             ("trigger_probability = 0.15", "trigger_probability = 0.9"),
             ("trigger_probability = 0.08", "trigger_probability = 0.9"),
             ("per_week_total = 5", "per_week_total = 4"),
             ("sms = 2         # assumption", "sms = 1  # assumption"),
             (unsubscribe_sms, unsubscribe_sms.replace("0.008", "0.3"))]
    return load_world(edited_world(tmp_path_factory.mktemp("tight"), *edits))


def _run_spy(world, policy: str, seed: int = 3, **params) -> tuple[Spy, object]:
    spy = Spy(make_world_policy(policy, world, seed=seed, **params))
    run = run_loop(world, spy, seed=seed, on_day=spy.next_day, name=policy, params=spy.inner.get_params(), **SMALL)
    return spy, run


def _check_masks(world, spy: Spy, seed: int) -> dict[str, int]:
    """Every chosen arm is allowed, and the mask itself is right; returns how often each rule bound."""
    catalog, population = world.catalog, draw_population(world, SMALL["n_customers"], seed)
    sends = np.zeros((SMALL["n_days"], SMALL["n_customers"], len(catalog.channels)), np.int64)
    left = np.zeros((SMALL["n_customers"], len(catalog.channels)), np.bool_)
    learned = {day: [o for d, o in spy.outcomes if d == day] for day in range(SMALL["n_days"])}
    bound = {"capped": 0, "unsubscribed": 0, "quiet": 0}
    for day, batch, arm in spy.decisions:
        rows = np.arange(batch.n_rows)
        assert batch.mask[rows, arm].all(), f"day {day}: a masked arm was chosen"
        customers, region = batch.customer_idx, batch.cost_row_idx
        recent = sends[max(0, day - 6):day, customers].sum(axis=0)
        capped = (recent >= world.cap_per_week) | (recent.sum(axis=1) >= world.cap_per_week_total)[:, None]
        closed = ~population.reachable[customers] | left[customers] | capped
        per_hour = catalog.arm_mask(~closed, world.hour_allowed[region])
        np.testing.assert_array_equal(batch.mask, per_hour, err_msg=f"day {day}: mask differs from the rules")
        bound["capped"] += int(capped.sum())
        bound["unsubscribed"] += int(left[customers].sum())
        bound["quiet"] += int((~world.hour_allowed[region]).sum())
        sent = arm != catalog.null_arm
        sends[day, customers[sent], arm[sent] // 24] += 1
        for outcomes in learned[day]:
            gone = (outcomes.outcome_idx == 1) & (outcomes.successes > 0)
            left[outcomes.customer_idx[gone], outcomes.arm[gone] // 24] = True
    return bound


def test_no_decision_is_ever_on_a_masked_arm(tight_world) -> None:
    spy, _ = _run_spy(tight_world, "ts", epsilon=1.0)  # uniform over allowed arms: probes every edge
    bound = _check_masks(tight_world, spy, seed=3)
    assert min(bound.values()) > 0, f"every rule should bind at least once in this world; got {bound}"


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_every_registered_policy_respects_the_masks(tight_world, policy: str) -> None:
    spy, run = _run_spy(tight_world, policy)
    _check_masks(tight_world, spy, seed=3)
    assert run.totals["decisions"] == sum(b.n_rows for _, b, _ in spy.decisions)


def test_a_policy_that_picks_a_masked_arm_stops_the_run(tight_world) -> None:
    class Rogue(CustomerOracle):
        def decide(self, batch: DecisionBatch) -> Choices:
            arm = np.argmin(batch.mask, axis=1)  # a masked arm wherever there is one
            ones = np.ones(arm.size)
            return Choices(arm, ones, ones == 0, ones.astype(np.int64), ones * 0)

    rogue = Rogue(tight_world.catalog, tight_world.value, tight_world.cost)
    with pytest.raises(RuntimeError, match=r"policy '' chose masked arm \d+ on day 0"):
        run_policy(tight_world, rogue, seed=0, **SMALL)


def test_every_sent_decision_resolves_once_per_outcome(tight_world) -> None:
    spy, run = _run_spy(tight_world, "ts", epsilon=0.2)
    rows = {k: np.concatenate([getattr(o, k) for _, o in spy.outcomes])
            for k in ("arm", "outcome_idx", "successes", "failures")}
    assert not np.any(rows["arm"] == tight_world.catalog.null_arm)
    assert np.all((rows["successes"] > 0) != (rows["failures"] == 1)), "each row is a success or a failure"
    per_outcome = np.bincount(rows["outcome_idx"], minlength=2)
    assert rows["arm"].size == run.totals["feedback_delivered"]
    n_outcomes = len(tight_world.catalog.outcomes)
    assert run.totals["feedback_delivered"] + run.totals["feedback_open"] == n_outcomes * run.totals["sends"]
    # Windows that closed before the horizon must have resolved; a click may resolve one earlier.
    offsets, windows = tight_world.utc_offset_hours, tight_world.attribution_window_hours
    closed = sum(int(np.sum(24 * day + (arm[arm < 168] % 24 - offsets[b.cost_row_idx[arm < 168]]) % 24
                            + windows[arm[arm < 168] // 24] < 24 * SMALL["n_days"]))
                 for day, b, arm in spy.decisions)
    assert closed <= per_outcome.min() and per_outcome.max() <= run.totals["sends"]
    assert np.sum(rows["successes"][rows["outcome_idx"] == 0] > 0) <= run.totals["clicks"]


def test_feedback_queue_hands_out_each_record_once_on_its_day() -> None:
    rng = np.random.default_rng(5)
    n_days, queue, scheduled = 10, FeedbackQueue(10), []
    for day in range(n_days):
        records = np.zeros(rng.integers(0, 30), FEEDBACK_DTYPE)
        records["decision_id"] = np.arange(records.size) + 1000 * day
        due = day + rng.integers(0, 14, records.size)
        queue.schedule(records, due)
        scheduled += list(zip(records["decision_id"], due, strict=True))
        delivered = queue.pop(day)
        assert all(d == day for i, d in scheduled if i in set(delivered["decision_id"]))
        with pytest.raises(ValueError, match="arrives after that day was delivered"):
            queue.schedule(records[:1], np.array([day]))
    ids_due = sorted(i for i, d in scheduled if d < n_days)
    assert queue.n_scheduled == len(scheduled) == queue.n_delivered + queue.n_open
    assert queue.n_delivered == len(ids_due)
    with pytest.raises(ValueError, match="feedback of day 3 requested, expected day 10"):
        queue.pop(3)


def test_regret_is_measured_against_the_customer_oracle() -> None:
    world = load_world("seed")
    oracle = run_policy(world, CustomerOracle(world.catalog, world.value, world.cost, epsilon=0.0), seed=1, **SMALL)
    learner = run_policy(world, make_world_policy("ts", world, seed=1), seed=1, **SMALL)
    assert np.allclose(oracle.daily["regret"], 0.0)
    assert learner.totals["regret"] > 0
    np.testing.assert_allclose(oracle.daily["share_none"] + sum(
        oracle.daily[f"share_{c}"] for c in world.catalog.channels), 1.0)


def test_same_seed_same_numbers_whatever_the_number_of_jobs() -> None:
    kwargs = {"n_customers": 400, "n_days": 4, "seeds": (0, 1), "progress": False}
    serial = simulate("seed", ["ts"], **kwargs)
    again = simulate("seed", ["ts"], **kwargs)
    parallel = simulate("seed", ["ts"], n_jobs=2, **kwargs)
    for other in (again, parallel):
        for a, b in zip(serial.runs, other.runs, strict=True):
            assert (a.policy, a.seed, a.totals) == (b.policy, b.seed, b.totals)
            for metric in a.daily:
                np.testing.assert_array_equal(a.daily[metric], b.daily[metric])
    assert serial.runs[0].totals != serial.runs[1].totals, "different seeds give different worlds"
    mean, low, high = serial.summary["ts"]["net_value"]
    assert low <= mean <= high


def test_changing_one_number_in_the_world_file_changes_the_result(tmp_path: Path) -> None:
    edited = edited_world(tmp_path, ("ecommerce = 0.080  # retail 8%", "ecommerce = 0.400  # retail 8%"))
    base, changed = (run_policy(w, CustomerOracle(w.catalog, w.value, w.cost, epsilon=0.0), seed=0, **SMALL)
                     for w in (load_world("seed"), load_world(edited)))
    assert changed.totals["cost_whatsapp"] > base.totals["cost_whatsapp"]
    assert changed.totals["net_value"] != base.totals["net_value"]


def test_make_world_policy_errors_name_the_problem() -> None:
    world = load_world("seed")
    with pytest.raises(ValueError, match=re.escape(f"unknown policy 'magic'; known: {', '.join(sorted(POLICIES))}")):
        make_world_policy("magic", world, seed=0)
    with pytest.raises(ValueError, match=re.escape("policy 'ts' rejected parameters ['temperature']")):
        make_world_policy("ts", world, seed=0, temperature=2.0)


def test_cli_writes_table_json_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, report = tmp_path / "run", tmp_path / "report.json"
    code = main(["simulate", "--policies", "ts", "--customers", "300", "--days", "3", "--seeds", "2",
                 "--out", str(out), "--json", str(report), "--param", "ts.epsilon=0.05", "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0
    for heading in ("net value", "clicks", "unsubscribes", "regret vs oracle", "cost by channel", "whatsapp"):
        assert heading in printed
    data = json.loads(report.read_text())
    assert data["runs"][0]["params"]["epsilon"] == 0.05 and len(data["runs"]) == 2
    assert len(data["summary"]["ts"]["net_value"]) == 3
    assert len(data["runs"][0]["daily"]["share_none"]) == 3
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == ["channel_mix.png", "heatmap_learned_vs_true.png", "net_value_regret.png"]
    assert all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    assert (out / "policies" / "ts-seed1.npz").is_file() and (out / "world.toml").is_file()
    assert f"plots: {out}" in printed


@pytest.mark.parametrize("args, message", [
    (["--policies", "ts,nope"], "error: unknown policy 'nope'; known: "),
    (["--world", "mars"], "error: unknown world 'mars'; known: seed"),
    (["--param", "epsilon=0.1"], "error: --param must look like POLICY.NAME=VALUE"),
])
def test_cli_errors_are_clear(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--customers", "10", "--days", "1", "--seeds", "1", "--no-progress", *args]) == 2
    assert message in capsys.readouterr().err


def test_cli_bad_world_file_names_the_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    world = edited_world(tmp_path, ("EU = 0.06      # UK", "EU = -0.06      # UK"))
    assert main(["simulate", "--world", str(world), "--policies", "ts", "--no-progress"]) == 2
    assert "[cost.per_message.sms] EU = -0.06: cost must be a number >= 0" in capsys.readouterr().err


def test_ips_on_a_simulated_log_recovers_a_known_target_value(tmp_path: Path) -> None:
    """The simulator's log has exact propensities: IPS recovers the uniform policy's value, known from the truth.

    A row's expected logged reward on arm a is Σ value[o] · rate[o, a] · P(its delay fits the window) − cost:
    the simulator draws each outcome with the customer's true rate and a lognormal delay. Decisions made
    at least a week before the end are settled whatever their arm, so no arm is selected out of the log.
    With the default floor of 0.01, weights up to 100 on rare unsubscribes make the error's own estimate
    unreliable at this size; the logging policy explores more here, the estimator's assumptions stay.
    """
    from math import erf, log, sqrt

    from sendwise.models import read_logs
    from sendwise.models.ope.estimators import ips

    world, n_days = load_world("seed"), 20
    spy = Spy(make_world_policy("hier_ts", world, seed=4, epsilon=0.2))  # a floor of 0.2 keeps uniform weights below 5
    run_loop(world, spy, n_customers=3000, n_days=n_days, seed=4, name="hier_ts", on_day=spy.next_day,
             log_decisions=tmp_path / "log.parquet")
    log_rows = read_logs(tmp_path / "log.parquet", world.catalog)
    catalog, channel = world.catalog, world.catalog.arm_channels()
    in_window = np.array([0.5 * (1 + erf((log(w) - log(m)) / (s * sqrt(2)))) for w, m, s in zip(
        world.attribution_window_hours, world.delay_median_hours, world.delay_sigma, strict=True)])
    fits = np.append(in_window[channel[:-1]], 0.0)
    uniform_value, day_of = [], []
    for day, batch, _ in spy.decisions:
        expected = np.einsum("o,roa->ra", world.value, batch.true_rates) * fits - world.cost[batch.cost_row_idx]
        expected[:, catalog.null_arm] = 0.0
        uniform_value.append((expected * batch.mask).sum(axis=1) / batch.mask.sum(axis=1))
        day_of.append(np.full(batch.n_rows, day))
    uniform_value, day_of = np.concatenate(uniform_value), np.concatenate(day_of)
    early = day_of[log_rows.decision_id.astype(np.int64)] < n_days - 8
    assert early.sum() > 5000
    rows = log_rows.decision_id.astype(np.int64)[early]
    target = log_rows.allowed[early] / log_rows.allowed[early].sum(axis=1, keepdims=True)
    estimate = ips(log_rows.reward[early], log_rows.action[early], log_rows.propensity[early], target)
    weights = target[np.arange(rows.size), log_rows.action[early]] / log_rows.propensity[early]
    standard_error = np.std(weights * log_rows.reward[early], ddof=1) / np.sqrt(rows.size)
    truth = uniform_value[rows].mean()
    assert abs(estimate - truth) < 4 * standard_error, (estimate, truth, standard_error)
    assert abs(weights.mean() - 1) < 4 * weights.std(ddof=1) / np.sqrt(rows.size)
