"""Experiments: stable group assignment by a keyed hash, and the lift report over a decision log.

Builds on ``domain``, ``policies`` and ``ope``; the simulator (``sim``) and the server assign through
the same ``Assignment``.
"""

from .assignment import BASELINE, GROUPS, HOLDOUT, MODEL, Assignment

__all__ = ["BASELINE", "GROUPS", "HOLDOUT", "MODEL", "Assignment"]
