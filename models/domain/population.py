"""Customers of a simulated world: who they are, what triggers a campaign, and their true rates today.

A ``Population`` is drawn once per seed (region, industry, lifecycle stage, RFM segment, reachability,
latent channel affinity, preferred-hour shift). ``ContactHistory`` is what changes as messages go out:
sends per channel over the trailing week (fatigue, frequency caps) and unsubscribes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sendwise import engine

from .catalog import N_HOURS, OPEN, REVENUE
from .world import N_WEEKDAYS, World

FATIGUE_WINDOW_DAYS = 7


@dataclass(frozen=True)
class Population:
    """Customer attributes, one row per customer; indices follow ``world.catalog`` and the world's tables."""

    region_idx: np.ndarray     # int64 (n_customers,)
    industry_idx: np.ndarray   # int64 (n_customers,)
    lifecycle_idx: np.ndarray  # int64 (n_customers,), into world.lifecycle_stages
    rfm_idx: np.ndarray        # int64 (n_customers,), into world.rfm_segments
    reachable: np.ndarray      # bool (n_customers, n_channels): addressable and opted in at the start
    affinity: np.ndarray       # float64 (n_customers, n_channels): latent click multiplier, mean 1
    hour_shift: np.ndarray     # int64 (n_customers,): preferred hours = the region's curve shifted by this

    @property
    def n_customers(self) -> int:
        return int(self.region_idx.shape[0])


def draw_population(world: World, n_customers: int, seed: int) -> Population:
    """Draw ``n_customers`` customers from the world's shares; the same seed gives the same customers."""
    if int(n_customers) < 1:
        raise ValueError(f"`n_customers` must be >= 1; got {n_customers!r}")
    rng = np.random.default_rng([int(seed), 0])
    n, n_channels = int(n_customers), len(world.catalog.channels)
    region = rng.choice(len(world.region_share), size=n, p=world.region_share)
    sigma = world.affinity_sigma
    shifts, shift_probs = world.hour_shift_distribution()
    return Population(
        region_idx=region.astype(np.int64),
        industry_idx=rng.choice(len(world.industry_share), size=n, p=world.industry_share).astype(np.int64),
        lifecycle_idx=rng.choice(len(world.lifecycle_share), size=n, p=world.lifecycle_share).astype(np.int64),
        rfm_idx=rng.choice(len(world.rfm_share), size=n, p=world.rfm_share).astype(np.int64),
        reachable=rng.random((n, n_channels)) < world.reach[region],
        affinity=np.exp(sigma * rng.standard_normal((n, n_channels)) - sigma**2 / 2),
        hour_shift=rng.choice(shifts, size=n, p=shift_probs).astype(np.int64),
    )


