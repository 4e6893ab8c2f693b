"""The promotion gate: does a candidate policy beat the champion off-line on these logs?

The candidate passes when the lower end of its (1 − ``GATE_ALPHA``) bootstrap interval beats the
champion's point estimate, both by the same estimator on the same logs, or when there is no champion.
Requiring the lower bound keeps a candidate that is better only by noise from taking over. Pure logic
over two policies and a log file; ``mlops.registry.promote`` loads the versions, calls :func:`gate`,
moves the alias and logs the estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..policies import Policy
from .estimators import Estimator
from .evaluation import evaluate, target_probabilities
from .logged import read_logs
from .spec import as_estimator

DEFAULT_GATE_ESTIMATOR = "snips"
GATE_ALPHA = 0.05

Bounds = tuple[float, float, float]


@dataclass(frozen=True)
class GateResult:
    """The gate's evidence: ``(estimate, low, high)`` of the candidate and of the champion (None: no champion).

    ``estimator`` is the spec of the estimator used, ``logs`` the name of the log file.
    """

    estimator: str
    logs: str
    candidate: Bounds
    champion: Bounds | None

    @property
    def passed(self) -> bool:
        """Whether the candidate's lower bound beats the champion's estimate (always, with no champion)."""
        return self.champion is None or self.candidate[1] > self.champion[0]

    def describe(self, candidate: str = "candidate", champion: str = "champion") -> str:
        """The comparison in words, naming the two policies ``candidate`` and ``champion``."""
        if self.champion is None:
            return f"there is no {champion}; {candidate} passes"
        relation = ">" if self.passed else "<="
        return (f"{self.estimator} on {self.logs}: {candidate} lower {1 - GATE_ALPHA:.0%} bound "
                f"{self.candidate[1]:.6g} {relation} {champion} estimate {self.champion[0]:.6g}")


def gate(candidate: Policy, champion: Policy | None, logs: str | Path, *,
         estimator: Estimator | str = DEFAULT_GATE_ESTIMATOR, n_draws: int = 1000, n_bootstrap: int = 1000,
         seed: int = 0) -> GateResult:
    """Evaluate ``candidate`` (and ``champion``, when there is one) on ``logs`` and compare them.

    Each policy reads the logs with its own catalog. ``estimator`` is an ``Estimator`` or a spec such as
    ``"snips"`` or ``"ips(clip=10)"``; ``seed`` seeds the reward model and the bootstrap of both.
    """
    logs, chosen = Path(logs), as_estimator(estimator)
    settings = (chosen, n_draws, n_bootstrap, seed)
    return GateResult(chosen.spec, logs.name, _bounds(candidate, logs, *settings),
                      None if champion is None else _bounds(champion, logs, *settings))


def _bounds(policy: Policy, logs: Path, estimator: Estimator, n_draws: int, n_bootstrap: int, seed: int) -> Bounds:
    """``(estimate, low, high)`` of ``policy``'s value on ``logs``."""
    log = read_logs(logs, policy.catalog)
    result = evaluate(log, target_probabilities(policy, log, n_draws=n_draws), logs=logs.name,
                      estimators=[estimator], alpha=GATE_ALPHA, n_bootstrap=n_bootstrap, random_state=seed)
    row = result.estimate(estimator.spec)
    return row.estimate, row.low, row.high
