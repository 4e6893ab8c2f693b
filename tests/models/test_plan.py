"""The channel plan: break-even arithmetic, switching a channel off, and a small plan end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendwise.cli.main import main
from sendwise.models import N_HOURS, Catalog, Economics, load_world
from sendwise.models.domain import draw_population
from sendwise.models.ope.logged import LoggedFeedback
from sendwise.models.policies.base import Posterior
from sendwise.models.sim.plan import break_even_mau, costly_channels, parse_maus, plan_channels, plan_from_posterior

SEED_WORLD = load_world("seed")


def test_break_even_on_known_numbers():
    # $1,000 a month against 1 cent per customer a month: 100,000 customers; the interval's ends swap.
    assert break_even_mau(1000.0, (0.01, 0.005, 0.02)) == (100_000.0, 50_000.0, 200_000.0)
    assert break_even_mau(100.0, (0.004, 0.001, 0.008)) == pytest.approx((25_000.0, 12_500.0, 100_000.0))


def test_a_gain_that_is_not_positive_never_breaks_even_and_a_free_channel_always_does():
    assert break_even_mau(1000.0, (0.01, -0.001, 0.02)) == (100_000.0, 50_000.0, math.inf)
    assert break_even_mau(1000.0, (-0.01, -0.02, 0.0)) == (math.inf, math.inf, math.inf)
    assert break_even_mau(0.0, (-0.01, -0.02, 0.0)) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(("fixed", "gain", "message"), [
    (-1.0, (0.01, 0.0, 0.02), "fixed_monthly_cost"),
    (math.nan, (0.01, 0.0, 0.02), "fixed_monthly_cost"),
    (10.0, (0.01, 0.02, 0.03), "low <= mean <= high"),
])
def test_break_even_refuses_bad_input(fixed, gain, message):
    with pytest.raises(ValueError, match=message):
        break_even_mau(fixed, gain)


@given(fixed=st.floats(1.0, 1e5), gains=st.lists(st.floats(1e-4, 10.0), min_size=3, max_size=3))
def test_the_gain_times_the_break_even_mau_is_the_fixed_cost(fixed, gains):
    low, mean, high = sorted(gains)
    be_mean, be_low, be_high = break_even_mau(fixed, (mean, low, high))
    assert be_low <= be_mean <= be_high
    assert mean * be_mean == pytest.approx(fixed)
    assert high * be_low == pytest.approx(fixed) and low * be_high == pytest.approx(fixed)


def test_mau_lists_parse_and_bad_ones_say_what_to_write():
    assert parse_maus("500000, 5000,50_000,5000") == [5000, 50_000, 500_000]
    for text in ("", " , ", "5000,abc", "0", "-5", "5.5", "1e5"):
        with pytest.raises(ValueError, match="--mau"):
            parse_maus(text)


def test_the_cli_rejects_a_bad_mau_before_simulating(capsys):
    assert main(["plan", "--mau", "5000,lots"]) == 2
    assert "--mau takes whole numbers" in capsys.readouterr().err


def test_switching_a_channel_off_keeps_every_other_draw_of_the_population():
    assert costly_channels(SEED_WORLD) == ["email", "sms", "whatsapp"]
    without = SEED_WORLD.without_channels(["sms"])
    sms = SEED_WORLD.catalog.channels.index("sms")
    assert not without.reach[:, sms].any()
    np.testing.assert_array_equal(np.delete(without.reach, sms, axis=1), np.delete(SEED_WORLD.reach, sms, axis=1))
    before, after = draw_population(SEED_WORLD, 500, 3), draw_population(without, 500, 3)
    assert not after.reachable[:, sms].any()
    np.testing.assert_array_equal(np.delete(after.reachable, sms, axis=1), np.delete(before.reachable, sms, axis=1))
    np.testing.assert_array_equal(after.affinity, before.affinity)
    with pytest.raises(ValueError, match="unknown channel 'fax'; known: email"):
        SEED_WORLD.without_channels(["fax"])


@pytest.fixture(scope="module")
def small_plan():
    return plan_channels(SEED_WORLD, [1000, 100_000], channels=["sms", "whatsapp"], n_customers=400, n_days=3,
                         seeds=(0, 1), progress=False)


def test_a_plan_is_gain_times_mau_minus_the_fixed_cost_at_every_size(small_plan):
    assert [c.channel for c in small_plan.channels] == ["sms", "whatsapp"]
    for channel in small_plan.channels:
        assert channel.fixed_monthly_cost == SEED_WORLD.fixed_monthly_cost[SEED_WORLD.catalog.channels.index(
            channel.channel)]
        for mau in small_plan.maus:
            net, difference = channel.net_of_fixed[mau], channel.with_channel[mau][0] - channel.without_channel[mau][0]
            assert net[0] == pytest.approx(difference - channel.fixed_monthly_cost)
            assert net == pytest.approx(tuple(g * mau - channel.fixed_monthly_cost for g in channel.gain_per_customer))
            assert net[1] <= net[0] <= net[2]
        assert channel.break_even_mau == break_even_mau(channel.fixed_monthly_cost, channel.gain_per_customer)
    # Every channel's "with" runs are the same runs: the whole-catalog population.
    assert small_plan.channels[0].with_channel == small_plan.channels[1].with_channel
    json.dumps(small_plan.to_dict(), allow_nan=False)


def test_plan_refuses_what_it_cannot_plan():
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        plan_channels(SEED_WORLD, [1000], channels=["fax"], n_customers=10, n_days=1, progress=False)
    with pytest.raises(ValueError, match="maus"):
        plan_channels(SEED_WORLD, [0], n_customers=10, n_days=1, progress=False)


def test_the_plan_command_prints_the_table_and_writes_json_and_a_plot(tmp_path, capsys):
    json_path, png = tmp_path / "plan.json", tmp_path / "plan.png"
    assert main(["plan", "--mau", "5000,50000", "--channels", "sms", "--customers", "300", "--days", "2",
                 "--seeds", "2", "--json", str(json_path), "--out", str(png), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "break-even MAU" in out and "scaled linearly to each MAU" in out and "50,000" in out
    written = json.loads(json_path.read_text())
    assert [c["channel"] for c in written["channels"]] == ["sms"]
    assert set(written["channels"][0]["net_of_fixed_cost"]) == {"5000", "50000"}
    assert png.stat().st_size > 0


# The plan of a learned posterior: each logged decision earns the best allowed arm, with and without a channel.
TWO_CHANNELS = Catalog(channels=("email", "sms"), regions=("NA",), industries=("ecommerce",),
                       campaign_types=("broadcast",))
VALUE = np.array([1.0, -2.0])  # a click, an unsubscribe


def sharp_posterior(click: np.ndarray, strength: float = 1e9) -> Posterior:
    """A posterior so concentrated that every draw is ``click`` (n_arms,) and no unsubscribe."""
    rates = np.maximum(np.stack([click, np.zeros_like(click)])[None], 1e-9)  # (1 cell, 2 outcomes, n_arms)
    return Posterior(rates * strength, (1.0 - rates) * strength)


def planned_log(allowed: np.ndarray, customers: int, days: float) -> LoggedFeedback:
    """A log of ``len(allowed)`` decisions in the one cell, of ``customers`` customers over ``days``."""
    n = len(allowed)
    start = np.datetime64("2026-01-01T00:00:00")
    return LoggedFeedback(
        action=np.full(n, TWO_CHANNELS.null_arm), propensity=np.ones(n), reward=np.zeros(n), catalog=TWO_CHANNELS,
        timestamp=start + (np.linspace(0.0, days * 86_400, n)).astype("timedelta64[s]"),
        context=pd.DataFrame({"region": ["NA"] * n, "industry": ["ecommerce"] * n, "campaign_type": ["broadcast"] * n}),
        allowed=allowed, experiment=pd.DataFrame({"customer": [f"c{i % customers}" for i in range(n)]}))


def economics(email_cost: float = 0.001, sms_cost: float = 0.05) -> Economics:
    cost = np.append(np.repeat([email_cost, sms_cost], N_HOURS), 0.0)[None]
    return Economics(VALUE, cost)


def test_a_posterior_plan_is_the_best_arms_difference_summed_over_the_log():
    click = np.append(np.r_[np.full(N_HOURS, 0.02), np.full(N_HOURS, 0.01)], 0.0)
    click[TWO_CHANNELS.arm("sms", 10)] = 0.10  # SMS at 10:00 nets 0.05 a message; e-mail's best nets 0.019
    log = planned_log(np.ones((100, TWO_CHANNELS.n_arms), dtype=np.bool_), customers=10, days=30)
    plan = plan_from_posterior(sharp_posterior(click), economics(), log, {"email": 0.0, "sms": 100.0}, [100, 1000],
                               n_draws=20)
    (sms,) = plan.channels
    assert sms.channel == "sms"  # email's fixed cost is zero here: nothing to plan for
    gain = (0.05 - 0.019) * 100 / 10  # per decision, times 10 decisions per customer in the 30 days
    assert sms.gain_per_customer == pytest.approx((gain, gain, gain), rel=1e-3)
    assert sms.break_even_mau[0] == pytest.approx(100.0 / gain, rel=1e-3)
    assert sms.with_channel[1000][0] == pytest.approx(0.05 * 10 * 1000, rel=1e-3)
    assert sms.net_of_fixed[1000][0] == pytest.approx(gain * 1000 - 100.0, rel=1e-3)
    json.dumps(plan.to_dict(), allow_nan=False)
    # Where SMS was not allowed (no consent, quiet hours), it adds nothing: half the rows, half the gain.
    half = log.allowed.copy()
    half[::2, TWO_CHANNELS.arm("sms", 0):TWO_CHANNELS.null_arm] = False
    halved = plan_from_posterior(sharp_posterior(click), economics(), planned_log(half, 10, 30), {"sms": 100.0},
                                 [100], n_draws=20)
    assert halved.channels[0].gain_per_customer[0] == pytest.approx(gain / 2, rel=1e-3)


def test_a_log_of_two_weeks_is_scaled_to_a_month():
    click = np.append(np.r_[np.full(N_HOURS, 0.02), np.full(N_HOURS, 0.2)], 0.0)
    allowed = np.ones((60, TWO_CHANNELS.n_arms), dtype=np.bool_)
    month = plan_from_posterior(sharp_posterior(click), economics(), planned_log(allowed, 6, 30), {"sms": 1.0}, [1])
    fortnight = plan_from_posterior(sharp_posterior(click), economics(), planned_log(allowed, 6, 15), {"sms": 1.0},
                                    [1])
    assert fortnight.channels[0].gain_per_customer[0] == pytest.approx(2 * month.channels[0].gain_per_customer[0])


@given(seed=st.integers(0, 2**32 - 1), strength=st.floats(2.0, 500.0))
def test_a_channel_never_loses_value_and_its_interval_holds_its_median(seed, strength):
    rng = np.random.default_rng(seed)
    click = rng.uniform(0.0, 0.2, TWO_CHANNELS.n_arms)
    posterior = Posterior(click[None, None].repeat(2, axis=1) * strength + 0.5,
                          (1 - click[None, None].repeat(2, axis=1)) * strength + 0.5)
    allowed = rng.random((30, TWO_CHANNELS.n_arms)) < 0.5
    allowed[:, TWO_CHANNELS.null_arm] = True  # the log's action
    plan = plan_from_posterior(posterior, economics(sms_cost=float(rng.uniform(0, 0.1))),
                               planned_log(allowed, 5, 10), {"email": 10.0, "sms": 100.0}, [1000], n_draws=50,
                               random_state=seed)
    for channel in plan.channels:
        mean, low, high = channel.gain_per_customer
        assert 0.0 <= low <= mean <= high


def test_a_posterior_plan_refuses_a_log_it_cannot_read():
    click = np.full(TWO_CHANNELS.n_arms, 0.05)
    log = planned_log(np.ones((4, TWO_CHANNELS.n_arms), dtype=np.bool_), 2, 1)
    with pytest.raises(ValueError, match="does not fit the log's catalog"):
        plan_from_posterior(Posterior(np.ones((2, 2, 3)), np.ones((2, 2, 3))), economics(), log, {"sms": 1.0}, [1])
    with pytest.raises(ValueError, match="unknown channel 'fax'"):
        plan_from_posterior(sharp_posterior(click), economics(), log, {"fax": 1.0}, [1])
    with pytest.raises(ValueError, match="no fixed monthly cost for channel 'email'"):
        plan_from_posterior(sharp_posterior(click), economics(), log, {"sms": 1.0}, [1], channels=["email"])
    unrecorded = LoggedFeedback(action=log.action, propensity=log.propensity, reward=log.reward, catalog=TWO_CHANNELS,
                                timestamp=log.timestamp, context=log.context, experiment=log.experiment)
    with pytest.raises(ValueError, match="does not record the options"):
        plan_from_posterior(sharp_posterior(click), economics(), unrecorded, {"sms": 1.0}, [1])
