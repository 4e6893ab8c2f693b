"""Input checks shared by the engine's public wrappers; each message names the argument and the rule."""

from __future__ import annotations

import numbers

import numpy as np


def as_float_array(name: str, x: object, ndim: int) -> np.ndarray:
    """Return ``x`` as a C-contiguous float64 array of ``ndim`` dimensions with finite values."""
    arr = _as_array(name, x, np.float64, ndim)
    bad = np.flatnonzero(~np.isfinite(arr.ravel()))
    if bad.size:
        raise ValueError(
            f"`{name}` must be finite; {bad.size} of {arr.size} values are not "
            f"(first at flat index {bad[0]}: {arr.ravel()[bad[0]].item()!r})"
        )
    return arr


def as_index_array(name: str, x: object, upper: int, ndim: int = 1) -> np.ndarray:
    """Return ``x`` as a C-contiguous int64 array whose values lie in ``[0, upper)``."""
    arr = _as_array(name, x, np.int64, ndim)
    bad = np.flatnonzero((arr.ravel() < 0) | (arr.ravel() >= upper))
    if bad.size:
        raise ValueError(
            f"`{name}` must lie in [0, {upper}); {bad.size} of {arr.size} values do not "
            f"(first: {name}[{bad[0]}] = {arr.ravel()[bad[0]]})"
        )
    return arr


def as_mask(name: str, x: object, shape: tuple[int, int]) -> np.ndarray:
    """Return ``x`` as a C-contiguous bool array of exactly ``shape``."""
    arr = np.asarray(x)
    if arr.dtype != np.bool_:
        raise TypeError(f"`{name}` must be a bool array; got dtype {arr.dtype}")
    check_shape(name, arr, shape)
    return np.ascontiguousarray(arr)


def check_shape(name: str, arr: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` unless ``arr.shape == shape``."""
    if arr.shape != tuple(shape):
        raise ValueError(f"`{name}` must have shape {tuple(shape)}; got {arr.shape}")


def check_positive(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value is > 0."""
    bad = np.flatnonzero(~(arr.ravel() > 0))
    if bad.size:
        raise ValueError(
            f"`{name}` must be > 0; {bad.size} of {arr.size} values are not "
            f"(first at flat index {bad[0]}: {arr.ravel()[bad[0]].item()!r})"
        )


def check_non_negative(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value is >= 0."""
    bad = np.flatnonzero(~(arr.ravel() >= 0))
    if bad.size:
        raise ValueError(
            f"`{name}` must be >= 0; {bad.size} of {arr.size} values are not "
            f"(first at flat index {bad[0]}: {arr.ravel()[bad[0]].item()!r})"
        )


def as_int(name: str, value: object) -> int:
    """Return ``value`` as an int; ``TypeError`` unless it is an integer (bools and floats are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}")
    return int(value)


def as_real(name: str, value: object) -> float:
    """Return ``value`` as a float; ``TypeError`` unless it is a real number (bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a real number; got {value!r}")
    return float(value)


def check_unit_interval(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` unless every value lies in [0, 1]."""
    bad = np.flatnonzero(~((arr.ravel() >= 0.0) & (arr.ravel() <= 1.0)))
    if bad.size:
        raise ValueError(
            f"`{name}` must lie in [0, 1]; {bad.size} of {arr.size} values do not "
            f"(first at flat index {bad[0]}: {arr.ravel()[bad[0]].item()!r})"
        )


def check_probability(name: str, value: float, *, open_low: bool = False) -> float:
    """Return ``value`` as float if it lies in [0, 1] (or (0, 1] with ``open_low``)."""
    value = as_real(name, value)
    ok = (0.0 < value <= 1.0) if open_low else (0.0 <= value <= 1.0)
    if not ok:
        interval = "(0, 1]" if open_low else "[0, 1]"
        raise ValueError(f"`{name}` must lie in {interval}; got {value!r}")
    return value


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise ``ValueError`` unless every array has the same first dimension."""
    lengths = {name: arr.shape[0] for name, arr in arrays.items()}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"{name}={n}" for name, n in lengths.items())
        raise ValueError(f"arrays must share their first dimension; got {listed}")


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
