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
from .learner import DelayModel, Learner
from .logged import LoggedFeedback, read_logs, write_logs
from .loop import Choices, Loop, Resolved, Sends
from .model_uri import ModelUri, is_registry_uri
from .ope import dm, dr, ips, replay, snips
from .policies import POLICIES, HierarchicalThompsonPolicy, Policy, ThompsonPolicy, load_policy
from .simulate import PolicyRun, SimulationResult, simulate
from .timing import next_send_at, send_instants
from .world import World, load_world

__all__ = [
    "DEFAULT_CHANNELS",
    "N_HOURS",
    "NO_MESSAGE",
    "POLICIES",
    "Catalog",
    "Choices",
    "DecisionBatch",
    "DelayModel",
    "EpsilonGreedyPolicy",
    "GreedyPolicy",
    "HierarchicalThompsonPolicy",
    "Learner",
    "LoggedFeedback",
    "Loop",
    "ModelUri",
    "OraclePolicy",
    "Outcomes",
    "Policy",
    "PolicyRun",
    "RandomPolicy",
    "Resolved",
    "SegmentOraclePolicy",
    "Sends",
    "SimulationResult",
    "StaticPolicy",
    "ThompsonPolicy",
    "UCB1Policy",
    "UserHeuristicPolicy",
    "World",
    "dm",
    "dr",
    "ips",
    "is_registry_uri",
    "load_policy",
    "load_world",
    "next_send_at",
    "read_logs",
    "replay",
    "send_instants",
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
