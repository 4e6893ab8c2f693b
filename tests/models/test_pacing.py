"""Budgets with pacing: parsing, the dual update of the cost multiplier, its state, and a paced simulation."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendwise.cli.main import main
from sendwise.models import load_world
from sendwise.models.domain import DecisionBatch, parse_budgets
from sendwise.models.policies import Learner, Pacer, Sends, make_world_policy
from sendwise.models.policies.pacing import HOURS_PER_MONTH
from sendwise.models.sim.simulate import run_loop, simulate

WORLD = load_world("seed")
CATALOG = WORLD.catalog
SMS = CATALOG.channel_index("sms")
NA_CELL = CATALOG.cell("NA", "ecommerce", "cart_reminder")


def sms_sends(n: int, first_key: int = 0) -> Sends:
    """``n`` SMS messages in one NA cell, at hour 12."""
    return Sends(key=np.arange(first_key, first_key + n), cell_idx=np.full(n, NA_CELL),
                 arm=np.full(n, CATALOG.arm("sms", 12)), sent_at=np.zeros(n))


def test_budgets_parse_from_mappings_and_json_and_bad_ones_say_what_is_wrong():
    assert parse_budgets({"sms": {"per_month": 1000}}, CATALOG) == {"sms": 1000.0}
    assert parse_budgets('{"whatsapp": {"per_month": 12.5}}', CATALOG) == {"whatsapp": 12.5}
    assert parse_budgets(None, CATALOG) == {}
    for spec, message in [({"fax": {"per_month": 1}}, "unknown channel 'fax'; known: email"),
                          ({"sms": {"per_week": 1}}, "periods known: per_month"),
                          ({"sms": 1000}, "per_month"),
                          ({"sms": {"per_month": 0}}, "USD > 0"),
                          ({"sms": {"per_month": True}}, "USD > 0"),
                          ('{"sms": ', "must be JSON"),
                          ("[1, 2]", "map channels")]:
        with pytest.raises(ValueError, match=message):
            parse_budgets(spec, CATALOG)


def test_the_cli_rejects_bad_budgets_before_simulating(capsys):
    assert main(["simulate", "--budgets", '{"sms": {"per_day": 5}}', "--no-track", "--no-progress"]) == 2
    assert "periods known: per_month" in capsys.readouterr().err


def test_only_budgeted_channels_are_repriced_and_the_policy_keeps_its_own_cost():
    pacer = Pacer(CATALOG, {"sms": 100.0}, multiplier=3.0)
    arm_multiplier = pacer.arm_multiplier()
    channel = CATALOG.arm_channels()
    assert np.all(arm_multiplier[channel == SMS] == 3.0) and np.all(arm_multiplier[channel != SMS] == 1.0)
    policy = make_world_policy("hier_ts", WORLD, seed=0)
    cost = policy.cost.copy()
    with pacer.pricing(policy):
        np.testing.assert_allclose(policy.cost, cost * arm_multiplier)
    np.testing.assert_array_equal(policy.cost, cost)


def test_a_spent_budget_removes_the_channel_and_keeps_every_other_option():
    pacer = Pacer(CATALOG, {"sms": 0.05})
    batch = DecisionBatch(cell_idx=np.array([NA_CELL]), cost_row_idx=np.array([0]),
                          mask=np.ones((1, CATALOG.n_arms), dtype=bool))
    assert pacer.restrict(batch) is batch
    pacer.record(sms_sends(10), WORLD.cost)  # 10 x $0.011 in NA
    assert pacer.spent[SMS] == pytest.approx(0.11) and pacer.exhausted()[SMS]
    mask = pacer.restrict(batch).mask[0]
    assert not mask[CATALOG.arm_channels() == SMS].any()
    assert mask[CATALOG.arm_channels() != SMS].all() and mask[CATALOG.null_arm]


def paced_day(pacer: Pacer, day: int, n_messages: int) -> None:
    """One day of the loop: ``n_messages`` SMS sent, then the clock moves to the day's end."""
    pacer.record(sms_sends(n_messages, first_key=1000 * day), WORLD.cost)
    pacer.advance(24.0 * (day + 1))


