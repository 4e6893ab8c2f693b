"""Off-policy evaluation: the logged-data format, estimators and their specs, evaluating a policy on logs,
the promotion gate's decision, datasets.

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
from .gate import DEFAULT_GATE_ESTIMATOR, GateResult, gate
from .logged import LoggedFeedback, read_logs, write_logs
from .spec import as_estimator, as_estimators, parse_estimator, parse_estimators

__all__ = [
    "DEFAULT_ESTIMATORS",
    "DEFAULT_GATE_ESTIMATOR",
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
    "as_estimator",
    "as_estimators",
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
