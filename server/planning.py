"""The channel plan of the served model: its learned posterior over the store's own traffic.

``sendwise plan --served`` asks what ``sendwise plan`` asks of a simulation (does SMS pay its fixed
monthly cost at my size?) of the model the server serves now: the configured model caught up with
every loop input in the store, acting on the decisions the store logged (``plan_from_posterior``).
Nothing is written: the store is only read.
"""

from __future__ import annotations

from collections.abc import Sequence

from sendwise.models import Economics
from sendwise.models.sim.plan import PlanResult, plan_from_posterior

from .export import decision_log
from .guardrails import ServingRules
from .live_model import LiveModel
from .model_loader import ModelLoader, serving_world
from .settings import Settings
from .store import Store


def served_plan(settings: Settings, store: Store, maus: Sequence[int], *, channels: Sequence[str] | None = None,
                n_draws: int = 400, seed: int = 0) -> PlanResult:
    """The plan of the model ``settings`` serve, with the fixed monthly costs of the serving world."""
    world = serving_world(settings)
    if world is None:
        raise ValueError("SENDWISE_WORLD is none: a plan needs the world's fixed monthly cost of each channel")
    policy, version = ModelLoader(settings, world).load()
    live = LiveModel(policy, version, ServingRules.from_world(settings, world))
    live.catch_up(store, fresh=True)
    posterior = live.learner.posterior()
    if posterior is None:
        raise ValueError(f"the served policy {policy.name!r} keeps no posterior to plan from")
    log = decision_log(store)
    if log.catalog != live.catalog:
        raise ValueError(f"the store's latest decisions were made by a model whose options differ from the served "
                         f"{version!r}; plan once it has served its own decisions")
    fixed = {c: float(cost) for c, cost in zip(world.catalog.channels, world.fixed_monthly_cost, strict=True)
             if c in live.catalog.channels}
    return plan_from_posterior(posterior, Economics(policy.value, policy.cost), log, fixed, maus, channels=channels,
                               world=world.name, policy=version, n_draws=n_draws, random_state=seed)
