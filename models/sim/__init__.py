"""Simulation: whole populations of a world driven through a learning loop, in parallel, with plots.

Builds on ``domain``, ``policies`` and ``ope`` (a run can write its decisions as logs).
"""

from .distributed import ray_session, run_tasks_on_ray, simulate_on_ray
from .simulate import PolicyRun, SimulationResult, run_loop, run_policy, simulate

__all__ = ["PolicyRun", "SimulationResult", "run_loop", "run_policy", "ray_session", "run_tasks_on_ray", "simulate",
           "simulate_on_ray"]
