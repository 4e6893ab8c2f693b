"""PNG plots of a simulation: value and regret over time, channel mix, learned vs true channel × hour map."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Patch, Rectangle  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..domain import (  # noqa: E402
    N_HOURS,
    NO_MESSAGE,
    World,  # noqa: E402
    segment_rate_table,  # noqa: E402
)
from ..intervals import mean_interval  # noqa: E402
from ..policies import Policy, load_policy  # noqa: E402
from .simulate import SimulationResult  # noqa: E402

DPI = 110
DEFAULT_POLICY = "hier_ts"  # the learned-vs-true map shows the product's default when it ran
UNTRIED_COLOR = "#d9d9d9"


def plot_simulation(result: SimulationResult, out_dir: str | Path) -> list[Path]:
    """Write every plot of ``result`` into ``out_dir`` and return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_value_and_regret(result, out / "net_value_regret.png"),
             plot_channel_mix(result, out / "channel_mix.png")]
    learned = {r.policy: r for r in result.runs if r.policy_state is not None}  # one seed per policy
    shown = [r for r in learned.values() if load_policy(r.policy_state).posterior() is not None]
    shown.sort(key=lambda r: r.policy != DEFAULT_POLICY)  # the product default first, when it ran
    if shown:
        paths.append(plot_learned_vs_true(result.world, shown[0].policy_state, out / "heatmap_learned_vs_true.png",
                                          title=f"learned by {shown[0].policy} (seed {shown[0].seed})"))
    return paths


def plot_value_and_regret(result: SimulationResult, path: Path) -> Path:
    """Cumulative net value and cumulative regret per policy over days: mean across seeds, 95% band."""
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=DPI)
    days = np.arange(1, result.n_days + 1)
    for name in dict.fromkeys(r.policy for r in result.runs):
        for ax, metric in zip(axes, ("net_value", "regret"), strict=True):
            curves = np.stack([np.cumsum(r.daily[metric]) for r in result.runs if r.policy == name])
            mean, low, high = mean_interval(curves)
            (line,) = ax.plot(days, mean, label=name, linewidth=1.8)
            ax.fill_between(days, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    for ax, title in zip(axes, ("cumulative net value (USD)", "cumulative regret vs customer oracle (USD)"),
                         strict=True):
        ax.set(title=title, xlabel="day")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper left", fontsize=9)
    fig.suptitle(f"{result.world.name} world, {result.n_customers:,} customers, {len(result.seeds)} seed(s)")
    return _save(fig, path)


def plot_channel_mix(result: SimulationResult, path: Path) -> Path:
    """Share of decisions per channel (and no message) by day, one panel per policy, mean across seeds."""
    names = list(dict.fromkeys(r.policy for r in result.runs))
    channels = [*result.world.catalog.channels, NO_MESSAGE]
    n_cols = min(3, len(names))
    n_rows = math.ceil(len(names) / n_cols)
    width = 4.6 * n_cols + 1.6  # room for the legend on the right
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(width, 3.4 * n_rows + 0.6), dpi=DPI, squeeze=False,
                             sharex=True, sharey=True)
    days = np.arange(1, result.n_days + 1)
    colors = plt.get_cmap("tab10").colors
    for ax, name in zip(axes.flat, names, strict=False):
        shares = [np.mean([r.daily[f"share_{c}"] for r in result.runs if r.policy == name], axis=0) for c in channels]
        ax.stackplot(days, shares, labels=channels, colors=colors[: len(channels)], alpha=0.9)
        ax.set(title=name, ylim=(0, 1), xlim=(1, max(result.n_days, 2)))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for k, ax in enumerate(axes.flat[: len(names)]):
        if k + n_cols >= len(names):  # nothing below: this panel carries the day axis
            ax.tick_params(labelbottom=True)
            ax.set_xlabel("day")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of decisions")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=9)
    fig.suptitle("channel mix over time (mean across seeds)")
    fig.tight_layout(rect=(0, 0, 1 - 1.5 / width, 1))
    return _save(fig, path, tight=False)


