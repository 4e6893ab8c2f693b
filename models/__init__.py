"""sendwise.models: the catalog, worlds, populations, policies, simulator, off-policy estimators, MLflow glue."""

from importlib import import_module

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
from .batch import DecisionBatch, Outcomes
from .catalog import DEFAULT_CHANNELS, N_HOURS, NO_MESSAGE, Catalog
from .distributed import simulate_on_ray
from .logged import LoggedFeedback, read_logs, write_logs
from .ope import dm, dr, ips, replay, snips
from .policies import POLICIES, HierarchicalThompsonPolicy, Policy, ThompsonPolicy, load_policy
from .simulate import PolicyRun, SimulationResult, simulate
from .world import World, load_world

__all__ = [
    "DEFAULT_CHANNELS",
    "N_HOURS",
    "NO_MESSAGE",
    "POLICIES",
    "Catalog",
    "DecisionBatch",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "HierarchicalThompsonPolicy",
    "LoggedFeedback",
    "OraclePolicy",
    "Outcomes",
    "Policy",
    "PolicyRun",
    "RandomPolicy",
    "SegmentOraclePolicy",
    "SimulationResult",
    "StaticPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "UserHeuristicPolicy",
    "World",
    "dm",
    "dr",
    "ips",
    "load_policy",
    "load_world",
    "read_logs",
    "replay",
    "simulate",
    "simulate_on_ray",
    "snips",
    "write_logs",
]

# The MLflow glue loads on first use: importing MLflow takes seconds, and deciding never needs it.
_MLFLOW_GLUE = {
    "PolicyModel": "mlflow_model",
    "alias_version": "registry",
    "load_registered_policy": "registry",
    "log_evaluation": "tracking",
    "log_simulation": "tracking",
    "register_policy": "registry",
    "set_alias": "registry",
    "tune_policy": "tuning",
}
__all__ += sorted(_MLFLOW_GLUE)


def __getattr__(name: str) -> object:
    if name in _MLFLOW_GLUE:
        return getattr(import_module(f"{__name__}.{_MLFLOW_GLUE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
