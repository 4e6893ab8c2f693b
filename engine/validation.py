"""The engine's input checks, shared by every public wrapper; each message names the argument and the rule.

``as_*`` functions coerce and return (C-contiguous arrays of the kernel's dtype, Python numbers, a
``Generator``); ``check_*`` functions only raise. ``TypeError`` means the wrong kind of object,
``ValueError`` a bad value or shape. A message shows the offending value and, for arrays, how many
values break the rule and where the first one is.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = [
    "as_at_least",
    "as_finite_positive",
    "as_float_array",
    "as_generator",
    "as_index_array",
    "as_int",
    "as_int_range",
    "as_mask",
    "as_real",
    "as_row_mask",
    "as_value_and_cost",
    "check_finite_or_minus_inf",
    "check_non_negative",
    "check_null_arm",
    "check_positive",
    "check_posterior",
    "check_probability",
    "check_rows_allow_an_arm",
    "check_rows_sum_to_one",
    "check_same_length",
    "check_shape",
    "check_uniforms",
    "check_unit_interval",
    "check_writeable",
]


def as_generator(seed: int | np.random.Generator | None, *, name: str = "rng") -> np.random.Generator:
    """``seed`` as a ``numpy.random.Generator``: a Generator is returned as is, None or an int >= 0 seeds one.

    Bools, negative ints and other types are rejected, so a typo never silently picks a random seed.
    """
    if isinstance(seed, bool) or not (seed is None or isinstance(seed, int | np.integer | np.random.Generator)):
        raise TypeError(f"`{name}` must be None, an int seed or a numpy.random.Generator; got {seed!r}")
    if isinstance(seed, int | np.integer) and seed < 0:
        raise ValueError(f"`{name}` must be None, an int seed >= 0 or a numpy.random.Generator; got {seed!r}")
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def as_float_array(name: str, x: object, ndim: int) -> np.ndarray:
    """Return ``x`` as a C-contiguous float64 array of ``ndim`` dimensions with finite values."""
    arr = _as_array(name, x, np.float64, ndim)
    _raise_where_flat(name, arr, ~np.isfinite(arr.ravel()), "be finite", "are not")
    return arr


def as_int_range(name: str, x: object, low: int, high: int, ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a C-contiguous int64 array whose values lie in ``[low, high)``."""
    arr = _as_array(name, x, np.int64, ndim)
    flat = arr.ravel()
    _raise_where_indexed(name, arr, (flat < low) | (flat >= high), f"[{low}, {high})")
    return arr


