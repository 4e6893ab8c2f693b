"""Policies: one contract (``Policy``): exact choice probabilities, ``decide``, ``update``, ``set_open``, ``advance``.

A policy's learned state is a few named arrays ending in ``_``; ``save`` writes them with the
policy's name, parameters and catalog to one ``.npz`` that ``load_policy`` reads back. Arrays with one
row per customer (``customer_state``) start empty and grow to ``max(customer_idx) + 1`` as customers
appear. This module holds the Thompson-sampling family (``ts``, ``hier_ts``, the product default);
the baselines live in ``baselines.py``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from sendwise import engine

from ..domain.batch import DecisionBatch, Outcomes
from ..domain.catalog import Catalog
from .loop import Choices

FORMAT_VERSION = 3  # 3: hier_ts keeps its informative prior; decisions come from a bank of draws
DEFAULT_BANK_DRAWS = 64
PRIOR_FLOOR = 1e-3  # added to informative prior pseudo-counts, so a zero rate still gives a valid Beta
POLICIES: dict[str, type[Policy]] = {}


class Posterior(NamedTuple):
    """Beta parameters of a policy, float64 (n_cells, n_outcomes, n_arms), open messages included."""

    alpha: np.ndarray
    beta: np.ndarray


class OpenCounts(NamedTuple):
    """Weighted counts of messages still open, as provisional failures (set by the ``Learner``).

    cells : float64 (n_cells, n_outcomes, n_arms). customers : float64 (n_customers, n_outcomes,
    n_channels) or None, the same per customer and channel, for policies that personalise.
    """

    cells: np.ndarray
    customers: np.ndarray | None = None


class Policy(ABC):
    """What every policy is: exact choice probabilities per row, learning from resolved outcomes.

    A policy says, for each row of a batch, the probability of each arm when it exploits
    (``exploitation_probabilities``); ``decide`` mixes that vector with the exploration floor
    ``epsilon`` (uniform over the allowed arms) and samples the arm from the mixed vector, so the
    propensity it reports is the true probability of what was done. ``update`` learns from resolved
    outcomes, ``set_open`` hears of the messages still open (the ``Learner`` weighs them), ``advance``
    lets time pass, ``reseed`` restarts the random stream.

    Parameters
    ----------
    catalog : the arms, cells and outcomes.
    value : float64 (n_outcomes,), value of one occurrence of each outcome (negative for harm).
    cost : float64 (n_regions, n_arms), cost per message on each arm in each region.
    epsilon : probability of a uniform draw among the allowed arms (exploration floor).
    random_state : seed or Generator for every random choice the policy makes.
    """

    name: ClassVar[str] = ""
    needs_truth: ClassVar[bool] = False  # reads the simulator's truth from the batch: cannot be served
    always_explores: ClassVar[bool] = False  # every choice is exploration (e.g. uniform random)
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
        self._rng = np.random.default_rng(random_state)

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters (JSON-friendly) that, with the catalog and economics, rebuild the policy."""
        return {"epsilon": self.epsilon}

    @abstractmethod
    def exploitation_probabilities(self, batch: DecisionBatch, *, bank_draws: int | None = None) -> np.ndarray:
        """Probability of every arm per row when the policy exploits, float64 (n_rows, n_arms).

        Zero on masked arms; each row sums to 1. The exploration floor is mixed in by ``propensities``.
        ``bank_draws`` overrides the number of posterior draws of a policy that samples (``BankSampling``);
        policies whose probabilities need no draws ignore it.
        """

    def propensities(self, batch: DecisionBatch, *, bank_draws: int | None = None) -> np.ndarray:
        """Probability of every arm per row, exploration floor included, float64 (n_rows, n_arms).

        Off-policy evaluation asks a sampling policy for a large ``bank_draws``: its probabilities then
        approach those of Thompson sampling itself rather than those of one bank.
        """
        mask = checked_mask(batch, self.catalog.n_arms)
        return mix_exploration(self.exploitation_probabilities(batch, bank_draws=bank_draws), mask, self.epsilon)

    def decide(self, batch: DecisionBatch) -> Choices:
        """One arm per row, sampled from the vector ``propensities`` would report, with its entry."""
        mask = checked_mask(batch, self.catalog.n_arms)
        choices = sample_choices(self.exploitation_probabilities(batch), mask, self.epsilon, self._rng)
        if self.always_explores:
            return choices._replace(explored=np.ones(batch.n_rows, dtype=np.bool_))
        return choices

    def posterior(self) -> Posterior | None:
        """The Beta parameters the policy samples or scores from, open messages included; None if it has none."""
        return None

    @property
    def personalised(self) -> bool:
        """Whether decisions depend on each customer's own history (``DecisionBatch.customer_idx``)."""
        return bool(self.customer_state)

    def update(self, outcomes: Outcomes) -> Policy:
        """Learn from resolved outcomes; policies that do not learn ignore them."""
        return self

    def set_open(self, open_counts: OpenCounts) -> Policy:
        """The weighted messages still open; policies that do not learn from counts ignore them."""
        return self

    def advance(self, days: float = 1.0) -> Policy:
        """Let ``days`` pass; policies that forget old evidence discount it, the others ignore it."""
        return self

    def reseed(self, random_state: np.random.Generator | int | None) -> Policy:
        """Restart every random choice from ``random_state`` (same seed and state: same decisions)."""
        self._rng = np.random.default_rng(random_state)
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


