"""Estimator specs: ``"ips(clip=10),snips,dr"`` read into estimator objects.

A spec is an estimator's name (a key of ``ESTIMATORS``), optionally followed by parameters of its
constructor in parentheses, ``name(param=value,...)``; ``Estimator.spec`` writes one back. Values are
numbers (``10``, ``0.5``, ``1e3``, ``inf``), ``true``/``false`` or ``none``, read by explicit rules,
never evaluated as code. Wherever a user names estimators (``evaluate``, the promotion gate, the CLI),
a spec string or an ``Estimator`` object is accepted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..validation import signature_params
from .estimators import ESTIMATORS, Estimator

_SPEC = re.compile(r"(?P<name>[A-Za-z][\w-]*)\s*(?:\((?P<params>[^()]*)\))?")
_PARAM = re.compile(r"(?P<param>[A-Za-z_]\w*)\s*=\s*(?P<value>\S+)")
_CONSTANTS: dict[str, Any] = {"true": True, "false": False, "none": None, "inf": math.inf}


def parse_estimator(spec: str) -> Estimator:
    """The estimator a single spec names, e.g. ``"ips(clip=10)"`` → ``IPS(clip=10)``.

    Raises ValueError naming the spec for a malformed one, an unknown estimator (listing the known
    ones), an unknown parameter (listing the estimator's) or a value its constructor rejects.

    Examples
    --------
    >>> parse_estimator("switch-dr(tau=5)")
    SwitchDR(tau=5)
    >>> parse_estimator("ips(clip=10)").spec
    'ips(clip=10)'
    """
    text = spec.strip()
    match = _SPEC.fullmatch(text)
    if match is None:
        raise ValueError(f"estimator spec {spec!r} is malformed; write name or name(param=value,...), "
                         "e.g. ips(clip=10)")
    name = match["name"]
    if name not in ESTIMATORS:
        raise ValueError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")
    cls = ESTIMATORS[name]
    params = _parse_params(text, match["params"] or "", cls)
    try:
        return cls(**params)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"estimator spec {text!r}: {exc}") from None


def parse_estimators(specs: str) -> list[Estimator]:
    """The estimators of a comma-separated list of specs, e.g. ``"ips(clip=10),snips,dr"``.

    Commas inside parentheses separate parameters, not estimators.

    Examples
    --------
    >>> [est.spec for est in parse_estimators("ips(clip=10), snips,dr")]
    ['ips(clip=10)', 'snips', 'dr']
    """
    pieces = [piece for piece in re.split(r",(?![^()]*\))", specs) if piece.strip()]
    if not pieces:
        raise ValueError(f"no estimator in {specs!r}; give a comma-separated list such as ips,snips,dr")
    return [parse_estimator(piece) for piece in pieces]


def as_estimators(estimators: str | Estimator | Sequence[Estimator | str]) -> list[Estimator]:
    """Estimator objects from objects, specs, or one comma-separated string of specs.

    Raises ValueError when two of them have the same spec: their rows would not tell apart.
    """
    if isinstance(estimators, str):
        chosen = parse_estimators(estimators)
    elif isinstance(estimators, Estimator):
        chosen = [estimators]
    else:
        chosen = [as_estimator(est) for est in estimators]
    specs = [est.spec for est in chosen]
    repeated = sorted({spec for spec in specs if specs.count(spec) > 1})
    if repeated:
        raise ValueError(f"estimator {repeated[0]!r} is given twice; give each estimator once")
    return chosen


def as_estimator(estimator: Estimator | str) -> Estimator:
    """An ``Estimator`` as it is, or the one a single spec names (``parse_estimator``)."""
    if isinstance(estimator, Estimator):
        return estimator
    if isinstance(estimator, str):
        return parse_estimator(estimator)
    raise TypeError(f"an estimator must be an Estimator or a spec string such as 'ips(clip=10)'; "
                    f"got {type(estimator).__name__}")


def _parse_params(spec: str, text: str, cls: type[Estimator]) -> dict[str, Any]:
    """``param=value`` pairs checked against the constructor's signature of ``cls``."""
    known = list(signature_params(cls))
    params: dict[str, Any] = {}
    for token in (token.strip() for token in text.split(",")):
        if not token and not text.strip():
            break  # "ips()": no parameters
        match = _PARAM.fullmatch(token)
        if match is None:
            raise ValueError(f"estimator spec {spec!r}: parameter {token!r} must be written param=value")
        param = match["param"]
        if param not in known:
            have = ", ".join(known) or "none"
            raise ValueError(f"estimator spec {spec!r}: {cls.name} has no parameter {param!r} (its parameters: {have})")
        if param in params:
            raise ValueError(f"estimator spec {spec!r}: parameter {param!r} is given twice")
        params[param] = _parse_value(spec, param, match["value"])
    return params


def _parse_value(spec: str, param: str, text: str) -> Any:
    """A number, ``true``/``false``, ``none`` or ``inf`` (any case); anything else is an error."""
    lowered = text.lower()
    if lowered in _CONSTANTS:
        return _CONSTANTS[lowered]
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value):
        raise ValueError(f"estimator spec {spec!r}: value {text!r} of {param!r} must be a number, inf, "
                         "true, false or none")
    return value
