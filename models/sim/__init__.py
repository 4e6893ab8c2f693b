"""Simulation: whole populations of a world driven through a learning loop, in parallel, with plots.

Builds on ``domain``, ``policies`` and ``ope`` (a run can write its decisions as logs).
"""

from .distributed import simulate_on_ray
from .simulate import PolicyRun, SimulationResult, build_policy, run_loop, run_policy, simulate

__all__ = ["PolicyRun", "SimulationResult", "build_policy", "run_loop", "run_policy", "simulate", "simulate_on_ray"]