def checked_mask(batch: DecisionBatch, n_arms: int) -> np.ndarray:
    """The batch's mask after checking it is bool (n_rows, n_arms) and allows an arm in every row."""
    mask = np.asarray(batch.mask)
    if mask.dtype != np.bool_ or mask.shape != (batch.n_rows, n_arms):
        raise ValueError(f"`mask` must be a bool array of shape ({batch.n_rows}, {n_arms}); "
                         f"got {mask.dtype} {mask.shape}")
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(f"`mask` must allow at least one arm per row; {empty.size} rows allow none "
                         f"(first: row {empty[0]})")
    return mask


def mix_exploration(exploit: np.ndarray, mask: np.ndarray, epsilon: float) -> np.ndarray:
    """``(1 - epsilon) * exploit + epsilon * uniform(allowed)``: the probability of every arm per row."""
    uniform = mask / mask.sum(axis=1, keepdims=True)
    return (1.0 - epsilon) * exploit + epsilon * uniform


def sample_choices(exploit: np.ndarray, mask: np.ndarray, epsilon: float, rng: np.random.Generator) -> Choices:
    """Sample one arm per row from ``mix_exploration(exploit, mask, epsilon)`` and report its entry.

    Two stages with the same marginal: with probability ``epsilon`` a uniform allowed arm (``explored``),
    else an arm drawn from ``exploit``. The reported propensity is the mixed vector's entry, exactly.
    """
    n_rows = mask.shape[0]
    explored = rng.random(n_rows) < epsilon
    uniforms = rng.random(n_rows)
    uniform = mask / mask.sum(axis=1, keepdims=True)
    arm = np.where(explored, engine.draw_from(uniform, uniforms), engine.draw_from(exploit, uniforms))
    probs = mix_exploration(exploit, mask, epsilon)  # the vector both stages together draw from
    explored &= mask.sum(axis=1) > 1  # with one option there is nothing to explore
    return Choices(arm=arm.astype(np.int64), propensity=probs[np.arange(n_rows), arm], explored=explored,
                   support=np.count_nonzero(probs > 0.0, axis=1).astype(np.int64),
                   epsilon=np.full(n_rows, epsilon))


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
    """A policy that learns rates from outcome counts, with the messages still open as provisional failures.

    A positive outcome (a click, an unsubscribe) arrives hours after the send, but a message without it
    is reported only when its attribution window closes, days later. Rates from resolved outcomes alone
    would, for days, count the successes of recent messages without their failures: every rate
    inflated, rare ones (unsubscribes) and long-window channels most. The ``Learner`` therefore hands
    the policy ``pending_`` (indexed like its counts, cell first and arm last): each open outcome as a
    failure, whole or weighted by the share of its channel's responses already due (``Learner``).
    """

    pending_: np.ndarray

    def set_open(self, open_counts: OpenCounts) -> OpenMessagesPolicy:
        if open_counts.cells.shape != self.pending_.shape:
            raise ValueError(f"open counts must have shape {self.pending_.shape}; got {open_counts.cells.shape}")
        self.pending_ = np.ascontiguousarray(open_counts.cells, dtype=np.float64)
        return self


