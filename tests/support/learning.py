"""Driving a ``Learner`` by hand: decide, send what was chosen, resolve it from the batch's truth."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from sendwise.models import DecisionBatch, Learner, Resolved, Sends


def sent_and_resolved(learner: Learner, batch: DecisionBatch, seed: int, keys: Iterator[int], *,
                      sent_at: float = 0.0, delay_hours: float = 1.0) -> Resolved:
    """Decide for ``batch``, report the messages sent at ``sent_at``, and return what will resolve them.

    Each sent message gets one row per outcome, drawn from ``batch.true_rates``: an outcome that happened
    arrives ``delay_hours`` after the send; the others close at the same time as failures.
    """
    arm = learner.decide(batch).arm
    rows = np.flatnonzero(arm != learner.catalog.null_arm)
    key = np.array([next(keys) for _ in rows], dtype=np.int64)
    customer = None if batch.customer_idx is None else batch.customer_idx[rows]
    learner.sent(Sends(key=key, cell_idx=batch.cell_idx[rows], arm=arm[rows], sent_at=np.full(rows.size, sent_at),
                       customer_idx=customer))
    n_outcomes = len(learner.catalog.outcomes)
    rng = np.random.default_rng(seed)
    happened = rng.random((rows.size, n_outcomes)) < batch.true_rates[rows, :, arm[rows]]
    repeat = np.repeat
    return Resolved(key=repeat(key, n_outcomes), cell_idx=repeat(batch.cell_idx[rows], n_outcomes),
                    arm=repeat(arm[rows], n_outcomes), outcome_idx=np.tile(np.arange(n_outcomes), rows.size),
                    successes=happened.ravel().astype(float), failures=(~happened).ravel().astype(float),
                    sent_at=np.full(rows.size * n_outcomes, sent_at),
                    resolved_at=np.full(rows.size * n_outcomes, sent_at + delay_hours), arrived=happened.ravel(),
                    customer_idx=None if customer is None else repeat(customer, n_outcomes))
