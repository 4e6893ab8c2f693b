"""Tuning a policy's hyper-parameters by simulation, with Ray Tune (the ``ray`` extra).

Every trial simulates the policy with one configuration on the same seeds (common random numbers, so
trials differ only by their configuration) and scores it by the mean across seeds of one total, e.g.
``net_value_last14``: what the policy earns once it has learned. Configurations are drawn at random
from a search space written as ``name=lo..hi[,log]`` (floats) or ``name=a|b|c`` (choices), pieces
joined by ``;``. Each trial runs on one CPU wherever Ray places it, so trials spread over a cluster.

The best configuration is simulated once more on the driver's session with its policy states saved
(the same numbers: simulations are deterministic), tracked as a simulation, and its best seed's policy
registered. MLflow gets one parent run per tuning with one child run per trial (params: the trial's
hyper-parameters; metrics: the trial's mean totals, the objective among them), in the experiment
``sendwise-tune-<world>``; ``best.json`` in ``out_dir`` and on the parent run holds the winner.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from sendwise import engine

from ..domain import World, load_world
from ..policies import POLICIES, make_world_policy
from ..sim import SimulationResult, ray_session, run_tasks_on_ray, simulate
from ..validation import signature_params
from .mlflow_model import servable
from .registry import DEFAULT_MODEL_NAME, register_policy
from .tracking import (
    KIND_TAG,
    POLICY_TAG,
    WORLD_TAG,
    experiment_id,
    log_batch,
    log_simulation,
    provenance,
    tracked_run,
    tracking_client,
)

TUNING = "tuning"
TRIAL_ERROR_TAG = "sendwise.trial_error"
BEST_FILE = "best.json"
MEAN_PREFIX = "mean/"  # what a trial reports, told apart from the keys Ray Tune adds to every result
# Totals a tuning can optimise, and in which direction.
OBJECTIVES = {"net_value_last14": "max", "net_value": "max", "clicks": "max", "regret": "min", "cost": "min",
              "unsubscribes": "min"}


@dataclass(frozen=True)
class FloatRange:
    """A float drawn uniformly from [low, high], or log-uniformly when ``log``."""

    low: float
    high: float
    log: bool = False


@dataclass(frozen=True)
class Choice:
    """One of a few options, each equally likely."""

    options: tuple[Any, ...]


Dimension = FloatRange | Choice


@dataclass(frozen=True)
class Trial:
    """One configuration and the mean across seeds of every total it reached (empty when it failed)."""

    number: int
    config: dict[str, Any]
    metrics: dict[str, float]
    error: str | None = None


@dataclass(frozen=True)
class TuningResult:
    """The trials of a tuning, the best one, and where it was written, tracked and registered."""

    world: str
    policy: str
    metric: str
    mode: str
    trials: list[Trial]
    best: Trial
    params: dict[str, Any]           # every hyper-parameter of the best policy, defaults included
    simulation: SimulationResult     # the best configuration simulated again, its policy states saved
    out_dir: Path
    run_id: str | None = None        # the MLflow parent run
    registered: tuple[str, str] | None = None  # (registered model, version)

    def format_table(self) -> str:
        """One row per trial: its hyper-parameters and objective, the best marked with ``*``."""
        names = list(self.best.config)
        rows = [["trial", *names, self.metric, "status"]]
        for trial in self.trials:
            rows.append([f"{trial.number}{' *' if trial is self.best else ''}",
                         *(_show(trial.config.get(n)) for n in names),
                         _show(trial.metrics.get(self.metric)), "error" if trial.error else "ok"])
        widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
        lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)


def tuning_experiment(world: str) -> str:
    """Name of the MLflow experiment that holds a world's tunings."""
    return f"sendwise-tune-{world}"


