"""The channel plan: at which size does a channel with a fixed monthly cost pay for itself?

For each costly channel (a fixed monthly cost in the world, e.g. an SMS short code), the simulator
runs one policy on the same customers with every channel allowed and with that channel switched off
(``World.without_channels``; same seeds, so the runs differ by the channel alone). The channel's
**gain** is the paired difference of net value (clicks and unsubscribes valued, per-message costs
paid) per customer per month. Its fixed cost does not scale with size, so the channel pays off at

    break-even MAU = fixed monthly cost / gain per customer per month,

and at a given MAU it earns ``gain × MAU − fixed cost`` a month. Intervals are 95% bootstrap
intervals across seeds (``mean_interval``); the break-even interval maps the gain's interval through
``fixed / gain`` (unbounded when the gain's interval reaches zero).

Scaling: a population of ``n_customers`` is simulated and its per-customer values are multiplied by
each MAU, so every MAU row shares one simulation. A run lasts ``n_days`` and includes the policy's
learning from a cold start; its net value is converted to a 30-day month. What this leaves out: a
larger population gives the policy more data per segment, so it learns faster; the linear scaling
does not credit that.

``plan_from_posterior`` answers the same question of a learned posterior (a served model's) over the
decisions of a log: each decision earns its best allowed arm by the posterior, with and without the
channel, and the intervals are credible intervals over posterior draws. Both give a ``PlanResult``, so
one table and one plot serve both.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sendwise import engine

from ..domain import Economics, World, load_world
from ..intervals import mean_interval, seeds_caption
from ..ope.logged import LoggedFeedback
from ..policies.base import Posterior
from .progress import DayBar
from .simulate import PolicyRun, SimulationTask, run_tasks

DAYS_PER_MONTH = 30.0
DEFAULT_POLICY = "hier_ts"
Bounds = tuple[float, float, float]  # mean, low, high


@dataclass(frozen=True)
class ChannelPlan:
    """One costly channel: its gain per customer, its fixed cost, where it breaks even, and by MAU.

    Monthly USD throughout; every ``Bounds`` is (mean, lo95, hi95) across seeds.
    """

    channel: str
    fixed_monthly_cost: float
    gain_per_customer: Bounds         # net value per customer per month, with minus without the channel
    break_even_mau: Bounds            # fixed cost / gain; inf where the gain is not positive
    with_channel: dict[int, Bounds]   # MAU -> net value per month with every channel
    without_channel: dict[int, Bounds]  # MAU -> net value per month without this channel
    net_of_fixed: dict[int, Bounds]   # MAU -> gain × MAU − fixed cost


@dataclass(frozen=True)
class PlanResult:
    """The channel plan of a world: one ``ChannelPlan`` per costly channel, and how it was made.

    ``scaling`` says how the figures stand for each MAU and ``interval`` what the intervals span, each in
    one sentence for tables and files; ``settings`` are the inputs that made the plan (for JSON).
    """

    world: str
    policy: str
    maus: list[int]
    channels: list[ChannelPlan]
    scaling: str
    interval: str
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: settings, the scaling rule, and every channel's figures (``[mean, lo, hi]``)."""
        def by_mau(values: dict[int, Bounds]) -> dict[str, list[float]]:
            return {str(m): list(v) for m, v in values.items()}
        return {
            "world": self.world, "policy": self.policy, "maus": self.maus, **self.settings, "scaling": self.scaling,
            "interval": self.interval,
            "channels": [{"channel": c.channel, "fixed_monthly_cost": c.fixed_monthly_cost,
                          "gain_per_customer_month": list(c.gain_per_customer),
                          "break_even_mau": [_json_number(v) for v in c.break_even_mau],
                          "net_value_with": by_mau(c.with_channel), "net_value_without": by_mau(c.without_channel),
                          "net_of_fixed_cost": by_mau(c.net_of_fixed)} for c in self.channels],
        }


def costly_channels(world: World) -> list[str]:
    """The channels that charge a fixed monthly cost once used, in catalog order."""
    return [c for c, cost in zip(world.catalog.channels, world.fixed_monthly_cost, strict=True) if cost > 0]


