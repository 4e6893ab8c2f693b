"""sendwise.models: everything above the numba engine, in six rooms, one job each.

- ``domain``: the catalog of options, decision batches, economics, worlds, populations, send times.
- ``policies``: the ``Policy`` contract, ``make_policy``, Thompson sampling, baselines, the ``Learner``.
- ``ope``: the logged-data format, off-policy estimators, evaluating a policy on logs, datasets.
- ``experiments``: who is in the holdout, the model or the baseline group, and the lift report.
- ``sim``: populations of a world driven through a learning loop, in parallel, with plots.
- ``mlops``: MLflow tracking and comparison, tuning, the pyfunc flavour, the registry and its gate.

Imports go one way, down this list: ``domain`` imports no other room; ``policies`` imports
``domain``; ``ope`` imports ``domain`` and ``policies``; ``experiments`` imports those three; ``sim``
imports those four; ``mlops`` imports any of them. ``validation`` holds the checks every room shares;
``home`` says where every command and the server keep their files, ``verbosity`` how much the libraries
under them print. A name one room
takes from another is in that room's ``__all__``, and every public name of a room is re-exported here.
"""

from types import ModuleType

from . import domain, experiments, mlops, ope, policies, sim
from .home import Home, sendwise_home, tracking_uri
from .verbosity import configure_verbosity

_ROOMS: tuple[ModuleType, ...] = (domain, policies, ope, experiments, sim, mlops)
_ROOM_OF = {name: room for room in reversed(_ROOMS) for name in room.__all__}

__all__ = sorted(_ROOM_OF)
__all__ += ["Home", "configure_verbosity", "sendwise_home", "tracking_uri"]


def __getattr__(name: str) -> object:
    # Resolved on use: ``mlops`` loads MLflow (seconds) only when one of its names is asked for.
    if name in _ROOM_OF:
        return getattr(_ROOM_OF[name], name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
