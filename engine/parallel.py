"""Threads and random streams of the batch wrappers: chunks of rows, one generator per chunk.

Rows are cut into chunks of ``chunk_size``; each chunk gets its own generator seeded from ``rng``, and
the chunks run on a shared pool of threads (the kernels release the GIL). The output therefore
depends only on ``rng`` and ``chunk_size``, never on the number of threads.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .validation import as_at_least, as_generator

__all__ = ["chunk_generators", "set_num_threads"]

_threads = {"n": max(1, int(os.environ.get("SENDWISE_NUM_THREADS", os.cpu_count() or 1)))}
_pool: dict[int, ThreadPoolExecutor] = {}


def set_num_threads(n_threads: int) -> None:
    """Set how many threads the batch samplers use (results do not depend on it)."""
    _threads["n"] = as_at_least("n_threads", n_threads, 1)


def chunk_generators(rng: np.random.Generator | int | None, n_chunks: int) -> list[np.random.Generator]:
    """One independent ``Generator`` per chunk, derived from ``rng`` (a seed or a Generator)."""
    seeds = as_generator(rng).integers(0, 2**63 - 1, size=n_chunks, dtype=np.int64)
    return [np.random.Generator(np.random.PCG64(int(s))) for s in seeds]


def _run_chunked(
    run: Callable[[slice, np.random.Generator], None],
    n_rows: int,
    rng: np.random.Generator | int | None,
    chunk_size: int,
) -> None:
    """Call ``run(slice, generator)`` for each chunk of rows, on the engine's threads (nogil kernels)."""
    slices = _chunks(n_rows, chunk_size)
    _run_on_threads(run, list(zip(slices, chunk_generators(rng, len(slices)), strict=True)))


def _run_split(run: Callable[[slice], None], n_rows: int, chunk_size: int) -> None:
    """Call ``run(slice)`` for each chunk of rows on the engine's threads, for kernels that draw nothing."""
    _run_on_threads(run, [(sl,) for sl in _chunks(n_rows, chunk_size)])


def _chunks(n_rows: int, chunk_size: int) -> list[slice]:
    size = as_at_least("chunk_size", chunk_size, 1)
    return [slice(s, min(n_rows, s + size)) for s in range(0, n_rows, size)]


def _run_on_threads(run: Callable[..., None], tasks: list[tuple]) -> None:
    """Run every task, serially when one thread would do, else on a pool kept per thread count."""
    n_threads = min(_threads["n"], len(tasks))
    if n_threads <= 1:
        for task in tasks:
            run(*task)
        return
    pool = _pool.get(n_threads) or _pool.setdefault(n_threads, ThreadPoolExecutor(n_threads, "sendwise-engine"))
    for future in [pool.submit(run, *task) for task in tasks]:
        future.result()
