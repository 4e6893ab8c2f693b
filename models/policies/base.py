"""The ``Policy`` contract: exact choice probabilities, ``decide``, ``update``, ``set_open``, ``advance``.

A policy's learned state is a few named arrays ending in ``_``; ``save`` writes them with the
policy's name, parameters and catalog to one ``.npz`` that ``load_policy`` reads back. Arrays with one
row per customer (``customer_state``) start empty and grow to ``max(customer_idx) + 1`` as customers
appear. Hyper-parameters are the constructor's keyword arguments (``get_params`` reads the signature),
each checked by the rule the class declares in ``parameter_constraints``. Every subclass with a
``name`` registers itself in ``POLICIES``; ``make_policy`` builds one by name.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from sendwise import engine

from ..domain import Catalog, DecisionBatch, Outcomes
from ..validation import Constraint, Interval, check_index, checked_parameters, signature_params
from .loop import Choices, Sends

FORMAT_VERSION = 4  # 4: hier_ts learns context and personal factors; 3: informative prior, a bank of draws
POLICIES: dict[str, type[Policy]] = {}


class Posterior(NamedTuple):
    """Beta parameters of a policy, float64 (n_cells, n_outcomes, n_arms), open messages included."""

    alpha: np.ndarray
    beta: np.ndarray


class OpenCounts(NamedTuple):
    """Weighted counts of messages still open, as provisional failures (set by the ``Learner``).

    cells : float64 (n_cells, n_outcomes, n_arms).
    """

    cells: np.ndarray


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
    parameter_constraints: ClassVar[dict[str, Constraint]] = {"epsilon": Interval(0.0, 1.0)}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = vars(cls).get("parameter_constraints", {})  # inherited rules may cover arguments a subclass fixes
        undeclared = set(own) - set(signature_params(cls))
        if undeclared:
            raise TypeError(f"{cls.__name__} declares constraints for {sorted(undeclared)}, "
                            "which its constructor does not take")
        if cls.name:
            POLICIES[cls.name] = cls

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 random_state: np.random.Generator | int | None = None) -> None:
        self.catalog = catalog
        self.value = np.ascontiguousarray(value, dtype=np.float64)
        self.cost = np.ascontiguousarray(cost, dtype=np.float64)
        self._set_params(epsilon=epsilon)
        self.random_state = random_state
        if self.value.shape != (len(catalog.outcomes),):
            raise ValueError(f"`value` must have shape ({len(catalog.outcomes)},); got {self.value.shape}")
        if self.cost.ndim != 2 or self.cost.shape[1] != catalog.n_arms:
            raise ValueError(f"`cost` must have shape (n_regions, {catalog.n_arms}); got {self.cost.shape}")
        self._rng = engine.as_generator(random_state, name="random_state")

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters (JSON-friendly) that, with the catalog and economics, rebuild the policy.

        The keyword arguments of the constructor, read from its signature, with the values they were set to.
        """
        return {name: getattr(self, name) for name in signature_params(type(self))}

    def _set_params(self, **params: Any) -> None:
        """Set hyper-parameters, each checked by its rule in ``parameter_constraints``."""
        for name, value in checked_parameters(self.parameter_constraints, **params).items():
            setattr(self, name, value)

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

    def untried_arms(self) -> np.ndarray | None:
        """Bool (n_cells, n_arms): the arms the policy has no evidence of its own on, per cell, so that what
        ``posterior`` says of them is only its prior; None for a policy without a posterior."""
        return None

    @property
    def personalised(self) -> bool:
        """Whether decisions depend on each customer's own history (``DecisionBatch.customer_idx``)."""
        return bool(self.customer_state)

    @property
    def contextual(self) -> bool:
        """Whether decisions read the customer's recent messages (``DecisionBatch.recent_sends``)."""
        return False

    def sent(self, sends: Sends, recent_sends: np.ndarray | None = None) -> Policy:
        """Messages that went out, with each customer's ``recent_sends`` before it (int64 (n, n_channels) or
        None); policies that learn what a message should have earned at the time it was sent hear of them."""
        return self

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
        self._rng = engine.as_generator(random_state, name="random_state")
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

    def channel_factors(self, batch: DecisionBatch) -> np.ndarray | None:
        """Multipliers of each row's drawn rates per channel, float64 (n_rows, n_outcomes, n_channels) > 0, for
        what a row knows beyond its cell (``engine.scaled_bank_probabilities``); None: rows decide as their cell."""
        return None

    def personal_factors(self, customers: np.ndarray) -> np.ndarray | None:
        """What each customer's own evidence does to each channel's rates, float64 (len(customers), n_outcomes,
        n_channels); None for a policy without such factors."""
        return None

    def forget(self, customer_idx: np.ndarray) -> Policy:
        """Reset every ``customer_state`` row of ``customer_idx`` to a new customer's (erasure)."""
        for name in self.customer_state:
            arr = getattr(self, name)
            rows = customer_idx[customer_idx < arr.shape[0]]
            arr[rows] = -1 if np.issubdtype(arr.dtype, np.integer) else 0
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

    Two stages with the same marginal: with probability ``epsilon`` a uniform allowed arm, else an arm
    drawn from ``exploit``. The reported propensity is the mixed vector's entry, exactly. A row is
    ``explored`` when its arm is not the policy's most probable choice for it: it came from the uniform
    stage, or its exploitation probability is below the row's largest (a Thompson draw of an arm the
    posterior rarely favours is exploration, whatever stage drew it).
    """
    n_rows = mask.shape[0]
    rows = np.arange(n_rows)
    uniform_stage = rng.random(n_rows) < epsilon
    uniforms = rng.random(n_rows)
    uniform = mask / mask.sum(axis=1, keepdims=True)
    arm = np.where(uniform_stage, engine.draw_from(uniform, uniforms), engine.draw_from(exploit, uniforms))
    probs = mix_exploration(exploit, mask, epsilon)  # the vector both stages together draw from
    explored = uniform_stage | (exploit[rows, arm] < exploit.max(axis=1))
    explored &= mask.sum(axis=1) > 1  # with one option there is nothing to explore
    return Choices(arm=arm.astype(np.int64), propensity=probs[rows, arm], explored=explored,
                   support=np.count_nonzero(probs > 0.0, axis=1).astype(np.int64),
                   epsilon=np.full(n_rows, epsilon))


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
        factor = self.channel_factors(batch)
        if factor is not None:  # one bank of rate draws per posterior; each row scores them its own way
            banks, bank_idx, needed = _banks(posterior_row[:, None], mask)
            outcomes = np.flatnonzero(self.value)
            rates = engine.rate_bank(alpha, beta, banks[:, 0], needed, bank_draws or self.bank_draws, outcomes,
                                     null_arm=self.catalog.null_arm, rng=self._rng)
            return engine.scaled_bank_probabilities(rates, self.value[outcomes], self.cost, batch.cost_row_idx,
                                                    bank_idx, factor[:, outcomes], self.catalog.arm_channels(),
                                                    mask, epsilon=0.0)
        banks, bank_idx, needed = _banks(np.stack([posterior_row, batch.cost_row_idx], axis=1), mask)
        scores = engine.score_bank(alpha, beta, self.value, self.cost, banks[:, 0], banks[:, 1], needed,
                                   n_draws=bank_draws or self.bank_draws, null_arm=self.catalog.null_arm,
                                   rng=self._rng)
        return engine.bank_probabilities(scores, bank_idx, mask, epsilon=0.0, null_arm=self.catalog.null_arm)


def _banks(keys: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct rows of ``keys`` (int64 (n_rows, k)), each row's bank, and the arms each bank must
    draw (the union of its rows' ``mask``): int64 (n_banks, k), int64 (n_rows,), bool (n_banks, n_arms)."""
    banks, bank_idx = np.unique(keys, axis=0, return_inverse=True)
    bank_idx = bank_idx.reshape(-1).astype(np.int64)
    needed = np.zeros((banks.shape[0], mask.shape[1]), dtype=np.bool_)
    np.logical_or.at(needed, bank_idx, mask)
    return banks, bank_idx, needed


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
