"""The channel plan: break-even arithmetic, switching a channel off, and a small plan end to end."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sendwise.cli.main import main
from sendwise.models import load_world
from sendwise.models.domain import draw_population
from sendwise.models.sim.plan import break_even_mau, costly_channels, parse_maus, plan_channels

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
