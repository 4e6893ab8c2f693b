"""Who is in which group of an experiment: a keyed hash of the customer's pseudonym, nothing else.

A customer's position is ``BLAKE2b(pseudonym, key=salt)`` read as a number in [0, 1); the first
``holdout_share`` of [0, 1) is the holdout (no message), the next ``baseline_share`` the baseline (what
the team did before), the rest the model. The position depends on the pseudonym and the salt alone, so
a customer stays in one group across requests, workers, restarts and simulation days, and the groups
of two experiments with different salts are independent of each other and of everything else about
the customer (region, history, the model's state).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..policies import PLAYBOOK_POLICIES
from ..validation import check_count, check_range

HOLDOUT = "holdout"
MODEL = "model"
BASELINE = "baseline"
GROUPS = (HOLDOUT, MODEL, BASELINE)
_KEY_BYTES = 64  # BLAKE2b's longest key
_SCALE = float(2**64)


@dataclass(frozen=True)
class Assignment:
    """An experiment's salt and configured shares; ``model_share`` is what the other two leave.

    Examples
    --------
    >>> split = Assignment(salt="spring-2026", holdout_share=0.05, baseline_share=0.45)
    >>> split.group_of("c-42") in GROUPS, split.group_of("c-42") == split.group_of("c-42")
    (True, True)
    """

    salt: str
    holdout_share: float = 0.0
    baseline_share: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.salt, str) or not self.salt:
            raise ValueError(f"`salt` must be a non-empty string, one per experiment; got {self.salt!r}")
        if len(self.salt.encode()) > _KEY_BYTES:
            raise ValueError(f"`salt` must be at most {_KEY_BYTES} bytes (UTF-8); got {len(self.salt.encode())}")
        shares = group_shares(self.holdout_share, self.baseline_share)
        object.__setattr__(self, "holdout_share", shares[HOLDOUT])
        object.__setattr__(self, "baseline_share", shares[BASELINE])

    @property
    def model_share(self) -> float:
        return self.shares[MODEL]

    @property
    def shares(self) -> dict[str, float]:
        """Configured share of each group, in ``GROUPS`` order."""
        return group_shares(self.holdout_share, self.baseline_share)

    def positions(self, pseudonyms: Sequence[str]) -> np.ndarray:
        """Each pseudonym's place in [0, 1), float64 (n,): its keyed hash, uniform over customers."""
        key = self.salt.encode()
        return np.array([int.from_bytes(hashlib.blake2b(p.encode(), key=key, digest_size=8).digest(), "big")
                         / _SCALE for p in pseudonyms], dtype=np.float64)

    def groups(self, pseudonyms: Sequence[str]) -> np.ndarray:
        """Each pseudonym's group name (``GROUPS``), an object array (n,)."""
        position = self.positions(pseudonyms)
        holdout, baseline_end = self.holdout_share, self.holdout_share + self.baseline_share
        names = np.full(position.shape, MODEL, dtype=object)
        names[position < baseline_end] = BASELINE
        names[position < holdout] = HOLDOUT
        return names

    def group_of(self, pseudonym: str) -> str:
        """The group of one customer."""
        return str(self.groups([pseudonym])[0])


def group_shares(holdout_share: float, baseline_share: float) -> dict[str, float]:
    """Each group's share, in ``GROUPS`` order: the two given ones (each in [0, 1], their sum <= 1), the
    model the rest."""
    holdout = check_range("holdout_share", holdout_share, 0.0, 1.0)
    baseline = check_range("baseline_share", baseline_share, 0.0, 1.0)
    if holdout + baseline > 1.0:
        raise ValueError(f"`holdout_share` + `baseline_share` must be <= 1 (the model gets the rest); "
                         f"got {holdout:g} + {baseline:g} = {holdout + baseline:g}")
    return {HOLDOUT: holdout, MODEL: max(0.0, 1.0 - holdout - baseline), BASELINE: baseline}


@dataclass(frozen=True)
class Experiment:
    """An experiment as the simulator runs it: who is in which group, and what each group gets.

    The holdout gets no message; the model group the policy under test; the baseline group
    ``baseline``, a playbook policy (``static``: the world's playbook; ``random_hour``: its channel at a
    random allowed hour). Only the model group teaches the policy, unless ``shadow``: then the baseline
    group's messages teach it too (they are what was really sent) and each baseline decision logs
    whether the model would have chosen the same arm. ``pre_days`` of the baseline for everyone before
    the experiment measure each customer's pre-period engagement, the CUPED covariate.
    """

    assignment: Assignment
    baseline: str = "static"
    shadow: bool = False
    pre_days: int = 0

    def __post_init__(self) -> None:
        if self.baseline not in PLAYBOOK_POLICIES:
            raise ValueError(f"unknown baseline {self.baseline!r}; known: {', '.join(PLAYBOOK_POLICIES)}")
        if self.shadow and self.assignment.baseline_share == 0:
            raise ValueError("shadow mode serves the baseline and logs the model's choice: give it a baseline "
                             "share > 0 (the model share is the small part served by the model)")
        object.__setattr__(self, "pre_days", check_count("pre_days", self.pre_days, low=0))


def pseudonym(customer_idx: int) -> str:
    """The pseudonym of simulated customer ``customer_idx``, what the assignment hashes."""
    return f"customer-{customer_idx}"
