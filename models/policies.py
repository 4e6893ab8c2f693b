"""Policies: one interface, ``decide(batch) -> Decisions``, ``sent(batch, arm)`` and ``update(outcomes)``.

A policy's learned state is a few named arrays ending in ``_``; ``save`` writes them with the
policy's name, parameters and catalog to one ``.npz`` that ``load_policy`` reads back. Arrays with one
row per customer (``customer_state``) start empty and grow to ``max(customer_idx) + 1`` as customers
appear. This module holds the Thompson-sampling family (``ts``, ``hier_ts``, the product default);
the baselines live in ``baselines.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sendwise import engine

from .batch import DecisionBatch, Outcomes
from .catalog import Catalog

FORMAT_VERSION = 2  # 2: learning policies keep their open messages (``pending_``)
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
    customer_state: ClassVar[tuple[str, ...]] = ()  # state arrays with one row per customer, grown lazily

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            POLICIES[cls.name] = cls

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 random_state: np.random.Generator | int | None = None) -> None:
        self.catalog = catalog
        self.value = np.ascontiguousarray(value, dtype=np.float64)
        self.cost = np.ascontiguousarray(cost, dtype=np.float64)
        self.epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
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

    def advance(self, days: float = 1.0) -> Policy:
        """Let ``days`` pass; policies that forget old evidence discount it, the others ignore it."""
        return self

    def sent(self, batch: DecisionBatch, arm: np.ndarray) -> Policy:
        """Note that ``arm[i]`` went out for row i of ``batch`` (the no-message arm sends nothing).

        Call it once per message actually sent, before its outcomes reach ``update``; policies that do
        not learn from counts ignore it (see ``OpenMessagesPolicy``).
        """
        return self

    def _grow_customers(self, customer_idx: np.ndarray | None) -> None:
        """Extend every ``customer_state`` array to cover ``customer_idx`` (new rows: 0, or -1 for ints)."""
        if customer_idx is None or customer_idx.size == 0 or not self.customer_state:
            return
        if int(customer_idx.min()) < 0:
            raise ValueError(f"`customer_idx` must be >= 0; got {int(customer_idx.min())}")
        n_customers = int(customer_idx.max()) + 1
        for name in self.customer_state:
            arr = getattr(self, name)
            if arr.shape[0] < n_customers:
                fill = -1 if np.issubdtype(arr.dtype, np.integer) else 0
                extra = np.full((n_customers - arr.shape[0], *arr.shape[1:]), fill, dtype=arr.dtype)
                setattr(self, name, np.concatenate([arr, extra]))

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


def check_range(name: str, value: float, low: float, high: float = np.inf, *, open_low: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number >= low (> low with ``open_low``) and <= high."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"`{name}` must be a number; got {value!r}")
    number = float(value)
    lower = f"> {low:g}" if open_low else f">= {low:g}"
    rule = lower if high == np.inf else f"{lower} and <= {high:g}"
    if not (np.isfinite(number) and (number > low if open_low else number >= low) and number <= high):
        raise ValueError(f"`{name}` must be a finite number {rule}; got {value!r}")
    return number


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
        if name in cls.customer_state:  # grown per customer: any number of rows
            expected = (arrays[name].shape[0], *expected[1:])
        if arrays[name].shape != expected:
            raise ValueError(f"policy file {str(path)!r}: array {name!r} has shape {arrays[name].shape}, "
                             f"expected {expected}")
        setattr(policy, name, np.ascontiguousarray(arrays[name]))
    return policy


class OpenMessagesPolicy(Policy):
    """A policy that learns rates from outcome counts and holds every sent message open until it resolves.

    A positive outcome (a click, an unsubscribe) arrives hours after the send, but a message without it
    is reported only when its attribution window closes, days later. Rates from resolved outcomes alone
    would, for days, count the successes of recent messages without their failures: every rate
    inflated, rare ones (unsubscribes) and long-window channels most. So each message reported by
    ``sent`` adds one open count per outcome to ``pending_`` (indexed like the policy's counts, cell
    first and arm last), which counts as a failure until ``update`` resolves that outcome; a resolved
    outcome is counted once, as what it was.
    """

    pending_: np.ndarray

    def sent(self, batch: DecisionBatch, arm: np.ndarray) -> OpenMessagesPolicy:
        rows, arm = sent_rows(batch, arm, self.catalog.null_arm)
        open_pending(self.pending_, {"cell_idx": batch.cell_idx[rows], "arm": arm})
        return self


def sent_rows(batch: DecisionBatch, arm: np.ndarray, null_arm: int) -> tuple[np.ndarray, np.ndarray]:
    """The rows of ``batch`` whose ``arm`` sends a message, and those arms (int64)."""
    arm = np.asarray(arm)
    if arm.shape != (batch.n_rows,) or not np.issubdtype(arm.dtype, np.integer):
        raise ValueError(f"`arm` must be an int array of shape ({batch.n_rows},); got {arm.dtype} {arm.shape}")
    rows = np.flatnonzero(arm != null_arm)
    return rows, arm[rows].astype(np.int64)


def open_pending(pending: np.ndarray, index: dict[str, np.ndarray]) -> None:
    """Add one open count at ``pending[first[i], ..., last[i]]`` for every i (each outcome of a message).

    ``index`` names the two int arrays, for the first and the last axis of ``pending``.
    """
    check_index((pending.shape[0], pending.shape[-1]), index, "sent messages")
    first, last = index.values()
    np.add.at(np.moveaxis(pending, -1, 1), (first, last), 1.0)  # a view: every middle index at once


def close_pending(pending: np.ndarray, at: tuple[np.ndarray, ...]) -> None:
    """Remove one open count per row of ``at`` (one int array per axis), never going below 0.

    An outcome of a message never reported by ``sent`` (e.g. a served model replaying its log) finds
    no open count to remove.
    """
    np.subtract.at(pending, at, 1.0)
    np.maximum(pending, 0.0, out=pending)


class ThompsonPolicy(OpenMessagesPolicy):
    """Cost-aware Beta–Bernoulli Thompson sampling, one posterior per cell × outcome × arm.

    Each cell learns alone from Beta(``prior_alpha``, ``prior_beta``); see ``HierarchicalThompsonPolicy``
    for cells that borrow strength from their parents. Open messages count as failures until they
    resolve (``OpenMessagesPolicy``).
    """

    name = "ts"
    state_names = ("alpha_", "beta_", "pending_")

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_alpha: float = 1.0, prior_beta: float = 1.0,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.prior_alpha = check_range("prior_alpha", prior_alpha, 0.0, open_low=True)
        self.prior_beta = check_range("prior_beta", prior_beta, 0.0, open_low=True)
        shape = (catalog.n_cells, len(catalog.outcomes), catalog.n_arms)
        self.alpha_ = np.full(shape, float(prior_alpha))
        self.beta_ = np.full(shape, float(prior_beta))
        self.pending_ = np.zeros(shape)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta}

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), open messages as failures."""
        return self.alpha_, self.beta_ + self.pending_

    def decide(self, batch: DecisionBatch) -> engine.Decisions:
        return engine.decide_batch(
            *self.posterior(), self.value, self.cost, batch.mask, cell_idx=batch.cell_idx,
            cost_row_idx=batch.cost_row_idx, epsilon=self.epsilon, null_arm=self.catalog.null_arm, rng=self.rng_,
        )

    def propensities(self, batch: DecisionBatch, n_draws: int = 1000) -> np.ndarray:
        """Probability of every arm per row, float64 (n_rows, n_arms), from the engine's Monte-Carlo kernel."""
        return engine.choice_probabilities(
            *self.posterior(), self.value, self.cost, batch.mask, cell_idx=batch.cell_idx,
            cost_row_idx=batch.cost_row_idx, epsilon=self.epsilon, null_arm=self.catalog.null_arm,
            n_draws=n_draws, rng=self.rng_,
        )

    def update(self, outcomes: Outcomes) -> ThompsonPolicy:
        """Add resolved outcomes to the posterior and close their open messages (one per row)."""
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        at = (outcomes.cell_idx[keep], outcomes.outcome_idx[keep], outcomes.arm[keep])
        engine.update(self.alpha_, self.beta_, *at, outcomes.successes[keep], outcomes.failures[keep])
        close_pending(self.pending_, at)
        return self