class BankSampling(OpenMessagesPolicy):
    """Thompson sampling through a bank of shared posterior draws, so choice probabilities are exact.

    For each (cell, cost row) of a batch the engine draws ``bank_draws`` net-value vectors from the
    posterior (``engine.score_bank``); a row's exploitation probability of an arm is the share of
    those draws in which it is the best allowed arm (``engine.bank_probabilities``). Sampling the arm
    from that vector is Thompson sampling on the bank's draws, and it approaches per-row Thompson
    sampling as the bank grows; the logged propensity is the very number the arm was drawn with.
    """

    bank_draws: int

    def sampling_posterior(self, batch: DecisionBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Beta parameters to draw from, float64 (n_banks, n_outcomes, n_arms), and each row's bank."""
        alpha, beta = self.posterior()
        return alpha, beta, batch.cell_idx

    def exploitation_probabilities(self, batch: DecisionBatch, *, bank_draws: int | None = None) -> np.ndarray:
        mask = checked_mask(batch, self.catalog.n_arms)
        alpha, beta, posterior_row = self.sampling_posterior(batch)
        pairs = np.stack([posterior_row, batch.cost_row_idx], axis=1)
        banks, bank_idx = np.unique(pairs, axis=0, return_inverse=True)
        bank_idx = bank_idx.reshape(-1).astype(np.int64)
        needed = np.zeros((banks.shape[0], self.catalog.n_arms), dtype=np.bool_)
        np.logical_or.at(needed, bank_idx, mask)
        scores = engine.score_bank(alpha, beta, self.value, self.cost, banks[:, 0], banks[:, 1], needed,
                                   n_draws=bank_draws or self.bank_draws, null_arm=self.catalog.null_arm,
                                   rng=self._rng)
        return engine.bank_probabilities(scores, bank_idx, mask, epsilon=0.0, null_arm=self.catalog.null_arm)


class ThompsonPolicy(BankSampling):
    """Cost-aware Beta–Bernoulli Thompson sampling, one posterior per cell × outcome × arm.

    Each cell learns alone from Beta(``prior_alpha``, ``prior_beta``) or, given an informative ``prior``
    (pseudo-counts such as ``world_prior``'s), from Beta(prior successes, prior failures); see
    ``HierarchicalThompsonPolicy`` for cells that borrow strength from their parents. Open messages
    count as failures until they resolve (``OpenMessagesPolicy``).
    """

    name = "ts"
    state_names = ("alpha_", "beta_", "pending_")

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_alpha: float = 1.0, prior_beta: float = 1.0, bank_draws: int = DEFAULT_BANK_DRAWS,
                 prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.prior_alpha = check_range("prior_alpha", prior_alpha, 0.0, open_low=True)
        self.prior_beta = check_range("prior_beta", prior_beta, 0.0, open_low=True)
        self.bank_draws = check_count("bank_draws", bank_draws)
        shape = (catalog.n_cells, len(catalog.outcomes), catalog.n_arms)
        if prior is None:
            self.alpha_, self.beta_ = np.full(shape, self.prior_alpha), np.full(shape, self.prior_beta)
        else:  # the informative prior replaces the flat one (a floor keeps zero rates valid Beta parameters)
            prior_successes, prior_failures = checked_prior(prior, shape)
            self.alpha_, self.beta_ = prior_successes + PRIOR_FLOOR, prior_failures + PRIOR_FLOOR
        self.pending_ = np.zeros(shape)

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "prior_alpha": self.prior_alpha, "prior_beta": self.prior_beta,
                "bank_draws": self.bank_draws}

    def posterior(self) -> Posterior:
        """Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), open messages as failures."""
        return Posterior(self.alpha_, self.beta_ + self.pending_)

    def update(self, outcomes: Outcomes) -> ThompsonPolicy:
        """Add resolved outcomes to the posterior."""
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        at = (outcomes.cell_idx[keep], outcomes.outcome_idx[keep], outcomes.arm[keep])
        engine.update(self.alpha_, self.beta_, *at, outcomes.successes[keep], outcomes.failures[keep])
        return self