def as_index_array(name: str, x: object, upper: int, ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a C-contiguous int64 array whose values lie in ``[0, upper)``."""
    return as_int_range(name, x, 0, upper, ndim)


def as_mask(name: str, x: object, shape: tuple[int, int]) -> np.ndarray:
    """Return ``x`` as a C-contiguous bool array of exactly ``shape``."""
    arr = np.asarray(x)
    if arr.dtype != np.bool_:
        raise TypeError(f"`{name}` must be a bool array; got dtype {arr.dtype}")
    check_shape(name, arr, shape)
    return np.ascontiguousarray(arr)


def as_row_mask(name: str, x: object, n_arms: int) -> np.ndarray:
    """Return ``x`` as a C-contiguous bool array of shape (n_rows, n_arms), any number of rows."""
    arr = np.asarray(x)
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must have shape (n_rows, {n_arms}); got {arr.shape}")
    return as_mask(name, arr, (arr.shape[0], n_arms))


def as_int(name: str, value: object) -> int:
    """Return ``value`` as an int; ``TypeError`` unless it is an integer (bools and floats are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    return int(value)


def as_at_least(name: str, value: object, low: int) -> int:
    """Return ``value`` as an int if it is an integer >= ``low`` (a count, a chunk size)."""
    if as_int(name, value) < low:
        raise ValueError(f"`{name}` must be >= {low}; got {value!r}")
    return int(value)


def as_real(name: str, value: object) -> float:
    """Return ``value`` as a float; ``TypeError`` unless it is a real number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {value!r}")
    return float(value)


def as_finite_positive(name: str, value: object) -> float:
    """Return ``value`` as a float if it is a finite real number > 0."""
    number = as_real(name, value)
    if not (np.isfinite(number) and number > 0):
        raise ValueError(f"`{name}` must be a finite number > 0; got {value!r}")
    return number


def check_probability(name: str, value: float, *, open_low: bool = False) -> float:
    """Return ``value`` as float if it lies in [0, 1] (or (0, 1] with ``open_low``)."""
    value = as_real(name, value)
    ok = (0.0 < value <= 1.0) if open_low else (0.0 <= value <= 1.0)
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"`{name}` must lie in {interval}; got {value!r}")
    return value


def check_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``arr.shape == shape``."""
    if arr.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}; got {arr.shape}")


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless every array has the same first dimension."""
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"arrays must share their first dimension; got {listed}")


def check_positive(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value is > 0."""
    _raise_where_flat(name, arr, ~(arr.ravel() > 0), "be > 0", "are not")


def check_non_negative(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value is >= 0."""
    _raise_where_flat(name, arr, ~(arr.ravel() >= 0), "be >= 0", "are not")


def check_finite_or_minus_inf(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value is finite or -inf (no NaN, no +inf)."""
    flat = arr.ravel()
    _raise_where_flat(name, arr, np.isnan(flat) | np.isposinf(flat), "be finite or -inf", "are not")


def check_unit_interval(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value lies in [0, 1]."""
    flat = arr.ravel()
    _raise_where_flat(name, arr, ~((flat >= 0.0) & (flat <= 1.0)), "lie in [0, 1]", "do not")


def check_uniforms(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value lies in [0, 1), as uniform draws do."""
    _raise_where_indexed(name, arr, ~((arr >= 0.0) & (arr < 1.0)), "[0, 1)")


def check_rows_allow_an_arm(name: str, mask: np.ndarray) -> None:
    """Raise ``ValueError`` unless every row of the bool ``mask`` (n_rows, n_arms) allows an arm."""
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"`{name}` must allow at least one arm per row; {empty.size} rows allow none (first: row {empty[0]})"
        )


def check_rows_sum_to_one(name: str, probs: np.ndarray, tol: float) -> None:
    """Raise ``ValueError`` unless every row of ``probs`` (n_rows, n) sums to 1 within ``tol``."""
    totals = probs.sum(axis=1)
    off = np.flatnonzero(~(np.abs(totals - 1.0) <= tol))
    if off.size:
        raise ValueError(f"`{name}` rows must sum to 1 (within {tol:.0e}); {off.size} rows do not "
                         f"(first: row {off[0]} sums to {totals[off[0]].item()!r})")


def check_null_arm(null_arm: object, n_arms: int) -> int:
    """Return the no-message arm as an int: -1 (none) or an arm index in [0, n_arms)."""
    if not -1 <= as_int("null_arm", null_arm) < n_arms:
        raise ValueError(f"`null_arm` must be -1 or lie in [0, {n_arms}); got {null_arm!r}")
    return int(null_arm)


def check_posterior(alpha: np.ndarray, beta: np.ndarray) -> None:
    """Posteriors are updated in place, so they must already be float64, C-contiguous, 3-d and > 0."""
    for name, arr in (("alpha", alpha), ("beta", beta)):
        if not isinstance(arr, np.ndarray) or arr.dtype != np.float64 or not arr.flags.c_contiguous:
            raise TypeError(f"`{name}` must be a C-contiguous float64 ndarray")
        if arr.ndim != 3:
            raise ValueError(f"`{name}` must have shape (n_cells, n_outcomes, n_arms); got {arr.shape}")
        as_float_array(name, arr, 3)
        check_positive(name, arr)
    check_shape("beta", beta, alpha.shape)


def check_writeable(**arrays: np.ndarray) -> None:
    """Arrays updated in place must be writeable (a read-only view would fail deep inside numba)."""
    for name, arr in arrays.items():
        if not arr.flags.writeable:
            raise TypeError(f"`{name}` is updated in place, so it must be a writeable ndarray; got a read-only one")


def as_value_and_cost(value: object, cost: object, n_outcomes: int, n_arms: int) -> tuple[np.ndarray, np.ndarray]:
    """``value`` as float64 (n_outcomes,) and ``cost`` as float64 (n_cost_rows, n_arms), both finite."""
    value = as_float_array("value", value, 1)
    check_shape("value", value, (n_outcomes,))
    cost = as_float_array("cost", cost, 2)
    if cost.shape[1] != n_arms:
        raise ValueError(f"`cost` must have shape (n_cost_rows, {n_arms}); got {cost.shape}")
    return value, cost


def _as_array(name: str, x: object, dtype: type, ndim: int) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not (
        np.issubdtype(arr.dtype, np.number) or (arr.size == 0 and arr.dtype == np.float64)
    ):
        raise TypeError(f"`{name}` must be a numeric array; got dtype {arr.dtype}")
    if dtype is np.int64 and not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"`{name}` must be an integer array; got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ValueError(f"`{name}` must have {ndim} dimension(s); got shape {arr.shape}")
    return np.ascontiguousarray(arr, dtype=dtype)


def _raise_where_flat(name: str, arr: np.ndarray, bad: np.ndarray, rule: str, verb: str) -> None:
    """Raise ``ValueError`` if any flat entry of ``bad`` is set, naming the first by its flat index."""
    where = np.flatnonzero(bad)
    if where.size:
        raise ValueError(
            f"`{name}` must {rule}; {where.size} of {arr.size} values {verb} "
            f"(first at flat index {where[0]}: {arr.ravel()[where[0]].item()!r})"
        )


def _raise_where_indexed(name: str, arr: np.ndarray, bad: np.ndarray, interval: str) -> None:
    """Raise ``ValueError`` if any flat entry of ``bad`` is set, naming the first as ``name[i]``."""
    where = np.flatnonzero(bad)
    if where.size:
        raise ValueError(
            f"`{name}` must lie in {interval}; {where.size} of {arr.size} values do not "
            f"(first: {name}[{where[0]}] = {arr.ravel()[where[0]].item()!r})"
        )
