"""Policies and the learning loop: the ``Policy`` contract, ``make_policy``, Thompson sampling, baselines, ``Learner``.

Builds on ``sendwise.models.domain`` only.
"""

from .base import POLICIES, OpenCounts, Policy, Posterior, load_policy
from .baselines import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    OraclePolicy,
    RandomHourPolicy,
    RandomPolicy,
    SegmentOraclePolicy,
    StaticPolicy,
    UCB1Policy,
    UserHeuristicPolicy,
    fallback_arms,
)
from .factory import (
    DEFAULT_PRIOR_TRIALS,
    PLAYBOOK_POLICIES,
    make_cold_start,
    make_policy,
    make_world_policy,
    takes_prior,
)
from .learner import DelayModel, Learner, OpenWeight
from .loop import Choices, Loop, Resolved, Sends
from .pacing import BudgetStatus, Pacer, Pricing
from .thompson import HierarchicalThompsonPolicy, ThompsonPolicy

__all__ = [
    "DEFAULT_PRIOR_TRIALS",
    "POLICIES",
    "BudgetStatus",
    "Choices",
    "DelayModel",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "HierarchicalThompsonPolicy",
    "Learner",
    "Loop",
    "OpenCounts",
    "OpenWeight",
    "OraclePolicy",
    "PLAYBOOK_POLICIES",
    "Pacer",
    "Policy",
    "Posterior",
    "Pricing",
    "RandomHourPolicy",
    "RandomPolicy",
    "Resolved",
    "SegmentOraclePolicy",
    "Sends",
    "StaticPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "UserHeuristicPolicy",
    "fallback_arms",
    "load_policy",
    "make_cold_start",
    "make_policy",
    "make_world_policy",
    "takes_prior",
]