def parse_search(text: str, world: World, policy: str) -> dict[str, Dimension]:
    """The search space ``text`` for ``policy``, checked against its hyper-parameters.

    ``name=lo..hi`` is a float range, ``name=lo..hi,log`` a log-uniform one (``0 < lo``), ``name=a|b|c``
    a choice (each option JSON, else a string); pieces are joined by ``;``. Every bound and option must
    be a value the policy accepts. Errors name the offending piece.

    Examples
    --------
    >>> parse_search("epsilon=0.001..0.05,log", load_world("seed"), "hier_ts")
    {'epsilon': FloatRange(low=0.001, high=0.05, log=True)}
    """
    make_world_policy(policy, world, seed=0)  # an unknown policy fails here, naming the known ones
    known = signature_params(POLICIES[policy])
    pieces = [piece.strip() for piece in text.split(";") if piece.strip()]
    if not pieces:
        raise ValueError(f"the search space is empty; give name=lo..hi[,log] or name=a|b|c pieces joined by ';' "
                         f"for hyper-parameters of {policy!r}: {', '.join(sorted(known))}")
    space: dict[str, Dimension] = {}
    for piece in pieces:
        name, sep, spec = (part.strip() for part in piece.partition("="))
        if not (sep and name and spec):
            raise _bad(piece, "expected name=lo..hi, name=lo..hi,log or name=a|b|c")
        if name not in known:
            raise _bad(piece, f"{policy!r} has no hyper-parameter {name!r}; known: {', '.join(sorted(known))}")
        if name in space:
            raise _bad(piece, f"{name!r} is given twice")
        dim = space[name] = _choice(piece, spec) if "|" in spec else _float_range(piece, spec)
        for value in dim.options if isinstance(dim, Choice) else (dim.low, dim.high):
            try:
                make_world_policy(policy, world, seed=0, **{name: value})
            except (TypeError, ValueError) as exc:
                raise _bad(piece, f"{name}={value!r} is refused: {exc}") from None
    return space


def tune_policy(
    world: World | str | Path,
    policy: str,
    search: str,
    *,
    n_trials: int = 20,
    metric: str = "net_value_last14",
    n_customers: int = 2_000,
    n_days: int = 30,
    seeds: Sequence[int] = (0,),
    out_dir: str | Path,
    address: str | None = None,
    num_cpus: int | None = None,
    random_state: int = 0,
    tracking_uri: str | None = None,
    register: bool = True,
    model_name: str = DEFAULT_MODEL_NAME,
) -> TuningResult:
    """Tune ``policy`` on ``world`` with ``n_trials`` random configurations from ``search``; see the module.

    ``random_state`` seeds the draw of configurations. Ray runs in the session already connected, else
    at ``address``, else locally on ``num_cpus`` CPUs (``ray_session``).
    With ``register``, the best seed's policy of the best configuration becomes a new version of
    ``model_name`` (no alias moves: promotion is a separate step).
    """
    world = world if isinstance(world, World) else load_world(world)
    if metric not in OBJECTIVES:
        raise ValueError(f"cannot tune for {metric!r}; choose one of {', '.join(OBJECTIVES)}")
    if int(n_trials) < 1:
        raise ValueError(f"`n_trials` must be >= 1; got {n_trials!r}")
    space = parse_search(search, world, policy)
    seeds, mode = [int(s) for s in seeds], OBJECTIVES[metric]
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with ray_session(address, num_cpus):
        trials = _run_trials(world, policy, space, n_trials=int(n_trials), metric=metric, mode=mode,
                             n_customers=n_customers, n_days=n_days, seeds=seeds, out_dir=out,
                             random_state=random_state)
        done = [t for t in trials if t.error is None]
        if not done:
            raise RuntimeError(f"all {len(trials)} trials failed; the first: {trials[0].error}")
        best = (max if mode == "max" else min)(done, key=lambda t: t.metrics[metric])
        simulation = simulate(world, [policy], n_customers=n_customers, n_days=n_days, seeds=seeds,
                              out_dir=out / "best", progress=False, policy_params={policy: best.config},
                              executor=run_tasks_on_ray)
    result = TuningResult(world=world.name, policy=policy, metric=metric, mode=mode, trials=trials, best=best,
                          params=simulation.runs[0].params, simulation=simulation, out_dir=out)
    return _track(result, search=search, tracking_uri=tracking_uri, model_name=model_name if register else None)


