"""Simulations on Ray: seeds × policies as Ray tasks, on a local Ray or a cluster (the ``ray`` extra).

The work unit, the summary and the plots are the simulator's own (``simulate`` with a Ray executor), so
the numbers equal those of the local engine for the same seeds. Each task takes one CPU wherever Ray
places it and sends its learned policy state back as bytes: ``out_dir`` need only exist on the driver.
Ray is imported on first use, so the package works without it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from tqdm.auto import tqdm

from sendwise import engine

from ..domain import World
from .simulate import PolicyRun, SimulationResult, SimulationTask, run_task, simulate

RAY_INSTALL = "pip install 'sendwise[ray]'"


class MissingExtraError(ImportError, ValueError):
    """An optional extra is not installed; also a ValueError, as asking for it is a bad setting here."""


def import_ray() -> ModuleType:
    """The ``ray`` module, or MissingExtraError saying how to install it."""
    try:
        import ray
    except ModuleNotFoundError:
        raise MissingExtraError(f"Ray is not installed; install the extra with: {RAY_INSTALL}") from None
    return ray


@contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, connected for the block; yields the ``ray`` module.

    A session the caller already started is used as is and left running. Otherwise this connects to
    the cluster at ``address`` (``auto``, ``ray://host:10001``, ``host:6379``) or starts a local Ray
    with ``num_cpus`` CPUs (default: all), and shuts it down when the block ends.
    """
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    if num_cpus is not None and int(num_cpus) < 1:
        raise ValueError(f"`num_cpus` must be >= 1; got {num_cpus!r}")
    if address is None:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # a Ray we start reports nothing home
    try:
        ray.init(address=address, num_cpus=num_cpus if address is None else None, include_dashboard=False)
    except ConnectionError as exc:
        raise ValueError(f"cannot reach a Ray cluster at {address!r} ({exc}); start one with `ray start --head` "
                         "or leave the address out for a local Ray") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def simulate_on_ray(world: World | str | Path, policies: Sequence[str], *, address: str | None = None,
                    num_cpus: int | None = None, **options: Any) -> SimulationResult:
    """``simulate`` with each (policy, seed) a Ray task, with the same numbers.

    ``options`` are the keywords of ``simulate`` but ``n_jobs``, ``executor`` and ``log_decisions`` (which
    writes where the run is). ``address``/``num_cpus``: see ``ray_session``.

    Examples
    --------
    >>> result = simulate_on_ray("seed", ["ts"], n_customers=200, n_days=3, progress=False)  # doctest: +SKIP
    """
    refused = sorted({"n_jobs", "executor", "log_decisions"} & set(options))
    if refused:
        raise TypeError(f"simulate_on_ray runs every task on Ray; it takes no {', '.join(refused)}")
    with ray_session(address, num_cpus):
        return simulate(world, policies, executor=run_tasks_on_ray, **options)


def run_tasks_on_ray(tasks: list[SimulationTask], bar: tqdm) -> list[PolicyRun]:
    """A ``simulate`` executor: every task a Ray task of one CPU, in the session that is connected."""
    ray = import_ray()
    remote = ray.remote(num_cpus=1)(_run_on_worker)
    refs = [remote.remote(task) for task in tasks]
    slot = {ref: i for i, ref in enumerate(refs)}
    runs: dict[int, PolicyRun] = {}
    pending = refs
    try:
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            i = slot[done[0]]
            runs[i] = _store_files(tasks[i], *ray.get(done[0]))
            bar.update(tasks[i].n_days)
    finally:
        for ref in pending:  # a failed task stops the whole simulation, as it does locally
            ray.cancel(ref)
    return [runs[i] for i in range(len(tasks))]


def _run_on_worker(task: SimulationTask) -> tuple[PolicyRun, dict[str, bytes]]:
    """Run one task on a Ray worker; what it writes travels back as bytes, as the driver may be elsewhere."""
    engine.set_num_threads(1)  # the task holds one CPU; results do not depend on it
    if task.out_dir is None:
        return run_task(*task), {}
    with tempfile.TemporaryDirectory() as tmp:
        run = run_task(*task._replace(out_dir=Path(tmp)))
        files = {str(path.relative_to(tmp)): path.read_bytes() for path in Path(tmp).rglob("*") if path.is_file()}
    if run.policy_state is not None:
        run.policy_state = run.policy_state.relative_to(tmp)  # re-rooted under out_dir by the driver
    return run, files


def _store_files(task: SimulationTask, run: PolicyRun, files: dict[str, bytes]) -> PolicyRun:
    """On the driver: write a worker's files under ``task.out_dir`` and point the run at its policy state."""
    if task.out_dir is None:
        return run
    for name, data in files.items():
        path = task.out_dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    if run.policy_state is not None:
        run.policy_state = task.out_dir / run.policy_state
    return run
