"""Policies: one interface, ``decide(batch) -> Decisions`` and ``update(outcomes)``.

A policy's learned state is a few named arrays ending in ``_``; ``save`` writes them with the
policy's name, parameters and catalog to one ``.npz`` that ``load_policy`` reads back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sendwise import engine

from .batch import DecisionBatch, Outcomes
from .catalog import Catalog

FORMAT_VERSION = 1
POLICIES: dict[str, type[Policy]] = {}


class Policy:
    """Base class: stores the catalog and the economics; subclasses add learned arrays.

    Parameters
    ----------
    catalog : the arms, cells and outcomes.
    value : float64 (n_outcomes,), value of one occurrence of each outcome (negative for harm).
    cost : float64 (n_regions, n_arms), cost per message on each arm in each region.
    epsilon : probability of a uniform draw among the allowed arms (exploration floor).
    random_state : seed or Generator for every random choice the policy makes.
    """

    name: ClassVar[str] = ""
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            POLICIES[cls.name] = cls

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 random_state: np.random.Generator | int | None = None) -> None:
        self.catalog = catalog
        self.value = np.ascontiguousarray(value, dtype=np.float64)
        self.cost = np.ascontiguousarray(cost, dtype=np.float64)
        self.epsilon = epsilon
        self.random_state = random_state
        if self.value.shape != (len(catalog.outcomes),):
            raise ValueError(f"`value` must have shape ({len(catalog.outcomes)},); got {self.value.shape}")
        if self.cost.ndim != 2 or self.cost.shape[1] != catalog.n_arms:
            raise ValueError(f"`cost` must have shape (n_regions, {catalog.n_arms}); got {self.cost.shape}")
        self.rng_ = np.random.default_rng(random_state)

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters (JSON-friendly) that, with the catalog and economics, rebuild the policy."""
        return {"epsilon": self.epsilon}

    def decide(self, batch: DecisionBatch) -> engine.Decisions:
        raise NotImplementedError

    def update(self, outcomes: Outcomes) -> Policy:
        """Learn from resolved outcomes; policies that do not learn ignore them."""
        return self

    def save(self, path: str | Path) -> Path:
        """Write the policy to one ``.npz`` (format version, name, parameters, catalog, learned arrays)."""
        path = Path(path)
        meta = {
            "format_version": FORMAT_VERSION,
            "policy": self.name,
            "params": self.get_params(),
            "catalog": self.catalog.to_dict(),
        }
        arrays = {n: getattr(self, n) for n in self.state_names}
        with path.open("wb") as fh:
            np.savez(fh, __meta__=np.array(json.dumps(meta)), value=self.value, cost=self.cost, **arrays)
        return path


def load_policy(path: str | Path, random_state: np.random.Generator | int | None = None) -> Policy:
    """Read a policy written by ``Policy.save``; errors say which file and what is wrong with it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["__meta__"]))
            arrays = {k: data[k] for k in data.files if k != "__meta__"}
    except FileNotFoundError:
        raise FileNotFoundError(f"policy file {str(path)!r} does not exist") from None
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"policy file {str(path)!r} is not a sendwise policy: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"policy file {str(path)!r} has format version {meta.get('format_version')!r}; "
            f"this sendwise reads version {FORMAT_VERSION}"
        )
    cls = POLICIES.get(meta.get("policy", ""))
    if cls is None:
        raise ValueError(f"policy file {str(path)!r} names unknown policy {meta.get('policy')!r}; "
                         f"known: {', '.join(sorted(POLICIES))}")
    policy = cls(Catalog.from_dict(meta["catalog"]), arrays.pop("value"), arrays.pop("cost"),
                 random_state=random_state, **meta["params"])
    missing = [n for n in cls.state_names if n not in arrays]
    if missing:
        raise ValueError(f"policy file {str(path)!r} lacks arrays {missing}")
    for name in cls.state_names:
        expected = getattr(policy, name).shape
        if arrays[name].shape != expected:
            raise ValueError(f"policy file {str(path)!r}: array {name!r} has shape {arrays[name].shape}, "
                             f"expected {expected}")
        setattr(policy, name, np.ascontiguousarray(arrays[name]))
    return policy


class ThompsonPolicy(Policy):
    """Cost-aware Beta–Bernoulli Thompson sampling, one posterior per cell × outcome × arm.

    Each cell learns alone from Beta(``prior_alpha``, ``prior_beta``); see ``HierarchicalThompsonPolicy``
    for cells that borrow strength from their parents.
    """

    name = "ts"
    state_names = ("alpha_", "beta_")

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_alpha: float = 1.0, prior_beta: float = 1.0,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.prior_alpha = prior_alpha
        self.prior_beta = prior_beta
        shape = (catalog.n_cells, len(catalog.outcomes), catalog.n_arms)
        self.alpha_ = np.full(shape, float(prior_alpha))
        self.beta_ = np.full(shape, float(prior_beta))

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta}

    def decide(self, batch: DecisionBatch) -> engine.Decisions:
        return engine.decide_batch(
            self.alpha_, self.beta_, self.value, self.cost, batch.mask, cell_idx=batch.cell_idx,
            cost_row_idx=batch.cost_row_idx, epsilon=self.epsilon, null_arm=self.catalog.null_arm, rng=self.rng_,
        )

    def propensities(self, batch: DecisionBatch, n_draws: int = 1000) -> np.ndarray:
        """Probability of every arm per row, float64 (n_rows, n_arms), from the engine's Monte-Carlo kernel."""
        return engine.choice_probabilities(
            self.alpha_, self.beta_, self.value, self.cost, batch.mask, cell_idx=batch.cell_idx,
            cost_row_idx=batch.cost_row_idx, epsilon=self.epsilon, null_arm=self.catalog.null_arm,
            n_draws=n_draws, rng=self.rng_,
        )

    def update(self, outcomes: Outcomes) -> ThompsonPolicy:
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        engine.update(self.alpha_, self.beta_, outcomes.cell_idx[keep], outcomes.outcome_idx[keep],
                      outcomes.arm[keep], outcomes.successes[keep], outcomes.failures[keep])
        return self
