"""Experiments: stable group assignment by a keyed hash, and the lift report over a decision log.

Builds on ``domain``, ``policies`` and ``ope``; the simulator (``sim``) and the server assign through
the same ``Assignment``. The report's names load on first use (scipy's statistics take a second to
import, and a server that only decides never needs them).
"""

from importlib import import_module

from .assignment import BASELINE, GROUPS, HOLDOUT, MODEL, Assignment, Experiment, group_shares, pseudonym

_LAZY = {name: "lift" for name in ("Difference", "GroupSummary", "LiftReport", "SampleRatio", "ShadowSummary",
                                   "lift_report")}

__all__ = ["BASELINE", "GROUPS", "HOLDOUT", "MODEL", "Assignment", "Experiment", "group_shares", "pseudonym",
           *sorted(_LAZY)]


def __getattr__(name: str) -> object:
    if name in _LAZY:
        return getattr(import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
