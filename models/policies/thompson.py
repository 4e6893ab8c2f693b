"""The Thompson-sampling family: ``ts`` (one posterior per cell) and ``hier_ts`` (pooled, the product default).

Both sample through a bank of shared posterior draws (``BankSampling``), so their choice probabilities
are exact; the baselines they are compared with live in ``baselines.py``.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from sendwise import engine

from ..domain import Catalog, DecisionBatch, Outcomes
from ..validation import Constraint, Count, Interval, check_range
from .base import BankSampling, OpenCounts, Posterior, add_counts

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
    parameter_constraints: ClassVar[dict[str, Constraint]] = {
        **BankSampling.parameter_constraints, "prior_strength": Interval(0.0, open_low=True),
        "sharpness": Interval(0.0, open_low=True), "personal_weight": Interval(0.0),
        "discount": Interval(0.0, 1.0, open_low=True), "bank_draws": Count(1)}

    def __init__(self, catalog: Catalog, value: np.ndarray, cost: np.ndarray, *, epsilon: float = 0.01,
                 prior_strength: float = 160.0, sharpness: float = 4.0, personal_weight: float = 0.0,
                 discount: float = 1.0, bank_draws: int = DEFAULT_BANK_DRAWS,
                 prior: tuple[np.ndarray, np.ndarray] | None = None,
                 random_state: np.random.Generator | int | None = None) -> None:
        super().__init__(catalog, value, cost, epsilon=epsilon, random_state=random_state)
        self._set_params(prior_strength=prior_strength, sharpness=sharpness, personal_weight=personal_weight,
                         discount=discount, bank_draws=bank_draws)
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
        return self.personal_weight > 0

    def untried_arms(self) -> np.ndarray:
        """Arms without a count of their own in each cell, open messages included: bool (n_cells, n_arms).

        Their posterior is what the prior and the parent levels lend.
        """
        return ((self.successes_ == 0) & (self.failures_ == 0) & (self.pending_ == 0)).all(axis=1)

    def sampling_posterior(self, batch: DecisionBatch) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Sharpened pooled posteriors; with personalisation, one per row with the customer's own counts."""
        cells, row = np.unique(batch.cell_idx, return_inverse=True)
        alpha, beta = self.cell_posteriors(cells)
        row = row.reshape(-1).astype(np.int64)
        if self.personal_weight == 0 or batch.customer_idx is None:
            return alpha * self.sharpness, beta * self.sharpness, row
        self._grow_customers(batch.customer_idx)
        weight = self.personal_weight  # sharpened with the pooled part below
        has_channel = self._arm_channel >= 0
        channel = np.where(has_channel, self._arm_channel, 0)
        customers = batch.customer_idx
        row_alpha = alpha[row] + weight * self.personal_successes_[customers][:, :, channel] * has_channel
        row_beta = beta[row] + weight * (self.personal_failures_ + self.personal_pending_)[customers][
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
        self._counts_changed()
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