def hierarchy_levels(catalog: Catalog) -> list[np.ndarray]:
    """The catalog's pooling levels below global, coarsest first, without levels that add nothing.

    A level with one group repeats the global level, and a level whose groups are those of the level
    below (region × industry when there is one campaign type) would count the same evidence twice;
    both are dropped, so each distinct level pools once.
    """
    kept: list[np.ndarray] = []
    n_finer = catalog.n_cells
    for groups in reversed(catalog.level_groups()):
        n_groups = np.unique(groups).size
        if 1 < n_groups < n_finer:
            kept.insert(0, groups)
            n_finer = n_groups
    return kept


def check_index(shape: tuple[int, ...], index: dict[str, np.ndarray], source: str = "outcomes") -> None:
    """Every int array of ``index`` (name -> indices along one axis) must lie inside ``shape``."""
    for axis, (name, idx) in enumerate(index.items()):
        bad = np.flatnonzero((idx < 0) | (idx >= shape[axis]))
        if bad.size:
            raise ValueError(f"`{name}` of {source} must lie in [0, {shape[axis]}); got {idx[bad[0]]}")


def add_counts(successes: np.ndarray, failures: np.ndarray, index: dict[str, np.ndarray], outcomes: Outcomes,
               keep: np.ndarray) -> None:
    """Add the ``keep`` rows of ``outcomes`` to count arrays at ``index`` (name -> int array per axis)."""
    check_index(successes.shape, index)
    for name in ("successes", "failures"):
        weights = getattr(outcomes, name)[keep]
        if not np.all(np.isfinite(weights) & (weights >= 0)):
            raise ValueError(f"`outcomes.{name}` must be finite and >= 0")
    at = tuple(index.values())
    np.add.at(successes, at, outcomes.successes[keep])
    np.add.at(failures, at, outcomes.failures[keep])