def test_spending_ahead_of_pace_raises_the_price_and_behind_lowers_it_to_no_less_than_one():
    pacer = Pacer(CATALOG, {"sms": 30 * 0.11})  # even pace: 10 NA messages a day
    pacer.advance(0.0)
    paced_day(pacer, 0, 40)
    ahead = pacer.multiplier[SMS]
    assert ahead > 1.0
    for day in range(1, 6):  # nothing sent while ahead: the price comes down again
        paced_day(pacer, day, 0)
    assert 1.0 <= pacer.multiplier[SMS] < ahead
    assert np.all(np.delete(pacer.multiplier, SMS) == 1.0)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=40))
def test_multipliers_stay_at_least_one_and_unbudgeted_channels_are_never_repriced(daily_messages):
    pacer = Pacer(CATALOG, {"sms": 30 * 0.11})
    pacer.advance(0.0)
    for day, n in enumerate(daily_messages):
        paced_day(pacer, day, n)
        assert pacer.multiplier[SMS] >= 1.0 and np.all(np.delete(pacer.multiplier, SMS) == 1.0)
        assert pacer.spent[SMS] <= sum(daily_messages) * 0.011 + 1e-9


def test_a_new_month_starts_with_nothing_spent_and_the_price_the_last_one_learned():
    pacer = Pacer(CATALOG, {"sms": 1.0})
    pacer.advance(0.0)
    paced_day(pacer, 0, 100)  # $1.10
    assert pacer.exhausted()[SMS]
    price = pacer.multiplier[SMS]
    pacer.advance(HOURS_PER_MONTH + 1.0)
    assert pacer.month == 1 and pacer.spent[SMS] == 0.0 and not pacer.exhausted()[SMS]
    assert pacer.multiplier[SMS] >= price  # the step that closed the month was spent ahead of pace


def test_the_pacer_state_round_trips_through_json_and_then_moves_the_same():
    pacer = Pacer(CATALOG, {"sms": 30 * 0.11, "whatsapp": 5.0})
    pacer.advance(0.0)
    for day, n in enumerate([40, 3, 25]):
        paced_day(pacer, day, n)
    restored = Pacer.from_dict(CATALOG, json.loads(json.dumps(pacer.to_dict())))
    for name in ("multiplier", "spent", "step_start"):
        np.testing.assert_array_equal(getattr(restored, name), getattr(pacer, name))
    assert (restored.month, restored.clock, restored.step_began, restored.budgets) == (
        pacer.month, pacer.clock, pacer.step_began, pacer.budgets)
    for each in (pacer, restored):
        paced_day(each, 3, 30)
    np.testing.assert_array_equal(restored.multiplier, pacer.multiplier)
    state = pacer.to_dict()
    del state["spent"]["sms"]
    with pytest.raises(ValueError, match="must name every channel"):
        Pacer.from_dict(CATALOG, state)


@given(st.lists(st.integers(0, 60), min_size=1, max_size=10), st.sampled_from([1, 6, 60, 24 * 60]))
def test_a_clock_that_ticks_often_moves_the_price_once_a_day_like_a_daily_one(daily_messages, ticks_per_day):
    daily, ticking = Pacer(CATALOG, {"sms": 30 * 0.11}), Pacer(CATALOG, {"sms": 30 * 0.11})
    for pacer in (daily, ticking):
        pacer.advance(0.0)
    cost = np.full((len(CATALOG.regions), CATALOG.n_arms), 0.011)
    for day, n in enumerate(daily_messages):
        for pacer in (daily, ticking):
            pacer.record(sms_sends(n), cost)
        for tick in range(1, ticks_per_day + 1):
            ticking.advance(24.0 * (day + tick / ticks_per_day))
            if tick < ticks_per_day:
                assert ticking.multiplier[SMS] == daily.multiplier[SMS]  # within the day: the price holds
        daily.advance(24.0 * (day + 1))
        np.testing.assert_allclose(ticking.multiplier, daily.multiplier, rtol=1e-12)