def _run_trials(world: World, policy: str, space: dict[str, Dimension], *, n_trials: int, metric: str, mode: str,
                n_customers: int, n_days: int, seeds: list[int], out_dir: Path, random_state: int) -> list[Trial]:
    """Run the trials with Ray Tune, one CPU each; Tune's own files go to ``out_dir/trials``."""
    from ray import tune
    from ray.tune.search.basic_variant import BasicVariantGenerator

    trainable = tune.with_parameters(_trial, world=world, policy=policy, n_customers=n_customers,
                                     n_days=n_days, seeds=seeds)
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space={name: _ray_dimension(tune, dim) for name, dim in space.items()},
        tune_config=tune.TuneConfig(metric=MEAN_PREFIX + metric, mode=mode, num_samples=n_trials, reuse_actors=True,
                                    search_alg=BasicVariantGenerator(random_state=random_state)),
        run_config=tune.RunConfig(name="trials", storage_path=str(out_dir), verbose=0),
    )
    grid = tuner.fit()
    return [_as_trial(i + 1, grid[i]) for i in range(len(grid))]


def _as_trial(number: int, result: Any) -> Trial:
    """A Ray Tune result as a Trial: its configuration, the means it reported, the last line of its error."""
    reported = result.metrics or {}
    return Trial(number=number, config=dict(result.config or {}),
                 metrics={k.removeprefix(MEAN_PREFIX): v for k, v in reported.items() if k.startswith(MEAN_PREFIX)},
                 error=None if result.error is None else str(result.error).strip().splitlines()[-1])


def _trial(config: dict[str, Any], *, world: World, policy: str, n_customers: int, n_days: int,
           seeds: list[int]) -> None:
    """One Ray Tune trial: simulate the configuration on every seed, report each total's mean."""
    from ray import tune

    engine.set_num_threads(1)  # the trial holds one CPU; results do not depend on it
    result = simulate(world, [policy], n_customers=n_customers, n_days=n_days, seeds=seeds, progress=False,
                      policy_params={policy: config})
    tune.report({MEAN_PREFIX + name: bounds[0] for name, bounds in result.summary[policy].items()})


def _track(result: TuningResult, *, search: str, tracking_uri: str | None, model_name: str | None) -> TuningResult:
    """Log the tuning and the best configuration's simulation, register its best seed, write ``best.json``."""
    client = tracking_client(tracking_uri)
    experiment = tuning_experiment(result.world)
    exp_id = experiment_id(client, experiment)
    simulation = result.simulation
    tags = {KIND_TAG: TUNING, WORLD_TAG: result.world, POLICY_TAG: result.policy}
    context = {"world": result.world, "policy": result.policy, "customers": simulation.n_customers,
               "days": simulation.n_days, "seeds": ",".join(map(str, simulation.seeds)), **provenance()}
    params = {**context, "search": search, "trials": len(result.trials), "metric": result.metric,
              "mode": result.mode}
    with tracked_run(client, exp_id, f"tune {result.policy} on {result.world}", tags, params) as parent_id:
        for trial in result.trials:  # no policy tag: `compare` would offer trials for promotion, yet none has a model
            with tracked_run(client, exp_id, f"trial {trial.number}", {KIND_TAG: TUNING, WORLD_TAG: result.world},
                      trial.config, parent_id=parent_id) as child_id:
                log_batch(client, child_id, metrics=_metrics(trial.metrics))
                if trial.error is not None:
                    client.set_tag(child_id, TRIAL_ERROR_TAG, trial.error)
        # The best trial's means as <policy>/<metric>, the names a simulation's parent run uses.
        best_means = {f"{result.policy}/{name}": value for name, value in result.best.metrics.items()}
        log_batch(client, parent_id, metrics=_metrics(best_means))
        simulation_id = log_simulation(simulation, tracking_uri=tracking_uri, experiment=experiment)
        registered = None
        if model_name is not None and simulation.runs[0].policy_state is not None \
                and servable(simulation.runs[0].policy_state):
            run_id = _best_child(client, exp_id, simulation_id, result.metric, result.mode)
            registered = (model_name, register_policy(run_id, name=model_name, tracking_uri=tracking_uri))
        result = replace(result, run_id=parent_id, registered=registered)
        best_file = result.out_dir / BEST_FILE
        best_file.write_text(json.dumps(_best_record(result, search, simulation_id), indent=1))
        client.log_artifact(parent_id, str(best_file))
    return result


