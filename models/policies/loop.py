"""The learning loop's contract: what every driver (the simulator, the server) hands the loop, and when.

One cycle, in order of time (hours on any monotone clock; the simulator counts from day 0, the server
from the Unix epoch):

1. ``decide(batch, now)``: choose one arm per row, with the exact probability it was chosen with.
2. ``sent(sends)``: the messages that actually went out (the no-message arm sends nothing).
3. ``resolve(resolved)``: outcomes as they become known: an outcome that happened (a click, an
   unsubscribe) when it arrives, every outcome that did not happen when its attribution window closes.
4. ``advance(now)``: time passes (open messages age, old evidence may fade).

``Learner`` (``models/policies/learner.py``) is the one implementation that learns; the served-loop benchmark
drives a running server through the same protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Protocol

import numpy as np

from ..domain import DecisionBatch, check_same_rows


class Choices(NamedTuple):
    """What a loop decided for a batch, one entry per row.

    arm : int64, the chosen arm. propensity : float64, the probability with which that arm was drawn
    (exact: the arm is sampled from the very vector this entry comes from). explored : bool, the arm
    is not the policy's most probable choice for the row: drawn by the exploration floor, or with an
    exploitation probability below the row's largest (False when only one arm is allowed). support :
    int64, how many arms had a positive probability. epsilon : float64, the exploration floor used.
    """

    arm: np.ndarray
    propensity: np.ndarray
    explored: np.ndarray
    support: np.ndarray
    epsilon: np.ndarray


@dataclass(frozen=True)
class Sends:
    """Messages that went out: ``key`` identifies each (a decision id), ``sent_at`` in the loop's hours."""

    key: np.ndarray
    cell_idx: np.ndarray
    arm: np.ndarray
    sent_at: np.ndarray
    customer_idx: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_same_rows(self, ("key", "cell_idx", "arm", "sent_at", "customer_idx"))

    @property
    def n_rows(self) -> int:
        return int(self.key.shape[0])


@dataclass(frozen=True)
class Resolved:
    """Outcomes that became known, one row per (message, outcome).

    ``arrived`` rows are outcomes that happened (``successes`` > 0, weights may exceed 1 for
    value-weighted clicks), at ``resolved_at``; the others are windows that closed without the outcome
    (``failures`` = 1). ``sent_at`` and ``resolved_at`` are in the loop's hours.
    """

    key: np.ndarray
    cell_idx: np.ndarray
    arm: np.ndarray
    outcome_idx: np.ndarray
    successes: np.ndarray
    failures: np.ndarray
    sent_at: np.ndarray
    resolved_at: np.ndarray
    arrived: np.ndarray
    customer_idx: np.ndarray | None = None

    def __post_init__(self) -> None:
        check_same_rows(self, ("key", "cell_idx", "arm", "outcome_idx", "successes", "failures", "sent_at",
                          "resolved_at", "arrived", "customer_idx"))

    @property
    def n_rows(self) -> int:
        return int(self.key.shape[0])


class Loop(Protocol):
    """Anything the simulator can drive: the ``Learner``, or a served model behind HTTP."""

    def decide(self, batch: DecisionBatch, now: float) -> Choices: ...

    def sent(self, sends: Sends) -> None: ...

    def resolve(self, resolved: Resolved) -> None: ...

    def advance(self, now: float) -> None: ...
