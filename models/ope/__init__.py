"""Off-policy evaluation: the logged-data format, the estimators, evaluating a policy on logs, datasets.

Builds on ``sendwise.models.domain`` and ``sendwise.models.policies``.
"""

from .datasets import load_hillstrom, load_obd
from .estimators import (
    DM,
    DR,
    ESTIMATORS,
    IPS,
    SNDR,
    SNIPS,
    DRos,
    Estimator,
    LoggedMean,
    Replay,
    SwitchDR,
    dm,
    dr,
    ips,
    replay,
    snips,
)
from .evaluation import DEFAULT_ESTIMATORS, EvaluationResult, evaluate, evaluate_logs, target_probabilities
from .gate import GateResult, gate
from .logged import LoggedFeedback, read_logs, write_logs
from .spec import parse_estimator, parse_estimators

__all__ = [
    "DEFAULT_ESTIMATORS",
    "DM",
    "DR",
    "DRos",
    "ESTIMATORS",
    "IPS",
    "SNDR",
    "SNIPS",
    "Estimator",
    "EvaluationResult",
    "GateResult",
    "LoggedFeedback",
    "LoggedMean",
    "Replay",
    "SwitchDR",
    "dm",
    "dr",
    "evaluate",
    "evaluate_logs",
    "gate",
    "ips",
    "load_hillstrom",
    "load_obd",
    "parse_estimator",
    "parse_estimators",
    "read_logs",
    "replay",
    "snips",
    "target_probabilities",
    "write_logs",
]
