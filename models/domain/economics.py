"""What a policy maximises: the value of each outcome minus the cost of each message."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .catalog import Catalog


@dataclass(frozen=True, eq=False)
class Economics:
    """The objective of a policy on a catalog: ``value · outcome rates − cost`` per arm.

    value : float64 (n_outcomes,), the worth of one occurrence of each outcome (negative for harm).
    cost : float64 (n_regions, n_arms), the price of one message on each arm in each region.
    """

    value: np.ndarray
    cost: np.ndarray

    @classmethod
    def logged_reward(cls, catalog: Catalog) -> Economics:
        """The reward of a log: the catalog's first outcome worth 1, the others 0, messages free.

        What a policy evaluated off-line on logs maximises, since a log's ``reward`` counts one outcome.
        """
        return cls(np.eye(len(catalog.outcomes))[0], np.zeros((len(catalog.regions), catalog.n_arms)))
