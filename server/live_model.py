"""The served model: a base policy plus every posterior delta in the store, and its propensity cache.

The posterior in memory is always the base policy with the store's ``outcome_log`` for this model
version replayed in order, group by group, through ``Policy.update``. Every change goes through
:meth:`LiveModel.catch_up` after it is committed, so a restart (or another worker reading the same
store) arrives at exactly the same arrays.

Logged propensities come from the policy's Monte-Carlo estimate mixed with the exploration floor. They
are cached per (cell, cell version, cost row, mask): a cell's version changes whenever one of its
counts does, so a cached value is always the one the current posterior would give.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from itertools import groupby

import numpy as np

from sendwise import engine
from sendwise.models import DecisionBatch, Outcomes, Policy

from .guardrails import ServingRules
from .store import LoggedDelta, Store


class LiveModel:
    """A policy being served: thread-safe decisions, propensities and catch-up with the store."""

    def __init__(self, policy: Policy, version: str, rules: ServingRules, *, propensity_draws: int,
                 cache_size: int) -> None:
        propensities = getattr(policy, "propensities", None)
        if not callable(propensities):
            raise TypeError(f"policy {policy.name!r} cannot report propensities, which every logged decision needs")
        self._propensities_of = propensities
        self.policy = policy
        self.version = version
        self.catalog = policy.catalog
        self.quiet_allowed = rules.allowed_hours(self.catalog)
        self.applied_seq = 0
        self._propensity_draws = propensity_draws
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[int, int, int, bytes], np.ndarray] = OrderedDict()
        self._cell_versions = np.zeros(self.catalog.n_cells, dtype=np.int64)
        self._lock = threading.Lock()

    def catch_up(self, store: Store) -> int:
        """Apply the store's deltas this model has not seen yet; returns how many rows were applied.

        The read happens outside the model's lock (the log only grows, and a read sees a complete
        prefix of it), so a caller holding a store transaction never waits on the model or vice versa.
        """
        rows = store.outcome_log(self.version, self.applied_seq)
        with self._lock:
            fresh = [r for r in rows if r.seq > self.applied_seq]
            for _, group in groupby(fresh, key=lambda r: r.txn):
                self._apply(list(group))
            if fresh:
                self.applied_seq = fresh[-1].seq
        return len(fresh)

    def _apply(self, group: list[LoggedDelta]) -> None:
        cell, arm, outcome, successes, failures = (np.array(col) for col in zip(*(r.delta for r in group), strict=True))
        self.policy.update(Outcomes(cell_idx=cell.astype(np.int64), arm=arm.astype(np.int64),
                                    outcome_idx=outcome.astype(np.int64), successes=successes.astype(np.float64),
                                    failures=failures.astype(np.float64)))
        self._cell_versions[np.unique(cell)] += 1

    def decide(self, batch: DecisionBatch, seed: int) -> tuple[engine.Decisions, np.ndarray]:
        """Decisions for a batch with the policy's generator seeded by ``seed``, and the chosen arms' propensities.

        Re-running with the same seed, model version and posterior reproduces the decisions.
        """
        with self._lock:
            self.policy.rng_ = np.random.default_rng(seed)
            decisions = self.policy.decide(batch)
            probs = self._propensities(batch, decisions.arm)
        return decisions, probs

    def _propensities(self, batch: DecisionBatch, arms: np.ndarray) -> np.ndarray:
        """Propensity of ``arms[i]`` for row ``i``, estimating only the (cell, version, cost row, mask) not cached."""
        keys = list(zip(batch.cell_idx.tolist(), self._cell_versions[batch.cell_idx].tolist(),
                        batch.cost_row_idx.tolist(), map(np.ndarray.tobytes, batch.mask), strict=True))
        first_row: dict[tuple[int, int, int, bytes], int] = {}
        for i, key in enumerate(keys):
            first_row.setdefault(key, i)
        missing = [k for k in first_row if k not in self._cache]
        if missing:
            rows = np.array([first_row[k] for k in missing])
            estimate = self._propensities_of(DecisionBatch(batch.cell_idx[rows], batch.cost_row_idx[rows],
                                                           batch.mask[rows]), self._propensity_draws)
            self._cache.update(zip(missing, estimate, strict=True))
        for key in first_row:
            self._cache.move_to_end(key)
        out = np.array([self._cache[k][arm] for k, arm in zip(keys, arms.tolist(), strict=True)])
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return out