def plot_learned_vs_true(world: World, policy_state: Path, path: Path, title: str) -> Path:
    """Mean net value per channel × local hour in the busiest segment: the policy's posterior vs the truth.

    Hours closed by quiet hours are blank. Arms the policy never tried in the segment (``untried_mask``)
    are hatched grey and labelled "untried": their posterior is only the prior, which says nothing
    learned. The best arm of each map is circled, on the learned map the best among the tried ones.
    """
    catalog = world.catalog
    cell, region = _busiest_cell(world)
    policy = load_policy(policy_state)
    posterior = policy.posterior()  # what the policy decides from, open messages included
    if posterior is None:
        raise ValueError(f"policy file {str(policy_state)!r} keeps no Beta posterior to draw")
    alpha, beta = posterior.alpha[cell], posterior.beta[cell]
    true_rates = segment_rate_table(world)[cell].mean(axis=0)
    maps, n_channels = [], len(catalog.channels)
    for rates in (alpha / (alpha + beta), true_rates):
        net = (world.value @ rates - world.cost[region])[: n_channels * N_HOURS].reshape(n_channels, N_HOURS)
        maps.append(np.where(world.hour_allowed[region], net, np.nan))
    untried = untried_mask(policy, cell) & world.hour_allowed[region]
    maps[0] = np.where(untried, np.nan, maps[0])
    low, high = np.nanmin(maps[1]), np.nanmax(maps[1])
    fig, axes = plt.subplots(2, 1, figsize=(11, 6.5), dpi=DPI, sharex=True)
    for ax, net, label in zip(axes, maps, (title, "true (segment mean over customers and weekdays)"), strict=True):
        image = ax.imshow(net, aspect="auto", cmap="viridis", vmin=low, vmax=high, interpolation="nearest")
        if not np.isnan(net).all():
            best = np.unravel_index(np.nanargmax(net), net.shape)
            ax.scatter([best[1]], [best[0]], s=120, facecolors="none", edgecolors="red", linewidths=2)
        ax.set_title(label, loc="left")  # the legend of the learned map sits on the right
        ax.set(yticks=range(n_channels), yticklabels=catalog.channels)
    for channel, hour in zip(*np.nonzero(untried), strict=True):
        axes[0].add_patch(Rectangle((hour - 0.5, channel - 0.5), 1.0, 1.0, facecolor=UNTRIED_COLOR,
                                    edgecolor="grey", hatch="//", linewidth=0.0))
    axes[0].legend(handles=[Patch(facecolor=UNTRIED_COLOR, edgecolor="grey", hatch="//",
                                  label=f"untried ({int(untried.sum())} arms)"),
                            Patch(facecolor="white", edgecolor="grey", label="closed (quiet hours)")],
                   loc="lower right", bbox_to_anchor=(1.0, 1.0), ncols=2, fontsize=8, frameon=False)
    axes[-1].set(xticks=range(N_HOURS), xlabel="local send hour")
    fig.colorbar(image, ax=axes, label="expected net value per message (USD)", extend="both")
    fig.suptitle(f"segment {' / '.join(_cell_names(world, cell))}: learned vs true channel x hour")
    return _save(fig, path, tight=False)


def untried_mask(policy: Policy, cell: int) -> np.ndarray:
    """Bool (n_channels, 24): the channel × hour arms of ``cell`` the policy has no evidence of its own on.

    From the policy's state (``Policy.untried_arms``); all False for a policy that cannot tell.
    """
    catalog = policy.catalog
    untried = policy.untried_arms()
    n_sending = len(catalog.channels) * N_HOURS
    if untried is None:
        return np.zeros((len(catalog.channels), N_HOURS), dtype=np.bool_)
    return untried[cell, :n_sending].reshape(len(catalog.channels), N_HOURS)


def _busiest_cell(world: World) -> tuple[int, int]:
    """The cell with the most expected triggers per day, and its region index."""
    campaign_share = (world.lifecycle_share * world.trigger_probability) @ world.campaign_weights
    weight = world.region_share[:, None, None] * world.industry_share[None, :, None] * campaign_share[None, None, :]
    region, industry, campaign = np.unravel_index(int(np.argmax(weight)), weight.shape)
    return int(world.catalog.cell_ids(np.array([region]), industry, campaign)[0]), int(region)


def _cell_names(world: World, cell: int) -> tuple[str, str, str]:
    catalog = world.catalog
    shape = (len(catalog.regions), len(catalog.industries), len(catalog.campaign_types))
    r, i, t = np.unravel_index(cell, shape)
    return catalog.regions[r], catalog.industries[i], catalog.campaign_types[t]


def _save(fig: plt.Figure, path: Path, tight: bool = True) -> Path:
    if tight:
        fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