def break_even_mau(fixed_monthly_cost: float, gain: Bounds) -> Bounds:
    """MAU at which ``gain`` (USD per customer per month: mean, low, high) pays ``fixed_monthly_cost``.

    ``fixed / gain`` is decreasing in the gain, so the interval's ends swap: the low end comes from the
    highest gain. A gain that is not positive never pays a positive fixed cost (``inf``).

    Examples
    --------
    >>> break_even_mau(1000.0, (0.01, 0.005, 0.02))
    (100000.0, 50000.0, 200000.0)
    >>> break_even_mau(1000.0, (0.01, -0.002, 0.02))
    (100000.0, 50000.0, inf)
    """
    if not math.isfinite(fixed_monthly_cost) or fixed_monthly_cost < 0:
        raise ValueError(f"`fixed_monthly_cost` must be a finite number >= 0; got {fixed_monthly_cost!r}")
    mean, low, high = (float(g) for g in gain)
    if not low <= mean <= high:
        raise ValueError(f"`gain` must be (mean, low, high) with low <= mean <= high; got {gain!r}")

    def mau(g: float) -> float:
        if fixed_monthly_cost == 0:
            return 0.0
        return fixed_monthly_cost / g if g > 0 else math.inf
    return mau(mean), mau(high), mau(low)


