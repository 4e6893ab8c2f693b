"""Checks shared by every room of ``sendwise.models``: numbers, counts, indices, rows of a table, parameters.

One vocabulary, so every error reads the same: the argument in backquotes, the rule, what was given
(``ValueError``; ``TypeError`` for the wrong kind of value). A policy or estimator declares its
hyper-parameters' rules once (``parameter_constraints``, a name -> ``Interval``/``Count`` map, as
scikit-learn's ``_parameter_constraints``); its constructor checks through them and ``get_params``
reads the constructor's signature (``signature_params``), so the two cannot drift apart.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

# Constructor arguments that are not hyper-parameters: the problem, economics, randomness and arrays.
NOT_PARAMETERS = frozenset({"self", "catalog", "value", "cost", "random_state", "prior"})


class RowError(ValueError):
    """A value of one row broke a rule (``check_rows``); readers of files prefix the file name."""


def check_range(name: str, value: float, low: float, high: float = np.inf, *, open_low: bool = False) -> float:
    """Return ``value`` as a float if it is a finite number >= low (> low with ``open_low``) and <= high."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise TypeError(f"`{name}` must be a number; got {value!r}")
    number = float(value)
    lower = f"> {low:g}" if open_low else f">= {low:g}"
    rule = lower if high == np.inf else f"{lower} and <= {high:g}"
    if not (np.isfinite(number) and (number > low if open_low else number >= low) and number <= high):
        raise ValueError(f"`{name}` must be a finite number {rule}; got {value!r}")
    return number


def check_count(name: str, value: int, low: int = 1) -> int:
    """``value`` as an int if it is a whole number >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"`{name}` must be a whole number >= {low}; got {value!r}")
    return int(value)


def check_index(shape: tuple[int, ...], index: dict[str, np.ndarray], source: str = "outcomes") -> None:
    """Every int array of ``index`` (name -> indices along one axis) must lie inside ``shape``."""
    for axis, (name, idx) in enumerate(index.items()):
        bad = np.flatnonzero((idx < 0) | (idx >= shape[axis]))
        if bad.size:
            raise ValueError(f"`{name}` of {source} must lie in [0, {shape[axis]}); got {idx[bad[0]]}")


def check_rows(label: str, values: np.ndarray, ok: np.ndarray, rule: str) -> None:
    """Raise ``RowError("<label>, row <i>: <rule>; got <value>")`` for the first row where ``ok`` is False.

    ``ok`` is bool (n_rows,) or (n_rows, n_columns); for a 2-d ``ok`` the first failing value of the row
    is shown. Shared by the log container and the estimators so every row error reads the same.
    """
    row_ok = ok.all(axis=1) if ok.ndim == 2 else ok
    bad = np.flatnonzero(~row_ok)
    if bad.size:
        i = int(bad[0])
        value = values[i][~ok[i]][0] if ok.ndim == 2 else values[i]
        value = value.item() if isinstance(value, np.generic) else value
        raise RowError(f"{label}, row {i}: {rule}; got {value!r}")


def as_round_floats(name: str, values: Any, ndim: int) -> np.ndarray:
    """``values`` as finite float64 with one row per round: (n_rounds,) or (n_rounds, n_actions)."""
    arr = np.asarray(values)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"`{name}` must be a numeric array; got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    if arr.ndim != ndim:
        shape = "(n_rounds,)" if ndim == 1 else "(n_rounds, n_actions)"
        raise ValueError(f"`{name}` must have shape {shape}; got {arr.shape}")
    check_rows(f"`{name}`", arr, np.isfinite(arr), "must be finite")
    return arr


def as_action_ids(name: str, values: Any, n_rounds: int, n_actions: int | None = None) -> np.ndarray:
    """``values`` as int64 action ids, one per round, each >= 0 (and < ``n_actions`` when given)."""
    arr = np.asarray(values)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be an integer array; got dtype {arr.dtype}")
    check_round_count(name, arr, n_rounds)
    if n_actions is None:
        check_rows(f"`{name}`", arr, arr >= 0, "must be an action id >= 0")
    else:
        check_rows(f"`{name}`", arr, (arr >= 0) & (arr < n_actions), f"must be an action id in [0, {n_actions})")
    return np.ascontiguousarray(arr, dtype=np.int64)


def check_round_count(name: str, arr: np.ndarray, n_rounds: int) -> None:
    """``arr`` must be 1-d with one entry per round, like ``reward``."""
    if arr.ndim != 1 or arr.shape[0] != n_rounds:
        raise ValueError(f"`{name}` must have shape ({n_rounds},) like `reward`; got {arr.shape}")


@dataclass(frozen=True)
class Interval:
    """A real number in [low, high] (``open_low``: (low, high]); ``check`` is ``check_range``."""

    low: float
    high: float = np.inf
    open_low: bool = False

    def check(self, name: str, value: Any) -> float:
        return check_range(name, value, self.low, self.high, open_low=self.open_low)


@dataclass(frozen=True)
class Count:
    """A whole number >= ``low``; ``check`` is ``check_count``."""

    low: int = 1

    def check(self, name: str, value: Any) -> int:
        return check_count(name, value, self.low)


@dataclass(frozen=True)
class Flag:
    """A switch: ``True`` or ``False`` (not 0, 1 or a string)."""

    def check(self, name: str, value: Any) -> bool:
        if not isinstance(value, bool | np.bool_):
            raise TypeError(f"`{name}` must be true or false; got {value!r}")
        return bool(value)


Constraint = Interval | Count | Flag


def checked_parameters(constraints: dict[str, Constraint], **params: Any) -> dict[str, Any]:
    """``params`` with each value checked (and converted) by its declared constraint; others pass as given."""
    return {name: constraints[name].check(name, value) if name in constraints else value
            for name, value in params.items()}


def signature_params(cls: type) -> tuple[str, ...]:
    """The hyper-parameters of ``cls``: the keyword arguments of its constructor (scikit-learn's rule).

    Leaves out the problem and the economics (``catalog``, ``value``, ``cost``), the randomness
    (``random_state``) and array-valued starts (``prior``), which are not settings one tunes or saves.
    """
    return tuple(signature_defaults(cls))


def signature_defaults(cls: type) -> dict[str, Any]:
    """Each hyper-parameter of ``cls`` (``signature_params``) with its default (``inspect.Parameter.empty``
    when it has none)."""
    parameters = inspect.signature(cls.__init__).parameters.values()
    return {p.name: p.default for p in parameters
            if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and p.name not in NOT_PARAMETERS}
