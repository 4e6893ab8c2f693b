"""sendwise.models: the catalog, worlds, populations, policies, simulator, off-policy estimators, MLflow glue."""

from importlib import import_module

from .domain.batch import DecisionBatch, Outcomes
from .domain.catalog import DEFAULT_CHANNELS, N_HOURS, NO_MESSAGE, Catalog
from .domain.timing import next_send_at, send_instants
from .domain.world import World, load_world
from .mlops.model_uri import ModelUri, is_registry_uri
from .ope.estimators import dm, dr, ips, replay, snips
from .ope.logged import LoggedFeedback, read_logs, write_logs
from .policies.baselines import (
    EpsilonGreedyPolicy,
    GreedyPolicy,
    OraclePolicy,
    RandomPolicy,
    SegmentOraclePolicy,
    StaticPolicy,
    UCB1Policy,
    UserHeuristicPolicy,
)
from .policies.learner import DelayModel, Learner
from .policies.loop import Choices, Loop, Resolved, Sends
from .policies.thompson import POLICIES, HierarchicalThompsonPolicy, Policy, ThompsonPolicy, load_policy
from .sim.distributed import simulate_on_ray
from .sim.simulate import PolicyRun, SimulationResult, simulate

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
    "PolicyModel": "mlops.mlflow_model",
    "alias_version": "mlops.registry",
    "load_registered_policy": "mlops.registry",
    "log_evaluation": "mlops.tracking",
    "log_simulation": "mlops.tracking",
    "register_policy": "mlops.registry",
    "set_alias": "mlops.registry",
    "tune_policy": "mlops.tuning",
}
__all__ += sorted(_MLFLOW_GLUE)


def __getattr__(name: str) -> object:
    if name in _MLFLOW_GLUE:
        return getattr(import_module(f"{__name__}.{_MLFLOW_GLUE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