def draw_triggers(world: World, population: Population, day: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Customers whose campaign triggers on ``day`` (sorted, int64) and each one's campaign type (int64).

    Depends only on the seed and the day, so every policy run with the same seed sees the same triggers.
    """
    rng = np.random.default_rng([int(seed), 1, int(day)])
    customers = np.flatnonzero(rng.random(population.n_customers) < world.trigger_probability[population.lifecycle_idx])
    cdf = np.cumsum(world.campaign_weights, axis=1)[population.lifecycle_idx[customers]]
    campaign = (rng.random(customers.size)[:, None] >= cdf).sum(axis=1)
    return customers.astype(np.int64), np.minimum(campaign, cdf.shape[1] - 1).astype(np.int64)


class ContactHistory:
    """Sends per customer and channel over the trailing week, and which channels each customer left."""

    def __init__(self, n_customers: int, n_channels: int) -> None:
        self.sends = np.zeros((FATIGUE_WINDOW_DAYS, n_customers, n_channels), dtype=np.int16)
        self.unsubscribed = np.zeros((n_customers, n_channels), dtype=np.bool_)

    def start_day(self, day: int) -> None:
        """Forget the sends of ``day - 7``, so ``recent`` covers days ``day-6 .. day-1``."""
        self.sends[day % FATIGUE_WINDOW_DAYS] = 0

    def recent(self, customers: np.ndarray) -> np.ndarray:
        """Messages per channel in the trailing week, int64 (n_rows, n_channels)."""
        return self.sends[:, customers].sum(axis=0, dtype=np.int64)

    def record(self, day: int, customers: np.ndarray, channels: np.ndarray) -> None:
        """Count one message on ``channels[i]`` to ``customers[i]`` on ``day``."""
        np.add.at(self.sends[day % FATIGUE_WINDOW_DAYS], (customers, channels), 1)


def allowed_channels(world: World, population: Population, history: ContactHistory, customers: np.ndarray,
                     recent: np.ndarray) -> np.ndarray:
    """Channels each customer may get a message on, bool (n_rows, n_channels).

    Reachable, not unsubscribed, below the channel's weekly cap and below the total weekly cap.
    Quiet hours are per hour; ``Catalog.arm_mask(..., world.hour_allowed[region])`` adds them.
    """
    under_total_cap = recent.sum(axis=1) < world.cap_per_week_total
    return (population.reachable[customers] & ~history.unsubscribed[customers]
            & (recent < world.cap_per_week) & under_total_cap[:, None])


def customer_rates(world: World, population: Population, customers: np.ndarray, campaign_idx: np.ndarray,
                   recent: np.ndarray, weekday: int) -> tuple[np.ndarray, np.ndarray]:
    """Each customer's true rates right now and the value weight of a click on each channel.

    Returns ``rates`` float64 (n_rows, n_outcomes, n_arms): outcome 0 is the click rate weighted by the
    click's value (``click_value_multiplier``, capped at 1), outcome 1 the unsubscribe probability and, in
    a world that reports opens, outcome 2 the open probability, and the revenue outcome last when the
    world's objective is revenue (``with_signals``); and ``click_weight``
    float64 (n_rows, n_channels), so the click probability is ``rates[:, 0] / weight``.
    """
    region, industry = population.region_idx[customers], population.industry_idx[customers]
    click_fatigue, unsubscribe_fatigue = engine.fatigue_multipliers(
        recent, world.fatigue_click_power, world.fatigue_unsubscribe_power, world.cross_channel_scale,
        world.cross_channel_power, world.lift[industry, campaign_idx])
    responsiveness = world.rfm_engagement[population.rfm_idx[customers]][:, None] * population.affinity[customers]
    scale = _segment_scale(world, region, industry, campaign_idx, weekday) * responsiveness * click_fatigue
    unsubscribe = np.minimum(1.0, world.unsubscribe_hazard[industry] * unsubscribe_fatigue)
    rates = engine.customer_rates(scale, unsubscribe, world.hour_curves, region, population.hour_shift[customers],
                                  world.catalog.arm_channels(), world.catalog.arm_hours())
    click_weight = world.click_value_multiplier[industry]
    return with_signals(world, rates, click_weight, industry), click_weight


def with_signals(world: World, rates: np.ndarray, click_weight: np.ndarray, industry: np.ndarray) -> np.ndarray:
    """``rates`` (n_rows, 2, n_arms) with the open probability appended when the world reports opens, then
    the expected order per message (in ``REVENUE_UNIT``) when its objective is revenue.

    An open is as likely as ``open_per_click`` clicks (capped at 1): the same customer, hour, fatigue and
    affinity move both, and every click is an open (``_WorldRun`` draws them nested). An order follows a
    click with the industry and channel's ``per_click`` probability, worth their mean ``order_value``.
    """
    outcomes = world.catalog.outcomes
    if OPEN not in outcomes and REVENUE not in outcomes:
        return rates
    channel = world.catalog.arm_channels()
    sends = channel >= 0
    clicks = np.zeros_like(rates[:, :1])
    clicks[:, 0, sends] = rates[:, 0, sends] / click_weight[:, channel[sends]]
    signals = [rates]
    if OPEN in outcomes:
        assert world.open_per_click is not None
        signals.append(np.minimum(1.0, clicks * np.append(world.open_per_click, 0.0)[channel]))
    if REVENUE in outcomes:
        assert world.conversion is not None
        per_click = world.conversion.revenue_rate(industry[:, None], np.maximum(channel, 0)[None, :])
        signals.append(np.minimum(1.0, clicks * np.where(sends, per_click, 0.0)[:, None, :]))
    return np.concatenate(signals, axis=1)


def segment_rate_table(world: World) -> np.ndarray:
    """Expected rates of a fresh customer in each cell on each weekday, float64 (n_cells, 7, n_outcomes, n_arms).

    Averages over RFM segments, channel affinity (mean 1) and preferred-hour shifts; no fatigue yet.
    This is what the segment oracle knows.
    """
    catalog = world.catalog
    shape = (len(catalog.regions), len(catalog.industries), len(catalog.campaign_types))
    cell = np.repeat(np.arange(catalog.n_cells), N_WEEKDAYS)
    weekday = np.tile(np.arange(N_WEEKDAYS), catalog.n_cells)
    region, industry, campaign = (np.asarray(x, np.int64) for x in np.unravel_index(cell, shape))
    fresh = np.zeros((cell.size, len(catalog.channels)), np.int64)
    click_fatigue, _ = engine.fatigue_multipliers(fresh, world.fatigue_click_power, world.fatigue_unsubscribe_power,
                                                  world.cross_channel_scale, world.cross_channel_power,
                                                  world.lift[industry, campaign])
    mean_responsiveness = float(world.rfm_share @ world.rfm_engagement)
    scale = _segment_scale(world, region, industry, campaign, weekday) * mean_responsiveness * click_fatigue
    rates = engine.customer_rates(scale, world.unsubscribe_hazard[industry], world.expected_hour_curves(), region,
                                  np.zeros(cell.size, np.int64), catalog.arm_channels(), catalog.arm_hours())
    rates = with_signals(world, rates, world.click_value_multiplier[industry], industry)
    return rates.reshape(catalog.n_cells, N_WEEKDAYS, len(catalog.outcomes), catalog.n_arms)


def _segment_scale(world: World, region: np.ndarray, industry: np.ndarray, campaign: np.ndarray,
                   weekday: int | np.ndarray) -> np.ndarray:
    """Value-weighted click rate at the hour curve's peak before customer effects, float64 (n_rows, n_channels)."""
    day_factor = world.day_of_week[:, weekday].T if np.ndim(weekday) else world.day_of_week[:, weekday]
    return (world.engagement[industry] * world.region_multiplier[region] * world.delivery * day_factor
            * world.campaign_multiplier[campaign][:, None] * world.click_value_multiplier[industry])


PriorSource = Literal["world", "perturbed"]


def world_prior(world: World, trials: float, *, source: PriorSource = "world",
                seed: int = 0, sigma: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Informative prior pseudo-counts (successes, failures), float64 (n_cells, n_outcomes, n_arms), for a cold start.

    ``trials`` fresh-customer sends per cell and arm at the world's expected rates (``segment_rate_table``
    averaged over weekdays), so a new server prices every option by the world file's sourced numbers
    instead of Beta(1, 1), whose unsubscribe rate of 1/2 makes every message look ruinous. The
    no-message arm gets none.

    ``source="perturbed"`` is for benchmarks scored on this very world, which must not learn its truth
    from their prior: each cell's rates are averaged over the hours of each channel (no hour curve) and
    multiplied by lognormal noise of ``sigma`` per cell, outcome and channel (drawn from ``seed``).
    """
    if not (np.isfinite(trials) and trials >= 0):
        raise ValueError(f"`trials` must be a finite number >= 0; got {trials!r}")
    if source not in ("world", "perturbed"):
        raise ValueError(f"`source` must be 'world' or 'perturbed'; got {source!r}")
    catalog = world.catalog
    rates = segment_rate_table(world).mean(axis=1)
    if source == "perturbed":
        n_channels = len(catalog.channels)
        by_channel = rates[:, :, :-1].reshape(*rates.shape[:2], n_channels, N_HOURS).mean(axis=3)
        noise = np.random.default_rng([seed, 11]).lognormal(0.0, sigma, by_channel.shape)
        rates = np.concatenate([np.repeat(by_channel * noise, N_HOURS, axis=2), rates[:, :, -1:]], axis=2)
    rates = np.clip(rates, 0.0, 1.0)
    sends = np.full(catalog.n_arms, float(trials))
    sends[catalog.null_arm] = 0.0
    return sends * rates, sends * (1.0 - rates)
