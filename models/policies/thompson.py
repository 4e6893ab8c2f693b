"""The Thompson-sampling family: ``ts`` (one posterior per cell) and ``hier_ts`` (pooled, the product default).

Both sample through a bank of shared posterior draws (``BankSampling``), so their choice probabilities
are exact; the baselines they are compared with live in ``baselines.py``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sendwise import engine

from ..domain import Catalog, DecisionBatch, Outcomes
from ..validation import Constraint, Count, Flag, Interval, check_index, check_range
from .base import BankSampling, OpenCounts, Posterior, add_counts
from .loop import Sends

DEFAULT_BANK_DRAWS = 64
PRIOR_FLOOR = 1e-3  # added to informative prior pseudo-counts, so a zero rate still gives a valid Beta


class ThompsonPolicy(BankSampling):
    """Cost-aware Beta–Bernoulli Thompson sampling, one posterior per cell × outcome × arm.

    Each cell learns alone from Beta(``prior_alpha``, ``prior_beta``) or, given an informative ``prior``
    (pseudo-counts such as ``world_prior``'s), from Beta(prior successes, prior failures); see
    ``HierarchicalThompsonPolicy`` for cells that borrow strength from their parents. Open messages
    count as failures until they resolve (``OpenMessagesPolicy``).
    """

    name = "ts"
    state_names = ("alpha_", "beta_", "pending_")
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **BankSampling.parameter_constraints, "prior_alpha": Interval(0.0, open_low=True),
        "prior_beta": Interval(0.0, open_low=True), "bank_draws": Count(1)}

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_alpha: float = 1.0, prior_beta: float = 1.0, bank_draws: int = DEFAULT_BANK_DRAWS,
                 prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self._set_params(prior_alpha=prior_alpha, prior_beta=prior_beta, bank_draws=bank_draws)
        shape = (catalog.n_cells, len(catalog.outcomes), catalog.n_arms)
        if prior is None:
            self.alpha_, self.beta_ = self._uninformed_start()
        else:  # the informative prior replaces the flat one (a floor keeps zero rates valid Beta parameters)
            prior_successes, prior_failures = checked_prior(prior, shape)
            self.alpha_, self.beta_ = prior_successes + PRIOR_FLOOR, prior_failures + PRIOR_FLOOR
        self.pending_ = np.zeros(shape)

    def _uninformed_start(self) -> tuple[np.ndarray, np.ndarray]:
        """Beta parameters without an informative ``prior``: Beta(prior_alpha, prior_beta) everywhere."""
        shape = (self.catalog.n_cells, len(self.catalog.outcomes), self.catalog.n_arms)
        return np.full(shape, self.prior_alpha), np.full(shape, self.prior_beta)

    def posterior(self) -> Posterior:
        """Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), open messages as failures."""
        return Posterior(self.alpha_, self.beta_ + self.pending_)

    def untried_arms(self) -> np.ndarray:
        """Arms still at their uninformed start in each cell, nothing open: bool (n_cells, n_arms).

        Every resolved or open message moves its arm's counts, so equality with the start is exact. An
        informative ``prior`` is not among the saved parameters: a policy built on one counts every arm tried.
        """
        alpha, beta = self._uninformed_start()
        return ((self.alpha_ == alpha) & (self.beta_ == beta) & (self.pending_ == 0)).all(axis=1)

    def update(self, outcomes: Outcomes) -> ThompsonPolicy:
        """Add resolved outcomes to the posterior."""
        keep = outcomes.arm != self.catalog.null_arm  # the no-message arm has nothing to learn
        at = (outcomes.cell_idx[keep], outcomes.outcome_idx[keep], outcomes.arm[keep])
        engine.update(self.alpha_, self.beta_, *at, outcomes.successes[keep], outcomes.failures[keep])
        return self


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


N_CONTEXTS = 12  # per channel: its messages in the window 0, 1, 2, 3+ × channels touched with this one 1, 2, 3+


def context_keys(recent_sends: np.ndarray) -> np.ndarray:
    """Each channel's context for one more message, int64 (n_rows, n_channels) in [0, ``N_CONTEXTS``).

    ``recent_sends``: int (n_rows, n_channels), messages per channel in the trailing window. The key
    of channel c is 3 × min(messages on c, 3) + min(channels touched counting c, 3) − 1: the two
    mechanics the same everywhere, a channel's own fatigue and the lift of combining channels.
    """
    recent = np.asarray(recent_sends, dtype=np.int64)
    touched = recent > 0
    others = touched.sum(axis=1, keepdims=True) - touched
    return 3 * np.minimum(recent, 3) + np.minimum(others + 1, 3) - 1


def shrunk_ratios(observed: np.ndarray, expected: np.ndarray, prior: float, axis: int) -> np.ndarray:
    """Observed over expected outcomes, each shrunk toward the mean ratio along ``axis`` by ``prior``
    expected outcomes, then divided by that mean (itself shrunk toward 1): multipliers around 1.

    The policy's own rates absorb any common bias (open messages counted as failures make every
    expectation a little low), so only the differences between entries are kept.
    """
    mean = (observed.sum(axis=axis, keepdims=True) + prior) / (expected.sum(axis=axis, keepdims=True) + prior)
    return (observed + prior * mean) / (expected + prior) / mean


class HierarchicalThompsonPolicy(BankSampling):
    """Hierarchical cost-aware Thompson sampling: the product's default policy.

    Each cell's Beta posterior is pooled from its parents: all arms → global per arm → region →
    region × industry → cell, each parent lending its posterior as the prior of the level below,
    worth at most ``prior_strength`` pseudo-counts (``engine.pool_posteriors``); a cell with no data
    starts from its parents, and a cold start from the informative ``prior`` pseudo-counts (e.g. a
    world's sourced rates, ``world_prior``) or, without one, about Beta(1, 1). Draws come from
    Beta(sharpness·α, sharpness·β): the same means with about 1/sharpness of the variance, which curbs
    the over-exploration of plain Thompson sampling over many arms (posterior reshaping, Chapelle & Li
    2011). With ``discount < 1`` every count is multiplied by ``discount`` per day passed to ``advance``.
    Open messages count as failures (``OpenMessagesPolicy``).

    Beyond the segment, each row's drawn rates are multiplied by what the policy knows of the customer
    (``engine.scaled_bank_probabilities``), factors learned as observed over expected outcomes, where
    expected is the pooled rate of the arm sent:

    - ``context``: the customer's messages of the trailing week (``DecisionBatch.recent_sends``), as a
      channel's fatigue and the lift of combining channels (``context_keys``), learned once for all
      cells per outcome and channel, shrunk toward no effect by ``context_prior`` expected outcomes;
    - ``personal``: the customer's own affinity to each channel (``personal_observed_`` over
      ``personal_expected_``), shrunk toward their segment by ``personal_prior`` expected outcomes, so a
      customer with two email clicks and none on push is more of an email person by as much as that
      evidence supports, and a new customer decides as their segment. Outcomes of value >= 0 (a click,
      an open) are signs of one interest and pool their evidence, so frequent opens teach what rare
      clicks cannot; a harm (an unsubscribe) keeps its own factor.
    """

    name = "hier_ts"
    state_names = ("successes_", "failures_", "pending_", "prior_successes_", "prior_failures_",
                   "context_observed_", "context_expected_", "personal_observed_", "personal_expected_")
    customer_state = ("personal_observed_", "personal_expected_")
    evidence: ClassVar[tuple[str, ...]] = ("successes_", "failures_", "context_observed_", "context_expected_",
                                           "personal_observed_", "personal_expected_")  # what ``advance`` fades
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **BankSampling.parameter_constraints, "prior_strength": Interval(0.0, open_low=True),
        "sharpness": Interval(0.0, open_low=True), "discount": Interval(0.0, 1.0, open_low=True),
        "bank_draws": Count(1), "context": Flag(), "context_prior": Interval(0.0, open_low=True),
        "personal": Flag(), "personal_prior": Interval(0.0, open_low=True)}

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_strength: float = 160.0, sharpness: float = 4.0, discount: float = 1.0,
                 bank_draws: int = DEFAULT_BANK_DRAWS, context: bool = True, context_prior: float = 30.0,
                 personal: bool = True, personal_prior: float = 3.0,
                 prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self._set_params(prior_strength=prior_strength, sharpness=sharpness, discount=discount,
                         bank_draws=bank_draws, context=context, context_prior=context_prior, personal=personal,
                         personal_prior=personal_prior)
        n_outcomes, n_channels = len(catalog.outcomes), len(catalog.channels)
        shape = (catalog.n_cells, n_outcomes, catalog.n_arms)
        self.successes_ = np.zeros(shape)
        self.failures_ = np.zeros(shape)
        self.pending_ = np.zeros(shape)
        self.prior_successes_, self.prior_failures_ = checked_prior(prior, shape)
        self.context_observed_ = np.zeros((n_outcomes, n_channels, N_CONTEXTS))
        self.context_expected_ = np.zeros_like(self.context_observed_)
        self.personal_observed_ = np.zeros((0, n_outcomes, n_channels))
        self.personal_expected_ = np.zeros_like(self.personal_observed_)
        self._levels = hierarchy_levels(catalog)
        self._arm_channel = catalog.arm_channels()
        interest = self.value >= 0  # clicks, opens: signs of one interest in a channel, pooled by personal_factors
        self._shared_evidence = ((np.equal.outer(interest, interest) & interest)
                                 | np.eye(interest.size, dtype=np.bool_)).astype(np.float64)
        self._counts_changed()

    def posterior(self) -> Posterior:
        """Pooled Beta parameters (alpha, beta), float64 (n_cells, n_outcomes, n_arms), before sharpening.

        Prior pseudo-counts and open messages (as failures) count at every level. Recomputed only when
        the counts changed since the last call (``engine.pool_posteriors``).
        """
        if self._pooled is None:
            self._pooled = Posterior(*engine.pool_cells(self._stacked(), self.prior_strength))
        return self._pooled

    def cell_posteriors(self, cells: np.ndarray) -> Posterior:
        """``posterior()`` of ``cells`` only, float64 (len(cells), n_outcomes, n_arms), the same numbers.

        A decision needs the cells it decides for; pooling just those (from the level sums, kept until
        the counts change) spares pooling every cell after each send.
        """
        if self._pooled is not None:
            return Posterior(self._pooled.alpha[cells], self._pooled.beta[cells])
        return Posterior(*engine.pool_cells(self._stacked(), self.prior_strength, cells))

    def _stacked(self) -> engine.StackedCounts:
        """The counts (prior and open messages included) summed at every level, kept until they change."""
        if self._stack is None:
            self._stack = engine.stack_counts(self.successes_ + self.prior_successes_,
                                              self.failures_ + self.prior_failures_ + self.pending_, self._levels)
        return self._stack

    def _counts_changed(self) -> None:
        self._stack: engine.StackedCounts | None = None
        self._pooled: Posterior | None = None

    @property
    def personalised(self) -> bool:
        return self.personal

    @property
    def contextual(self) -> bool:
        return self.context

    def untried_arms(self) -> np.ndarray:
        """Arms without a count of their own in each cell, open messages included: bool (n_cells, n_arms).

        Their posterior is what the prior and the parent levels lend.
        """
        return ((self.successes_ == 0) & (self.failures_ == 0) & (self.pending_ == 0)).all(axis=1)

    def sampling_posterior(self, batch: DecisionBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sharpened pooled posteriors of the batch's cells, and each row's."""
        cells, row = np.unique(batch.cell_idx, return_inverse=True)
        alpha, beta = self.cell_posteriors(cells)
        return alpha * self.sharpness, beta * self.sharpness, row.reshape(-1).astype(np.int64)

    def context_factors(self) -> np.ndarray:
        """Multiplier of each outcome's rate per channel and context key, float64 (n_outcomes, n_channels,
        ``N_CONTEXTS``): 1 everywhere without ``context``."""
        if not self.context:
            return np.ones_like(self.context_observed_)
        return shrunk_ratios(self.context_observed_, self.context_expected_, self.context_prior, axis=2)

    def personal_factors(self, customers: np.ndarray) -> np.ndarray:
        """Each customer's multiplier of each outcome's rate per channel, float64 (len(customers), n_outcomes,
        n_channels): 1 for a customer without evidence of their own, or without ``personal``. Only the
        customer's own evidence enters, so nobody else's outcomes move it."""
        if not self.personal:
            return np.ones((customers.size, *self.personal_observed_.shape[1:]))
        self._grow_customers(customers)
        observed, expected = (np.einsum("nkc,ok->noc", x[customers], self._shared_evidence)
                              for x in (self.personal_observed_, self.personal_expected_))
        return (observed + self.personal_prior) / (expected + self.personal_prior)

    def channel_factors(self, batch: DecisionBatch) -> np.ndarray | None:
        """What the batch's customers' own state does to each channel's rates, float64 (n_rows, n_outcomes,
        n_channels), or None when the policy knows nothing beyond the segment for this batch."""
        if batch.customer_idx is None or not (self.context or self.personal):
            return None
        factor = self.personal_factors(batch.customer_idx)
        if self.context and batch.recent_sends is not None:
            keys = context_keys(batch.recent_sends)
            factor *= self.context_factors()[:, np.arange(keys.shape[1]), keys].transpose(1, 0, 2)
        return factor

    def set_open(self, open_counts: OpenCounts) -> HierarchicalThompsonPolicy:
        super().set_open(open_counts)
        self._counts_changed()
        return self

    def sent(self, sends: Sends, recent_sends: np.ndarray | None = None) -> HierarchicalThompsonPolicy:
        """Add what each message should earn to the expected outcomes of its context and its customer.

        Expected at the send, at the pooled rate the decision drew from, and observed as outcomes arrive
        (``update``): a message counts as expected at once, as an open message counts as a failure, so
        recent messages never look better than they are while their failures wait for the window to close.
        """
        if sends.customer_idx is None or not (self.context or self.personal) or not sends.n_rows:
            return self
        check_index(self.successes_.shape[::2], {"cell_idx": sends.cell_idx, "arm": sends.arm}, source="sends")
        cells, inverse = np.unique(sends.cell_idx, return_inverse=True)
        alpha, beta = self.cell_posteriors(cells)
        expected = (alpha / (alpha + beta))[inverse.reshape(-1), :, sends.arm]  # (n_sends, n_outcomes)
        channel, customer = self._arm_channel[sends.arm], sends.customer_idx
        rows, outcomes = np.arange(sends.n_rows), np.arange(expected.shape[1])
        by_customer = self.personal_factors(customer)[rows, :, channel]
        by_context = np.ones_like(expected)
        if self.context and recent_sends is not None:
            key = context_keys(recent_sends)[rows, channel]
            by_context = self.context_factors()[:, channel, key].T
            np.add.at(self.context_expected_, (outcomes[None, :], channel[:, None], key[:, None]),
                      expected * by_customer)
        if self.personal:
            np.add.at(self.personal_expected_, (customer[:, None], outcomes[None, :], channel[:, None]),
                      expected * by_context)
        return self

    def update(self, outcomes: Outcomes) -> HierarchicalThompsonPolicy:
        """Add resolved outcomes to the counts, and the arrived ones to the context and personal evidence."""
        keep = (outcomes.arm != self.catalog.null_arm) & (outcomes.successes + outcomes.failures > 0)
        index = {"cell_idx": outcomes.cell_idx[keep], "outcome_idx": outcomes.outcome_idx[keep],
                 "arm": outcomes.arm[keep]}
        add_counts(self.successes_, self.failures_, index, outcomes, keep)
        arrived = np.flatnonzero(keep & (outcomes.successes > 0))
        if outcomes.customer_idx is not None and (self.context or self.personal) and arrived.size:
            outcome, successes = outcomes.outcome_idx[arrived], outcomes.successes[arrived]
            channel = self._arm_channel[outcomes.arm[arrived]]
            if self.context and outcomes.recent_sends is not None:
                recent = outcomes.recent_sends[arrived]
                heard = np.flatnonzero((recent >= 0).all(axis=1))  # the others' sends were never heard of
                key = context_keys(recent[heard])[np.arange(heard.size), channel[heard]]
                np.add.at(self.context_observed_, (outcome[heard], channel[heard], key), successes[heard])
            if self.personal:
                customer = outcomes.customer_idx[arrived]
                self._grow_customers(customer)
                np.add.at(self.personal_observed_, (customer, outcome, channel), successes)
        self._counts_changed()
        return self

    def advance(self, days: float = 1.0) -> HierarchicalThompsonPolicy:
        """Multiply every count by ``discount ** days``, so old evidence fades (non-stationarity).

        The prior and the open messages do not fade: each open message still resolves once.
        """
        days = check_range("days", days, 0.0)
        if self.discount < 1.0 and days > 0:
            for name in self.evidence:
                getattr(self, name)[...] *= self.discount ** days
            self._counts_changed()
        return self
