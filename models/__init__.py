"""sendwise.models: the catalog, worlds, populations, policies, simulator, off-policy estimators, MLflow glue."""

from .batch import DecisionBatch, Outcomes
from .catalog import DEFAULT_CHANNELS, N_HOURS, NO_MESSAGE, Catalog
from .policies import POLICIES, Policy, ThompsonPolicy, load_policy

__all__ = [
    "DEFAULT_CHANNELS",
    "N_HOURS",
    "NO_MESSAGE",
    "POLICIES",
    "Catalog",
    "DecisionBatch",
    "Outcomes",
    "Policy",
    "ThompsonPolicy",
    "load_policy",
]
