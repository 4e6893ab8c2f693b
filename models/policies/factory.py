"""``make_policy``: the one way to build a registered policy, for the simulator, the server and evaluation."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np

from ..domain import Catalog, Economics, PriorSource, World, world_prior
from .base import POLICIES, Policy

DEFAULT_PRIOR_TRIALS = 2.0
PLAYBOOK_POLICIES = ("static", "random_hour")  # they follow the world's playbook


def make_policy(name: str, catalog: Catalog, economics: Economics, *,
                random_state: np.random.Generator | int | None = None, **params: Any) -> Policy:
    """The policy registered as ``name`` on ``catalog``, maximising ``economics``, with ``params`` set.

    Errors name the policy: an unknown name lists the known ones, a parameter the policy does not
    take or a value its rules refuse says which.
    """
    if name not in POLICIES:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(sorted(POLICIES))}")
    try:
        return POLICIES[name](catalog, economics.value, economics.cost, random_state=random_state, **params)
    except TypeError as exc:
        raise ValueError(f"policy {name!r} rejected parameters {sorted(params)}: {exc}") from None


def takes_prior(name: str) -> bool:
    """Whether the policy registered as ``name`` starts from informative pseudo-counts (``prior=``)."""
    return name in POLICIES and "prior" in inspect.signature(POLICIES[name].__init__).parameters


def make_world_policy(name: str, world: World, *, seed: int, prior: PriorSource | None = None,
                      prior_trials: float = DEFAULT_PRIOR_TRIALS, **params: Any) -> Policy:
    """``make_policy`` on a world: its catalog and economics, its playbook for ``static`` and ``random_hour``.

    ``prior`` gives a policy that ``takes_prior`` an informative cold start (``world_prior``):
    ``"world"`` from the world's own rates (what a server uses), ``"perturbed"`` from a noisy,
    hour-blind copy (what a benchmark scored on this world uses), ``prior_trials`` pseudo-sends per
    cell and arm. ``seed`` seeds the policy and the perturbation.
    """
    if name in PLAYBOOK_POLICIES:
        params = {"playbook": world.playbook, **params}
    if prior is not None:
        if not takes_prior(name):
            known = ", ".join(n for n in sorted(POLICIES) if takes_prior(n))
            raise ValueError(f"policy {name!r} takes no informative prior; {known} do")
        params = {**params, "prior": world_prior(world, prior_trials, source=prior, seed=seed)}
    return make_policy(name, world.catalog, world.economics, random_state=seed, **params)


def make_cold_start(name: str, world: World, *, seed: int, prior_trials: float) -> Policy:
    """The policy a fresh server starts from: on the world's own rates (``prior_trials`` pseudo-sends
    per cell and arm) when the policy ``takes_prior`` and ``prior_trials > 0``, else uninformed.

    The in-process twin of a served run builds its policy here too, so both start from the same state.
    """
    informed = prior_trials > 0 and takes_prior(name)
    return make_world_policy(name, world, seed=seed, prior="world" if informed else None, prior_trials=prior_trials)