def _best_child(client: MlflowClient, exp_id: str, parent_id: str, metric: str, mode: str) -> str:
    """The child run of a simulation with the best ``metric``: the seed whose policy gets registered."""
    order = "DESC" if mode == "max" else "ASC"
    runs = client.search_runs([exp_id], filter_string=f"tags.mlflow.parentRunId = '{parent_id}'",
                              order_by=[f"metrics.{metric} {order}"], max_results=1)
    return str(runs[0].info.run_id)


def _best_record(result: TuningResult, search: str, simulation_run_id: str) -> dict[str, Any]:
    """What ``best.json`` holds: the winner, how it was found, where it was tracked and registered."""
    simulation = result.simulation
    return {
        "world": result.world, "policy": result.policy, "params": result.params, "trial": result.best.number,
        "metric": result.metric, "mode": result.mode, "value": result.best.metrics[result.metric],
        "search": search, "trials": len(result.trials), "customers": simulation.n_customers,
        "days": simulation.n_days, "seeds": simulation.seeds, "mlflow_run_id": result.run_id,
        "simulation_run_id": simulation_run_id,
        "registered": None if result.registered is None else {"name": result.registered[0],
                                                                "version": result.registered[1]},
    }


def _metrics(values: dict[str, float]) -> list[Metric]:
    timestamp = int(time.time() * 1000)
    return [Metric(name, float(value), timestamp, 0) for name, value in values.items()]


def _ray_dimension(tune: Any, dim: Dimension) -> Any:
    if isinstance(dim, Choice):
        return tune.choice(list(dim.options))
    return (tune.loguniform if dim.log else tune.uniform)(dim.low, dim.high)


def _float_range(piece: str, spec: str) -> FloatRange:
    bounds, _, flag = (part.strip() for part in spec.partition(","))
    if flag not in ("", "log"):
        raise _bad(piece, f"unknown flag {flag!r} after the range; the only flag is 'log'")
    low_text, sep, high_text = bounds.partition("..")
    try:
        low, high = float(low_text), float(high_text)
    except ValueError:
        low = high = math.nan
    if not (sep and math.isfinite(low) and math.isfinite(high)):
        raise _bad(piece, "a range must be two finite numbers, lo..hi (e.g. 0.001..0.05)")
    if low >= high:
        raise _bad(piece, f"the low end {low:g} must be below the high end {high:g}")
    if flag == "log" and low <= 0:
        raise _bad(piece, f"a log range must start above 0; got {low:g}")
    return FloatRange(low, high, log=flag == "log")


def _choice(piece: str, spec: str) -> Choice:
    texts = [text.strip() for text in spec.split("|")]
    if not all(texts):
        raise _bad(piece, "a choice must list options between '|', none empty (e.g. 2|4|8)")
    return Choice(tuple(_json_or_text(text) for text in texts))


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _bad(piece: str, reason: str) -> ValueError:
    return ValueError(f"bad search piece {piece!r}: {reason}")


def _show(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:,.4g}" if isinstance(value, float) else str(value)