def test_a_refund_takes_back_this_months_spend_and_never_goes_below_nothing():
    pacer = Pacer(CATALOG, {"sms": 10.0})
    pacer.advance(HOURS_PER_MONTH + 5.0)
    cost = np.full((len(CATALOG.regions), CATALOG.n_arms), 0.5)
    now = sms_sends(4)
    now = Sends(now.key, now.cell_idx, now.arm, np.full(4, HOURS_PER_MONTH + 5.0))
    pacer.record(now, cost)
    last_month = Sends(now.key[:1], now.cell_idx[:1], now.arm[:1], np.array([HOURS_PER_MONTH - 1.0]))
    pacer.refund(last_month, cost, np.ones(1))  # counted in the month before: nothing of this one comes back
    assert pacer.spent[SMS] == pytest.approx(2.0)
    pacer.refund(now, cost, np.array([1.0, 1.0, 1.0, -1.0]))
    assert pacer.spent[SMS] == pytest.approx(1.0)
    pacer.refund(now, cost, np.full(4, 1.0))
    assert pacer.spent[SMS] == 0.0
    (status,) = pacer.status()
    assert (status.channel, status.spent, status.exhausted) == ("sms", 0.0, False)
    assert status.pace == pytest.approx(10.0 * 5.0 / HOURS_PER_MONTH)


def even_pacer(budget: float, hours: float = 0.0, spent: float = 0.0) -> Pacer:
    """An SMS-budgeted pacer whose clock is at ``hours`` with ``spent`` USD of the month spent."""
    pacer = Pacer(CATALOG, {"sms": budget})
    pacer.advance(hours)
    pacer.spent[SMS] = spent
    return pacer


def test_a_batch_may_spend_up_to_one_day_of_pace_ahead_of_the_line():
    pacer = even_pacer(30.0, hours=48.0, spent=1.5)  # the line is at $2 after two days
    allowance = pacer.allowance()
    assert allowance[SMS] == pytest.approx(3.0 - 1.5) and np.isinf(np.delete(allowance, SMS)).all()
    assert even_pacer(30.0, hours=48.0, spent=5.0).allowance()[SMS] == 0.0
    assert np.isinf(Pacer(CATALOG, {"sms": 30.0}, ahead_hours=None).allowance()).all()


def elastic_spend(scale: float, elasticity: float, calls: list[np.ndarray] | None = None):
    """Expected SMS spend ``scale × multiplier^-elasticity``; other channels spend nothing."""
    def spend(multiplier: np.ndarray) -> np.ndarray:
        if calls is not None:
            calls.append(multiplier.copy())
        out = np.zeros_like(multiplier)
        out[SMS] = scale * multiplier[SMS] ** -elasticity
        return out
    return spend


def test_a_batch_that_fits_its_allowance_keeps_the_pacers_price_without_estimating_its_spend():
    pacer = even_pacer(30.0)
    calls: list[np.ndarray] = []
    most = np.zeros(len(CATALOG.channels))
    most[SMS] = 0.5  # every row on its dearest SMS arm: still under a day's $1
    np.testing.assert_array_equal(pacer.batch_multiplier(most, elastic_spend(0.5, 1.0, calls)), pacer.multiplier)
    assert calls == []


@given(scale=st.floats(0.01, 1e3), elasticity=st.floats(0.3, 3.0), spent=st.floats(0.0, 2.5))
def test_an_overspending_batch_is_priced_just_high_enough_to_fit(scale, elasticity, spent):
    pacer = even_pacer(30.0, hours=24.0, spent=spent)  # allowance: $2 - spent
    allowance = pacer.allowance()[SMS]
    most = np.full(len(CATALOG.channels), 1e6)
    multiplier = pacer.batch_multiplier(most, elastic_spend(scale, elasticity))
    assert np.all(np.delete(multiplier, SMS) == 1.0) and multiplier[SMS] >= pacer.multiplier[SMS]
    fits = scale * multiplier[SMS] ** -elasticity <= allowance
    if scale <= allowance:
        assert multiplier[SMS] == 1.0
    elif allowance > 0 and multiplier[SMS] < 1e4:
        assert fits
        # within one halving of the lowest price that fits (bracketing by e, then halving in log space)
        lowest = (scale / allowance) ** (1 / elasticity)
        assert np.log(multiplier[SMS]) - np.log(lowest) <= 2.0 ** -(10 - np.ceil(np.log(lowest)) - 1) + 1e-9
    else:
        assert multiplier[SMS] == pytest.approx(1e4)