class HierarchicalThompsonPolicy(OpenMessagesPolicy):
    """Hierarchical cost-aware Thompson sampling: the product's default policy.

    Each cell's Beta posterior is pooled from its parents: all arms → global per arm → region →
    region × industry → cell, each parent lending its posterior as the prior of the level below,
    worth at most ``prior_strength`` pseudo-counts (``engine.pool_posteriors``); a cell with no data
    starts from its parents, and a cold start from about Beta(1, 1). Draws come from
    Beta(sharpness·α, sharpness·β): the same means with about 1/sharpness of the variance, which curbs
    the over-exploration of plain Thompson sampling over many arms (posterior reshaping, Chapelle & Li
    2011). With ``personal_weight > 0`` a customer's own outcomes on a channel are added, with that
    weight, to the posterior of the channel's arms; with ``discount < 1`` every count is multiplied by
    ``discount`` per day passed to ``advance``. Open messages count as failures until they resolve
    (``OpenMessagesPolicy``), in the pooled counts and, per channel, in the customer's own.
    """

    name = "hier_ts"
    state_names = ("successes_", "failures_", "pending_", "personal_successes_", "personal_failures_",
                   "personal_pending_")
    customer_state = ("personal_successes_", "personal_failures_", "personal_pending_")
    evidence: ClassVar[tuple[str, ...]] = ("successes_", "failures_", "personal_successes_",
                                           "personal_failures_")  # what ``advance`` fades; open messages stay

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_strength: float = 160.0, sharpness: float = 4.0, personal_weight: float = 0.0,
                 discount: float = 1.0, random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.prior_strength = check_range("prior_strength", prior_strength, 0.0, open_low=True)
        self.sharpness = check_range("sharpness", sharpness, 0.0, open_low=True)
        self.personal_weight = check_range("personal_weight", personal_weight, 0.0)
        self.discount = check_range("discount", discount, 0.0, 1.0, open_low=True)
        n_outcomes = len(catalog.outcomes)
        self.successes_ = np.zeros((catalog.n_cells, n_outcomes, catalog.n_arms))
        self.failures_ = np.zeros_like(self.successes_)
        self.pending_ = np.zeros_like(self.successes_)
        self.personal_successes_ = np.zeros((0, n_outcomes, len(catalog.channels)))
        self.personal_failures_ = np.zeros_like(self.personal_successes_)
        self.personal_pending_ = np.zeros_like(self.personal_successes_)
        self._levels = hierarchy_levels(catalog)
        self._arm_channel = catalog.arm_channels()
        self._pooled: tuple[np.ndarray, np.ndarray] | None = None

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "prior_strength": self.prior_strength, "sharpness": self.sharpness,
                "personal_weight": self.personal_weight, "discount": self.discount}

    def posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Pooled Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), before sharpening.

        Open messages count as failures at every level. Recomputed only when the counts changed since
        the last call (``engine.pool_posteriors``).
        """
        if self._pooled is None:
            pooled = engine.pool_posteriors(self.successes_, self.failures_ + self.pending_, self._levels,
                                            self.prior_strength)
            self._pooled = (pooled.alpha, pooled.beta)
        return self._pooled

    def decide(self, batch: DecisionBatch) -> engine.Decisions:
        alpha, beta, options = self._sampling_inputs(batch)
        customers = self._personal_customers(batch)
        if customers is not None:
            return engine.decide_personal(alpha, beta, self.value, self.cost, batch.mask, self._personal_counts(),
                                          customers, **options)
        return engine.decide_batch(alpha, beta, self.value, self.cost, batch.mask, **options)

    def propensities(self, batch: DecisionBatch, n_draws: int = 1000) -> np.ndarray:
        """Probability of every arm per row, float64 (n_rows, n_arms), from the engine's Monte-Carlo kernels."""
        alpha, beta, options = self._sampling_inputs(batch)
        customers = self._personal_customers(batch)
        if customers is not None:
            return engine.personal_choice_probabilities(alpha, beta, self.value, self.cost, batch.mask,
                                                        self._personal_counts(), customers, n_draws=n_draws,
                                                        **options)
        return engine.choice_probabilities(alpha, beta, self.value, self.cost, batch.mask, n_draws=n_draws,
                                           **options)

    def sent(self, batch: DecisionBatch, arm: np.ndarray) -> HierarchicalThompsonPolicy:
        super().sent(batch, arm)
        customers = self._personal_customers(batch)
        if customers is not None:
            self._grow_customers(customers)
            rows, arm = sent_rows(batch, arm, self.catalog.null_arm)
            open_pending(self.personal_pending_, {"customer_idx": customers[rows], "channel": self._arm_channel[arm]})
        self._pooled = None
        return self

    def update(self, outcomes: Outcomes) -> HierarchicalThompsonPolicy:
        """Add resolved outcomes to the counts and close their open messages (one per row)."""
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        arm, outcome_idx = outcomes.arm[keep], outcomes.outcome_idx[keep]
        index = {"cell_idx": outcomes.cell_idx[keep], "outcome_idx": outcome_idx, "arm": arm}
        add_counts(self.successes_, self.failures_, index, outcomes, keep)
        close_pending(self.pending_, tuple(index.values()))
        if self.personal_weight > 0 and outcomes.customer_idx is not None:
            customer_idx = outcomes.customer_idx[keep]
            self._grow_customers(customer_idx)
            personal = {"customer_idx": customer_idx, "outcome_idx": outcome_idx, "channel": self._arm_channel[arm]}
            add_counts(self.personal_successes_, self.personal_failures_, personal, outcomes, keep)
            close_pending(self.personal_pending_, tuple(personal.values()))
        self._pooled = None
        return self

    def advance(self, days: float = 1.0) -> HierarchicalThompsonPolicy:
        """Multiply every count by ``discount ** days``, so old evidence fades (non-stationarity).

        Open messages do not fade: each still resolves once.
        """
        days = check_range("days", days, 0.0)
        if self.discount < 1.0:
            for name in self.evidence:
                getattr(self, name)[...] *= self.discount ** days
            self._pooled = None
        return self

    def _personal_customers(self, batch: DecisionBatch) -> np.ndarray | None:
        """The batch's customers when decisions are personalised, else None."""
        return batch.customer_idx if self.personal_weight > 0 else None

    def _personal_counts(self) -> engine.PersonalCounts:
        return engine.PersonalCounts(self.personal_successes_, self.personal_failures_ + self.personal_pending_,
                                     self._arm_channel, self.personal_weight * self.sharpness)

    def _sampling_inputs(self, batch: DecisionBatch) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """Sharpened posteriors and the keyword arguments every engine sampler takes."""
        self._grow_customers(self._personal_customers(batch))
        alpha, beta = self.posterior()
        options = {"cell_idx": batch.cell_idx, "cost_row_idx": batch.cost_row_idx, "epsilon": self.epsilon,
                   "null_arm": self.catalog.null_arm, "rng": self.rng_}
        return alpha * self.sharpness, beta * self.sharpness, options