def check_count(name: str, value: int, low: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"`{name}` must be a whole number >= {low}; got {value!r}")
    return int(value)


def checked_prior(prior: tuple[np.ndarray, np.ndarray] | None, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Informative prior pseudo-counts (successes, failures) of ``shape``, zeros when there is none."""
    if prior is None:
        return np.zeros(shape), np.zeros(shape)
    successes, failures = (np.array(p, dtype=np.float64) for p in prior)
    for label, counts in (("successes", successes), ("failures", failures)):
        if counts.shape != shape:
            raise ValueError(f"prior {label} must have shape {shape}; got {counts.shape}")
        if not np.all(np.isfinite(counts) & (counts >= 0)):
            raise ValueError(f"prior {label} must be finite and >= 0")
    return successes, failures


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


class HierarchicalThompsonPolicy(BankSampling):
    """Hierarchical cost-aware Thompson sampling: the product's default policy.

    Each cell's Beta posterior is pooled from its parents: all arms → global per arm → region →
    region × industry → cell, each parent lending its posterior as the prior of the level below,
    worth at most ``prior_strength`` pseudo-counts (``engine.pool_posteriors``); a cell with no data
    starts from its parents, and a cold start from the informative ``prior`` pseudo-counts (e.g. a
    world's sourced rates, ``world_prior``) or, without one, about Beta(1, 1). Draws come from
    Beta(sharpness·α, sharpness·β): the same means with about 1/sharpness of the variance, which curbs
    the over-exploration of plain Thompson sampling over many arms (posterior reshaping, Chapelle & Li
    2011). With ``personal_weight > 0`` a customer's own outcomes on a channel are added, with that
    weight, to the posterior of the channel's arms; with ``discount < 1`` every count is multiplied by
    ``discount`` per day passed to ``advance``. Open messages count as failures
    (``OpenMessagesPolicy``), in the pooled counts and, per channel, in the customer's own.
    """

    name = "hier_ts"
    state_names = ("successes_", "failures_", "pending_", "prior_successes_", "prior_failures_",
                   "personal_successes_", "personal_failures_", "personal_pending_")
    customer_state = ("personal_successes_", "personal_failures_", "personal_pending_")
    evidence: ClassVar[tuple[str, ...]] = ("successes_", "failures_", "personal_successes_",
                                           "personal_failures_")  # what ``advance`` fades; prior and open stay

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_strength: float = 160.0, sharpness: float = 4.0, personal_weight: float = 0.0,
                 discount: float = 1.0, bank_draws: int = DEFAULT_BANK_DRAWS,
                 prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self.prior_strength = check_range("prior_strength", prior_strength, 0.0, open_low=True)
        self.sharpness = check_range("sharpness", sharpness, 0.0, open_low=True)
        self.personal_weight = check_range("personal_weight", personal_weight, 0.0)
        self.discount = check_range("discount", discount, 0.0, 1.0, open_low=True)
        self.bank_draws = check_count("bank_draws", bank_draws)
        n_outcomes = len(catalog.outcomes)
        shape = (catalog.n_cells, n_outcomes, catalog.n_arms)
        self.successes_ = np.zeros(shape)
        self.failures_ = np.zeros(shape)
        self.pending_ = np.zeros(shape)
        self.prior_successes_, self.prior_failures_ = checked_prior(prior, shape)
        self.personal_successes_ = np.zeros((0, n_outcomes, len(catalog.channels)))
        self.personal_failures_ = np.zeros_like(self.personal_successes_)
        self.personal_pending_ = np.zeros_like(self.personal_successes_)
        self._levels = hierarchy_levels(catalog)
        self._arm_channel = catalog.arm_channels()
        self._pooled: Posterior | None = None

    def get_params(self) -> dict[str, Any]:
        return {**super().get_params(), "prior_strength": self.prior_strength, "sharpness": self.sharpness,
                "personal_weight": self.personal_weight, "discount": self.discount, "bank_draws": self.bank_draws}

    def posterior(self) -> Posterior:
        """Pooled Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), before sharpening.

        Prior pseudo-counts and open messages (as failures) count at every level. Recomputed only when
        the counts changed since the last call (``engine.pool_posteriors``).
        """
        if self._pooled is None:
            pooled = engine.pool_posteriors(self.successes_ + self.prior_successes_,
                                            self.failures_ + self.prior_failures_ + self.pending_,
                                            self._levels, self.prior_strength)
            self._pooled = Posterior(pooled.alpha, pooled.beta)
        return self._pooled

    @property
    def personalised(self) -> bool:
        return self.personal_weight > 0

    def sampling_posterior(self, batch: DecisionBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sharpened pooled posteriors; with personalisation, one per row with the customer's own counts."""
        alpha, beta = self.posterior()
        if self.personal_weight == 0 or batch.customer_idx is None:
            return alpha * self.sharpness, beta * self.sharpness, batch.cell_idx
        self._grow_customers(batch.customer_idx)
        weight = self.personal_weight  # sharpened with the pooled part below
        has_channel = self._arm_channel >= 0
        channel = np.where(has_channel, self._arm_channel, 0)
        customers = batch.customer_idx
        row_alpha = alpha[batch.cell_idx] + weight * self.personal_successes_[customers][:, :, channel] * has_channel
        row_beta = beta[batch.cell_idx] + weight * (self.personal_failures_ + self.personal_pending_)[customers][
            :, :, channel] * has_channel
        return row_alpha * self.sharpness, row_beta * self.sharpness, np.arange(batch.n_rows, dtype=np.int64)

    def set_open(self, open_counts: OpenCounts) -> HierarchicalThompsonPolicy:
        super().set_open(open_counts)
        if open_counts.customers is not None:
            customers = np.asarray(open_counts.customers, dtype=np.float64)
            self._grow_customers(np.array([customers.shape[0] - 1]) if customers.shape[0] else None)
            personal = np.zeros_like(self.personal_pending_)
            personal[:customers.shape[0]] = customers
            self.personal_pending_ = personal
        self._pooled = None
        return self

    def update(self, outcomes: Outcomes) -> HierarchicalThompsonPolicy:
        """Add resolved outcomes to the counts (and, when personalising, to the customer's own)."""
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        arm, outcome_idx = outcomes.arm[keep], outcomes.outcome_idx[keep]
        index = {"cell_idx": outcomes.cell_idx[keep], "outcome_idx": outcome_idx, "arm": arm}
        add_counts(self.successes_, self.failures_, index, outcomes, keep)
        if self.personal_weight > 0 and outcomes.customer_idx is not None:
            customer_idx = outcomes.customer_idx[keep]
            self._grow_customers(customer_idx)
            personal = {"customer_idx": customer_idx, "outcome_idx": outcome_idx, "channel": self._arm_channel[arm]}
            add_counts(self.personal_successes_, self.personal_failures_, personal, outcomes, keep)
        self._pooled = None
        return self

    def advance(self, days: float = 1.0) -> HierarchicalThompsonPolicy:
        """Multiply every count by ``discount ** days``, so old evidence fades (non-stationarity).

        The prior and the open messages do not fade: each open message still resolves once.
        """
        days = check_range("days", days, 0.0)
        if self.discount < 1.0 and days > 0:
            for name in self.evidence:
                getattr(self, name)[...] *= self.discount ** days
            self._pooled = None
        return self
