"""Compare tracked runs: the latest simulation or evaluation of each experiment as a table and a plot.

Reads back what ``tracking`` logged (a parent run's ``<policy>/<metric>[_lo95|_hi95]`` metrics and its
child runs), so ``sendwise compare``, the demo and a notebook show the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID

from ..intervals import seeds_caption
from ..tables import render_table
from .tracking import (
    BOUND_SUFFIXES,
    DATASET_TAG,
    KEY_METRICS,
    KIND_TAG,
    POLICY_TAG,
    SIMULATION,
    WORLD_TAG,
    tracking_client,
)


@dataclass(frozen=True)
class Comparison:
    """The latest simulation or evaluation of one experiment, read back from its parent run.

    ``summary`` maps policy → metric (or estimator) → ``(value, lo95, hi95)``; ``best_runs`` maps
    policy → its child run with the highest total net value that logged a model (the run to promote;
    none for the oracles), or its only child run for an evaluation. ``n_seeds``: the seeds a
    simulation's intervals come from (None for an evaluation, whose intervals resample logged rows).
    """

    experiment: str
    kind: str
    subject: str
    run_id: str
    started: datetime
    summary: dict[str, dict[str, tuple[float, float, float]]]
    best_runs: dict[str, str]
    n_seeds: int | None = None

    def columns(self) -> list[str]:
        """The key metrics of a simulation, or every estimator of an evaluation."""
        names = {metric for bounds in self.summary.values() for metric in bounds}
        return [m for m in KEY_METRICS if m in names] or sorted(names)

    def policies(self) -> list[str]:
        """Policies, best first by the first column's value."""
        first = self.columns()[0]
        return sorted(self.summary, key=lambda p: -self.summary[p].get(first, (-np.inf,))[0])

    def format_table(self) -> str:
        """A plain-text table: one row per policy, ``value [lo95, hi95]`` per column, the best run.

        One number format per column (``render_table``); a simulation's caption says across how many
        seeds its intervals are, and when that is too few to trust them (``seeds_caption``).
        """
        columns = self.columns()
        rows = [[policy, *(self.summary[policy].get(c) for c in columns), self.best_runs.get(policy, "-")]
                for policy in self.policies()]
        header = ["policy", *columns, "best run" if self.kind == SIMULATION else "run"]
        caption = seeds_caption(self.n_seeds) if self.n_seeds else "value [95% interval]"
        return "\n".join([f"{self.experiment}: {self.kind} of {self.subject}, run {self.run_id} "
                          f"({self.started:%Y-%m-%d %H:%M} UTC); {caption}", render_table(header, rows)])


def compare_latest(*, experiment: str | None = None, tracking_uri: str | None = None) -> list[Comparison]:
    """The latest simulation or evaluation of ``experiment``, or of every sendwise experiment."""
    client = tracking_client(tracking_uri)
    if experiment is None:
        experiments = client.search_experiments(filter_string="name LIKE 'sendwise-%'")
    else:
        found = client.get_experiment_by_name(experiment)
        if found is None:
            known = ", ".join(e.name for e in client.search_experiments()) or "none"
            raise ValueError(f"no experiment {experiment!r} in {client.tracking_uri}; known: {known}")
        experiments = [found]
    out = []
    for exp in experiments:
        latest = client.search_runs([exp.experiment_id], order_by=["attributes.start_time DESC"], max_results=1)
        if not latest:
            continue
        parent = client.get_run(latest[0].data.tags.get(MLFLOW_PARENT_RUN_ID, latest[0].info.run_id))
        children = client.search_runs([exp.experiment_id],
                                      filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
        tags = parent.data.tags
        best: dict[str, Any] = {}
        for child in children:
            policy = child.data.tags.get(POLICY_TAG)
            promotable = tags.get(KIND_TAG) != SIMULATION or bool(child.outputs and child.outputs.model_outputs)
            if policy and promotable and (policy not in best or _net_value(child) > _net_value(best[policy])):
                best[policy] = child
        seeds = parent.data.params.get("seeds") if tags.get(KIND_TAG) == SIMULATION else None
        out.append(Comparison(
            experiment=exp.name, kind=tags.get(KIND_TAG, "?"), subject=tags.get(WORLD_TAG, tags.get(DATASET_TAG, "?")),
            run_id=parent.info.run_id, started=datetime.fromtimestamp(parent.info.start_time / 1000, UTC),
            summary=_read_summary(parent.data.metrics), best_runs={p: r.info.run_id for p, r in best.items()},
            n_seeds=len(seeds.split(",")) if seeds else None,
        ))
    return out


def plot_comparison(comparisons: Sequence[Comparison], path: str | Path) -> Path:
    """Bar charts with 95% intervals: one row per comparison, one panel per column (at most three)."""
    if not comparisons:
        raise ValueError("nothing to plot: no tracked runs to compare")
    n_cols = max(min(3, len(c.columns())) for c in comparisons)
    fig = Figure(figsize=(4.5 * n_cols, 3.2 * len(comparisons)), layout="constrained")
    axes = fig.subplots(len(comparisons), n_cols, squeeze=False)
    for row, comparison in zip(axes, comparisons, strict=True):
        policies, columns = comparison.policies(), comparison.columns()[:n_cols]
        for ax in row[len(columns):]:
            ax.set_visible(False)
        for ax, metric in zip(row, columns, strict=False):
            bounds = np.array([comparison.summary[p].get(metric, (np.nan,) * 3) for p in policies], dtype=float)
            errors = np.abs(bounds[:, 1:] - bounds[:, :1]).T
            ax.bar(policies, bounds[:, 0], yerr=np.nan_to_num(errors), capsize=4, color="tab:blue", alpha=0.8)
            ax.set_title(f"{comparison.subject}: {metric}", fontsize=10)
            ax.tick_params(axis="x", labelrotation=30)
    fig.suptitle("bars: value; whiskers: 95% interval", fontsize=9)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    return path


def _read_summary(metrics: Mapping[str, float]) -> dict[str, dict[str, tuple[float, float, float]]]:
    """Invert ``tracking.summary_metrics``: ``<policy>/<name>[_lo95|_hi95]`` → policy → name → bounds."""
    out: dict[str, dict[str, list[float]]] = {}
    for key, value in metrics.items():
        policy, _, name = key.rpartition("/")
        if not policy:
            continue
        slot = next((i for i, suffix in enumerate(BOUND_SUFFIXES) if suffix and name.endswith(suffix)), 0)
        name = name.removesuffix(BOUND_SUFFIXES[slot])
        out.setdefault(policy, {}).setdefault(name, [np.nan] * 3)[slot] = value
    return {p: {m: (b[0], b[1], b[2]) for m, b in bounds.items()} for p, bounds in out.items()}


def _net_value(run: Any) -> float:
    return float(run.data.metrics.get("net_value", -np.inf))