def parse_maus(text: str) -> list[int]:
    """``"5000,50000,500000"`` -> ``[5000, 50000, 500000]``: whole positive numbers, each once, ascending.

    >>> parse_maus("50000, 5000")
    [5000, 50000]
    """
    items = [t.strip().replace("_", "") for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError("--mau must list at least one size, e.g. --mau 5000,50000,500000")
    bad = [t for t in items if not t.isdigit() or int(t) < 1]
    if bad:
        raise ValueError(f"--mau takes whole numbers >= 1 separated by commas (e.g. 5000,50000); got {bad[0]!r}")
    return sorted({int(t) for t in items})


def plan_channels(world: World | str | Path, maus: Sequence[int], *, channels: Sequence[str] | None = None,
                  policy: str = DEFAULT_POLICY, n_customers: int = 20_000, n_days: int = 30,
                  seeds: Sequence[int] = (0, 1, 2), n_jobs: int = 1, progress: bool = True) -> PlanResult:
    """Simulate ``policy`` with every channel and without each costly one; the plan at each MAU.

    ``channels`` defaults to ``costly_channels(world)``. Runs: (1 + len(channels)) × len(seeds), each
    ``n_customers`` × ``n_days``, in ``n_jobs`` processes, with a progress bar over simulated days.
    """
    world = world if isinstance(world, World) else load_world(world)
    maus = [int(m) for m in maus]
    if not maus or min(maus) < 1:
        raise ValueError(f"`maus` must list sizes >= 1; got {maus!r}")
    if int(n_customers) < 1 or int(n_days) < 1:
        raise ValueError(f"`n_customers` and `n_days` must be >= 1; got {n_customers!r} and {n_days!r}")
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("`seeds` must name at least one seed")
    channels = costly_channels(world) if channels is None else list(dict.fromkeys(channels))
    if not channels:
        raise ValueError(f"world {world.name!r} has no channel with a fixed monthly cost to plan for")
    worlds = [world, *(world.without_channels([c]) for c in channels)]  # validates the channel names
    tasks = [SimulationTask(w, policy, seed, int(n_customers), int(n_days), {}, None) for w in worlds for seed in seeds]
    with DayBar(total=len(tasks) * int(n_days), desc="plan", disable=not progress) as bar:
        runs = run_tasks(tasks, int(n_jobs), bar)
    per_customer = np.array([_monthly_per_customer(r, int(n_customers), int(n_days)) for r in runs])
    per_customer = per_customer.reshape(len(worlds), len(seeds))  # row 0: every channel; row 1 + i: without i
    plans = []
    for i, channel in enumerate(channels):
        fixed = float(world.fixed_monthly_cost[world.catalog.channels.index(channel)])
        gain = _bounds(per_customer[0] - per_customer[1 + i])
        plans.append(ChannelPlan(
            channel=channel, fixed_monthly_cost=fixed, gain_per_customer=gain,
            break_even_mau=break_even_mau(fixed, gain),
            with_channel={m: _bounds(per_customer[0] * m) for m in maus},
            without_channel={m: _bounds(per_customer[1 + i] * m) for m in maus},
            net_of_fixed={m: _scaled(gain, m, -fixed) for m in maus}))
    scaling = (f"{int(n_customers):,} simulated customers x {int(n_days)} days ({policy}, from a cold start), net "
               f"value per customer per {DAYS_PER_MONTH:.0f}-day month scaled linearly to each MAU")
    return PlanResult(world=world.name, policy=policy, maus=maus, channels=plans, scaling=scaling,
                      interval=seeds_caption(len(seeds)),
                      settings={"n_customers": int(n_customers), "n_days": int(n_days), "seeds": seeds})


def plan_from_posterior(posterior: Posterior, economics: Economics, log: LoggedFeedback,
                        fixed_monthly_cost: Mapping[str, float], maus: Sequence[int], *,
                        channels: Sequence[str] | None = None, world: str = "", policy: str = "",
                        n_draws: int = 400, random_state: np.random.Generator | int | None = 0) -> PlanResult:
    """The channel plan of a learned posterior over the traffic of a decision log (a served model's own).

    Each logged decision is one request for a message in its cell, with the options it was allowed
    (consent, quiet hours, caps). Acting greedily on the posterior, it earns the best allowed arm's
    expected net value (``economics``: outcome values times rates, minus the message's cost); without a
    channel, the best allowed arm of the other channels. The gain per customer per month is the sum
    of those differences over the log, divided by its customers and scaled from the log's days to a
    30-day month (a log shorter than a day counts as one day). ``n_draws`` draws of the posterior give
    the figures: their median and the 2.5% and 97.5% quantiles (a 95% credible interval).

    ``posterior`` : Beta parameters (n_cells, n_outcomes, n_arms) of ``log.catalog``'s cells and arms.
    ``fixed_monthly_cost`` : channel -> USD per month; ``channels`` defaults to those above zero.
    What this leaves out: the customers' own factors and context (pooled cell rates), fatigue between
    the messages of one customer, and what a larger audience would teach the policy.
    """
    catalog = log.catalog
    shape = (catalog.n_cells, len(catalog.outcomes), catalog.n_arms)
    if posterior.alpha.shape != shape or posterior.beta.shape != shape:
        raise ValueError(f"the posterior's shape {posterior.alpha.shape} does not fit the log's catalog {shape}")
    maus = [int(m) for m in maus]
    if not maus or min(maus) < 1:
        raise ValueError(f"`maus` must list sizes >= 1; got {maus!r}")
    if log.allowed is None:
        raise ValueError("the log does not record the options each decision was allowed; a plan needs them "
                         "(decisions logged by this version of the server record them)")
    if log.timestamp is None:
        raise ValueError("the log has no timestamps; a plan needs the days it covers")
    if log.experiment is None or "customer" not in log.experiment:
        raise ValueError("the log has no customer column; a plan counts customers")
    unknown = [c for c in fixed_monthly_cost if c not in catalog.channels]
    if unknown:
        raise ValueError(f"unknown channel {unknown[0]!r}; known: {', '.join(catalog.channels)}")
    channels = ([c for c, cost in fixed_monthly_cost.items() if cost > 0] if channels is None
                else list(dict.fromkeys(channels)))
    missing = [c for c in channels if c not in fixed_monthly_cost]
    if missing:
        raise ValueError(f"no fixed monthly cost for channel {missing[0]!r}: "
                         f"known for {', '.join(fixed_monthly_cost) or 'none'}")
    if not channels:
        raise ValueError("no channel with a fixed monthly cost to plan for")
    if int(n_draws) < 2:
        raise ValueError(f"`n_draws` must be >= 2; got {n_draws!r}")
    region_idx, cell_idx = catalog.context_ids(log.context["region"].tolist(), log.context["industry"].tolist(),
                                               log.context["campaign_type"].tolist())
    keys = np.column_stack([cell_idx, region_idx, np.packbits(log.allowed, axis=1)])
    _, first, weight = np.unique(keys, axis=0, return_index=True, return_counts=True)
    group_cell, group_region, group_allowed = cell_idx[first], region_idx[first], log.allowed[first]
    group_allowed[:, catalog.null_arm] = True  # sending nothing is always possible
    used, group_of_used = np.unique(group_cell, return_inverse=True)
    arm_channels = catalog.arm_channels()
    keep = [arm_channels != catalog.channel_index(c) for c in channels]  # each channel switched off
    n_customers = int(pd.unique(log.experiment["customer"]).size)
    seconds = (log.timestamp.max() - log.timestamp.min()) / np.timedelta64(1, "s") if log.n_rounds else 0.0
    days = max(float(seconds) / 86_400.0, 1.0)
    per_customer_month = DAYS_PER_MONTH / days / n_customers
    rng = engine.as_generator(random_state, name="random_state")
    cost = economics.cost[group_region]  # (G, A)
    with_values, without_values = np.empty(int(n_draws)), np.empty((len(channels), int(n_draws)))
    chunk = max(1, 20_000_000 // max(1, len(first) * catalog.n_arms * len(catalog.outcomes)))
    for start in range(0, int(n_draws), chunk):
        stop = min(int(n_draws), start + chunk)
        rates = rng.beta(posterior.alpha[used], posterior.beta[used], size=(stop - start, *posterior.alpha[used].shape))
        net = np.einsum("duoa,o->dua", rates, economics.value)[:, group_of_used] - cost  # (D, G, A)
        allowed_net = np.where(group_allowed, net, -np.inf)
        with_values[start:stop] = allowed_net.max(axis=2) @ weight
        for i, arms in enumerate(keep):
            without_values[i, start:stop] = np.where(arms, allowed_net, -np.inf).max(axis=2) @ weight
    with_values *= per_customer_month
    without_values *= per_customer_month
    plans = []
    for i, channel in enumerate(channels):
        fixed = float(fixed_monthly_cost[channel])
        gain = _credible(with_values - without_values[i])
        plans.append(ChannelPlan(
            channel=channel, fixed_monthly_cost=fixed, gain_per_customer=gain,
            break_even_mau=break_even_mau(fixed, gain),
            with_channel={m: _credible(with_values * m) for m in maus},
            without_channel={m: _credible(without_values[i] * m) for m in maus},
            net_of_fixed={m: _scaled(gain, m, -fixed) for m in maus}))
    scaling = (f"the learned posterior acted on greedily over {log.n_rounds:,} logged decisions of "
               f"{n_customers:,} customers in {days:.1f} days, net value per customer per "
               f"{DAYS_PER_MONTH:.0f}-day month scaled linearly to each MAU")
    interval = f"[95% credible interval over {int(n_draws)} posterior draws; the first figure is their median]"
    return PlanResult(world=world, policy=policy, maus=maus, channels=plans, scaling=scaling, interval=interval,
                      settings={"decisions": int(log.n_rounds), "customers": n_customers, "days": days,
                                "draws": int(n_draws)})


def plot_plan(plan: PlanResult, path: str | Path) -> Path:
    """One panel per channel: gain × MAU − fixed cost over MAU (log axis), 95% band, break-even marked."""
    import matplotlib.pyplot as plt

    from .plots import DPI  # loads matplotlib with its file-only backend

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, len(plan.channels), figsize=(5.5 * len(plan.channels), 4.2), dpi=DPI, squeeze=False)
    grid = np.geomspace(min(plan.maus) / 3, max(plan.maus) * 3, 200)
    for ax, channel in zip(axes[0], plan.channels, strict=True):
        mean, low, high = channel.gain_per_customer
        (line,) = ax.plot(grid, mean * grid - channel.fixed_monthly_cost, linewidth=1.8, label="gain x MAU - fixed")
        ax.fill_between(grid, low * grid - channel.fixed_monthly_cost, high * grid - channel.fixed_monthly_cost,
                        color=line.get_color(), alpha=0.2, linewidth=0, label="95% interval")
        ax.scatter(plan.maus, [channel.net_of_fixed[m][0] for m in plan.maus], color=line.get_color(), zorder=3)
        ax.axhline(0.0, color="black", linewidth=0.8)
        be_mean, be_low, be_high = channel.break_even_mau
        if math.isfinite(be_mean):
            ax.axvline(be_mean, color="grey", linestyle="--", linewidth=1,
                       label=f"break-even {be_mean:,.0f} MAU")
            ax.axvspan(be_low, min(be_high, grid[-1]), color="grey", alpha=0.1, linewidth=0)
        ax.set_yscale("symlog", linthresh=max(channel.fixed_monthly_cost, 1.0))  # the loss below break-even shows
        ax.set(xscale="log", xlabel="monthly active users", ylabel="USD per month (symmetric log)",
               title=f"{channel.channel}: net of ${channel.fixed_monthly_cost:,.0f}/month fixed")
        ax.legend(fontsize=8)
    fig.suptitle(plan.scaling, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def _monthly_per_customer(run: PolicyRun, n_customers: int, n_days: int) -> float:
    """A run's net value per customer per 30-day month."""
    return run.totals["net_value"] / n_customers * DAYS_PER_MONTH / n_days


def _bounds(values: np.ndarray) -> Bounds:
    mean, low, high = mean_interval(values)
    return float(mean), float(low), float(high)


def _credible(draws: np.ndarray) -> Bounds:
    """Median and 95% credible interval of posterior draws."""
    low, median, high = np.quantile(draws, [0.025, 0.5, 0.975])
    return float(median), float(low), float(high)


def _scaled(bounds: Bounds, factor: float, offset: float) -> Bounds:
    """``bounds × factor + offset`` for a positive factor."""
    mean, low, high = bounds
    return mean * factor + offset, low * factor + offset, high * factor + offset


def _json_number(value: float) -> float | None:
    """JSON has no infinity: an unbounded break-even is written as null."""
    return value if math.isfinite(value) else None