def test_a_cold_policy_spends_about_a_day_of_pace_on_its_first_day():
    free = simulate(WORLD, ["hier_ts"], n_customers=2000, n_days=1, seeds=[0], progress=False).runs[0]
    budget = 5 * free.totals["cost_sms"]  # unlimited, day 0 would spend six days of pace
    first_day = []
    for ahead_hours in (24.0, None):
        learner = Learner(make_world_policy("hier_ts", WORLD, seed=0),
                          pacer=Pacer(CATALOG, {"sms": budget}, ahead_hours=ahead_hours))
        run = run_loop(WORLD, learner, n_customers=2000, n_days=1, seed=0, name="paced")
        first_day.append(run.daily["cost_sms"][0])
    held, unlimited = first_day
    assert held <= 1.3 * budget / 30 < 3 * budget / 30 < unlimited


def paced_run(budget: float, seed: int = 0) -> tuple[Learner, np.ndarray]:
    learner = Learner(make_world_policy("hier_ts", WORLD, seed=seed),
                      pacer=Pacer(CATALOG, {"sms": budget}))
    run = run_loop(WORLD, learner, n_customers=800, n_days=30, seed=seed, name="paced")
    return learner, run.daily["cost_sms"]


def test_a_paced_month_stays_within_its_budget_but_for_at_most_one_day_and_replays_to_the_same_price():
    free = simulate(WORLD, ["hier_ts"], n_customers=800, n_days=30, seeds=[0], progress=False).runs[0]
    unconstrained = free.daily["cost_sms"]
    budget = 0.5 * unconstrained.sum()
    learner, spend = paced_run(budget)
    assert spend.sum() <= budget + spend.max()  # a spent budget switches SMS off from the next day
    assert spend.sum() < unconstrained.sum()
    assert spend[-10:].sum() > 0  # paced, not spent up front and starved at the end
    replayed, again = paced_run(budget)
    np.testing.assert_array_equal(again, spend)
    assert replayed.pacer.to_dict() == learner.pacer.to_dict()


def test_simulate_takes_budgets_and_checks_them():
    result = simulate(WORLD, ["static"], n_customers=300, n_days=2, seeds=[0], progress=False,
                      budgets={"sms": {"per_month": 0.01}})
    assert result.runs[0].totals["cost_sms"] <= 0.01 + result.runs[0].daily["cost_sms"].max()
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        simulate(WORLD, ["static"], n_customers=10, n_days=1, progress=False, budgets={"fax": {"per_month": 1}})


def test_a_world_file_sets_budgets_that_simulate_paces_unless_told_otherwise(tmp_path):
    text = WORLD.path.read_text()
    budgeted = tmp_path / "budgeted.toml"
    budgeted.write_text(text + "\n[budget.sms]\nper_month = 0.01\n")
    world = load_world(budgeted)
    assert world.budgets == {"sms": 0.01} and WORLD.budgets == {}
    paced = simulate(world, ["hier_ts"], n_customers=500, n_days=3, seeds=[0], progress=False).runs[0]
    free = simulate(world, ["hier_ts"], n_customers=500, n_days=3, seeds=[0], progress=False, budgets={}).runs[0]
    sms_cost = WORLD.cost[:, CATALOG.arm_channels() == SMS]
    assert paced.totals["cost_sms"] <= 0.01 + sms_cost.max()  # a cent a month: a message at most, then off
    assert free.daily["cost_sms"].all() and free.totals["cost_sms"] > 5 * (0.01 + sms_cost.max())
    (tmp_path / "bad.toml").write_text(text + "\n[budget.sms]\nper_week = 5\n")
    with pytest.raises(ValueError, match=r"bad.toml: \[budget\] budget of 'sms' must be"):
        load_world(tmp_path / "bad.toml")
