"""Policies and the learning loop: the ``Policy`` contract, Thompson sampling, the baselines, ``Learner``.

Builds on ``sendwise.models.domain`` only.
"""

from .baselines import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    OraclePolicy,
    RandomPolicy,
    SegmentOraclePolicy,
    StaticPolicy,
    UCB1Policy,
    UserHeuristicPolicy,
)
from .learner import DelayModel, Learner, OpenWeight
from .loop import Choices, Loop, Resolved, Sends
from .thompson import POLICIES, HierarchicalThompsonPolicy, Policy, ThompsonPolicy, load_policy

__all__ = [
    "POLICIES",
    "Choices",
    "DelayModel",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "HierarchicalThompsonPolicy",
    "Learner",
    "Loop",
    "OpenWeight",
    "OraclePolicy",
    "Policy",
    "RandomPolicy",
    "Resolved",
    "SegmentOraclePolicy",
    "Sends",
    "StaticPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "UserHeuristicPolicy",
    "load_policy",
]
