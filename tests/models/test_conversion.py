"""Conversion value: the world's [conversion] table, the revenue objective, and the orders the simulator draws."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sendwise.models import REVENUE, REVENUE_UNIT, WORLDS_DIR, load_world, simulate
from sendwise.models.domain.population import segment_rate_table

SEED_TEXT = (WORLDS_DIR / "seed.toml").read_text()


def world_file(tmp_path: Path, extra: str = "", replace: tuple[str, str] | None = None) -> Path:
    """The seed world's file with ``extra`` TOML appended (and one ``replace`` of its text)."""
    text = SEED_TEXT if replace is None else SEED_TEXT.replace(*replace)
    path = tmp_path / "world.toml"
    path.write_text(text + extra)
    return path


def test_the_revenue_objective_adds_the_outcome_and_values_orders_instead_of_clicks():
    clicks = load_world("seed")
    revenue = clicks.with_objective("revenue")
    assert clicks.catalog.outcomes == ("click", "unsubscribe", "open") and clicks.objective == "clicks"
    assert revenue.catalog.outcomes == ("click", "unsubscribe", "open", REVENUE)
    assert dict(zip(revenue.catalog.outcomes, revenue.value.tolist(), strict=True)) == {
        "click": 0.0, "unsubscribe": -2.0, "open": 0.0, REVENUE: 0.2 * REVENUE_UNIT}
    assert revenue.economics.describe(revenue.catalog) == "unsubscribe -2, revenue 0.2 per USD, minus cost per message"
    assert clicks.with_objective("clicks") is clicks
    with pytest.raises(ValueError, match="unknown objective 'profit'; known: clicks, revenue"):
        clicks.with_objective("profit")
    with pytest.raises(ValueError, match="load it again"):
        revenue.with_objective("clicks")


def test_bad_conversion_tables_say_what_is_wrong(tmp_path):
    for replace, message in [(("value_per_usd = 0.2", ""), "missing key 'value_per_usd'"),
                             (("ecommerce = 0.05", "ecommerce = 1.5"), "rate must lie in"),
                             (("ecommerce = 100.0", "ecommerce = -1.0"), "cost must be a number >= 0")]:
        with pytest.raises(ValueError, match=message):
            load_world(world_file(tmp_path, replace=replace))
    with pytest.raises(ValueError, match="must stay a probability"):
        load_world(world_file(tmp_path, "[conversion.per_click_multiplier.ecommerce]\nsms = 30.0\n"))
    without = world_file(tmp_path, replace=("[conversion]", "[conversion_unused]"))
    with pytest.raises(ValueError, match="unknown key 'conversion_unused'"):
        load_world(without)


def test_a_world_without_conversions_cannot_optimise_revenue(tmp_path):
    text = SEED_TEXT[:SEED_TEXT.index("[conversion]")] + SEED_TEXT[SEED_TEXT.index("# Probability that a sent"):]
    path = tmp_path / "plain.toml"
    path.write_text(text)
    world = load_world(path)
    assert world.conversion is None
    with pytest.raises(ValueError, match="has no \\[conversion\\] table"):
        world.with_objective("revenue")


def test_the_revenue_rate_is_the_click_probability_times_orders_per_click_times_their_value():
    world = load_world("seed").with_objective("revenue")
    rates = segment_rate_table(world)
    catalog = world.catalog
    click_weight = world.click_value_multiplier
    industry = np.array([catalog.cell_parts(np.array([c]))[1][0] for c in range(catalog.n_cells)])
    arm = catalog.arm("email", 14)
    email = catalog.channel_index("email")
    clicks = rates[:, :, 0, arm] / click_weight[industry, email][:, None]
    expected = clicks * (world.conversion.per_click[industry, email]
                         * world.conversion.order_value[industry, email] / REVENUE_UNIT)[:, None]
    np.testing.assert_allclose(rates[:, :, -1, arm], expected, rtol=1e-12)
    assert np.all(rates[:, :, -1, catalog.null_arm] == 0.0)


def test_simulated_orders_follow_clicks_at_the_world_rate_and_value(tmp_path):
    rate, mean = 0.25, 40.0
    industries = ("ecommerce", "gaming", "fintech", "media", "travel")
    table = ("[conversion]\norder_value_shape = 2.0\nvalue_per_usd = 0.2\n[conversion.per_click]\n"
             + "".join(f"{i} = {rate}\n" for i in industries) + "[conversion.order_value]\n"
             + "".join(f"{i} = {mean}\n" for i in industries) + "\n")
    start, end = SEED_TEXT.index("[conversion]"), SEED_TEXT.index("# Probability that a sent")
    path = tmp_path / "flat.toml"
    path.write_text(SEED_TEXT[:start] + table + SEED_TEXT[end:])
    world = load_world(path).with_objective("revenue")
    run = simulate(world, ["static"], n_customers=8000, n_days=14, progress=False).runs[0].totals
    clicks, orders = run["clicks"], run["orders"]
    assert clicks > 500
    sd = np.sqrt(clicks * rate * (1 - rate))
    assert abs(orders - rate * clicks) < 4 * sd  # orders per click: the world's rate
    shape = world.conversion.order_value_shape
    assert abs(run["revenue"] / orders - mean) < 4 * mean / np.sqrt(shape * orders)  # gamma: sd = mean / sqrt(k)


def test_where_sms_brings_fewer_but_larger_orders_the_revenue_objective_sends_it_and_the_click_one_does_not(
        tmp_path):
    path = world_file(tmp_path, "\n[conversion.per_click_multiplier.ecommerce]\nsms = 0.5\n"
                                "[conversion.order_value_multiplier.ecommerce]\nsms = 8.0\n")
    world = load_world(path)
    catalog = world.catalog
    ecommerce = catalog.industries.index("ecommerce")
    sms = catalog.arm_channels() == catalog.channel_index("sms")

    def sms_share(objective: str) -> float:
        """Share of ecommerce segments (cells x weekdays) whose best net value is an SMS, knowing the true rates."""
        scored = world.with_objective(objective)
        rates = segment_rate_table(scored)
        region = np.array([catalog.cell_parts(np.array([c]))[0][0] for c in range(catalog.n_cells)])
        industry = np.array([catalog.cell_parts(np.array([c]))[1][0] for c in range(catalog.n_cells)])
        net = np.einsum("o,cwoa->cwa", scored.value, rates) - scored.cost[region][:, None, :]
        allowed = catalog.arm_mask(np.ones((catalog.n_cells, len(catalog.channels)), bool),
                                   scored.hour_allowed[region])
        net = np.where(allowed[:, None, :], net, -np.inf)
        best = net[industry == ecommerce].argmax(axis=-1)
        return float(sms[best].mean())

    assert sms_share("clicks") < 0.2 and sms_share("revenue") > 0.5
