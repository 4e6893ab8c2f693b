"""Off-policy evaluation: the logged-data format, the estimators, evaluating a policy on logs, datasets.

Builds on ``sendwise.models.domain`` and ``sendwise.models.policies``.
"""

from .datasets import load_hillstrom, load_obd
from .estimators import ESTIMATORS, dm, dr, ips, replay, snips
from .evaluation import DEFAULT_ESTIMATORS, EvaluationResult, evaluate, evaluate_logs, target_probabilities
from .logged import LoggedFeedback, read_logs, write_logs

__all__ = [
    "DEFAULT_ESTIMATORS",
    "ESTIMATORS",
    "EvaluationResult",
    "LoggedFeedback",
    "dm",
    "dr",
    "evaluate",
    "evaluate_logs",
    "ips",
    "load_hillstrom",
    "load_obd",
    "read_logs",
    "replay",
    "snips",
    "target_probabilities",
    "write_logs",
]
