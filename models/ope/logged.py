"""Logged bandit feedback: one row per decision, read from and written to one file format.

The format (``docs/logged-data.md``) is a table, Parquet or CSV, with the columns ``decision_id``,
optional ``timestamp``, free context columns, ``action`` (or ``channel`` + ``hour`` resolved through a
:class:`~sendwise.models.domain.catalog.Catalog`), ``propensity`` of the logged action under the logging
policy, ``reward``, optional per-outcome columns (the catalog's outcomes, e.g. ``click``),
optional ``cost``, optionally what the logging policy chose from: ``allowed_arms`` (the mask
code of the allowed actions, see :func:`~sendwise.models.domain.catalog.encode_mask`), ``support_size`` and
``epsilon``, and optionally the experiment columns (``EXPERIMENT_COLUMNS``: who the customer is, their
group, their pre-period engagement, what the model would have chosen), which the lift report reads.
The server and the simulator write it with :func:`write_logs`; off-policy evaluation reads it with
:func:`read_logs`. Loading validates every row, and an error names the file,
the column, the row (counted from 0 in file order, header excluded) and the rule.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ..domain import (
    DEFAULT_CHANNELS,
    DEFAULT_OUTCOMES,
    N_HOURS,
    NO_MESSAGE,
    Catalog,
    MaskCodeError,
    decode_mask,
    encode_mask,
)
from ..validation import RowError, check_rows

FORMAT_VERSION = 1
# customer: pseudonym; group: holdout, model or baseline; pre_engagement: the customer's engagement before
# the experiment (a CUPED covariate); model_agrees / model_propensity: in shadow mode, whether the model would
# have chosen the arm that was sent, the probability of the model's own choice, and the model's probability of
# the arm that was sent (what an off-policy estimate of the model on the baseline's rows weighs by).
EXPERIMENT_COLUMNS = ("customer", "group", "pre_engagement", "model_agrees", "model_propensity",
                      "model_sent_probability")
RESERVED_COLUMNS = ("decision_id", "timestamp", "action", "channel", "hour", "propensity", "reward", "cost",
                    "allowed_arms", "support_size", "epsilon", *EXPERIMENT_COLUMNS)
ALLOWED_ARMS_COLUMN = "allowed_arms"
_META_KEY = b"sendwise.logs"
_CATALOG_CONTEXT = (("region", "regions"), ("industry", "industries"), ("campaign_type", "campaign_types"))
_REQUIRED = "a log needs decision_id, action (or channel and hour), propensity and reward"


@dataclass(frozen=True, eq=False)
class LoggedFeedback:
    """A bandit log, one row per decision; arrays and frames share their length ``n_rounds``.

    action : int64 (n_rounds,), the logged action in [0, n_actions) (an arm id when ``catalog`` is set).
    propensity : float64 (n_rounds,), probability of the logged action under the logging policy, in (0, 1].
    reward : float64 (n_rounds,), finite.
    n_actions : size of the action set; default ``catalog.n_arms``, ``len(action_names)`` or the largest
        logged action + 1.
    decision_id : (n_rounds,) unique ids; default 0..n_rounds-1.
    timestamp : datetime64 (n_rounds,) in UTC, or None.
    context : DataFrame (n_rounds rows) of context columns (``region``, ``industry``, ``campaign_type``
        and any others); what a target policy and a reward model may look at.
    outcomes : DataFrame (n_rounds rows) of finite per-outcome columns (e.g. ``click``), or None.
    cost : float64 (n_rounds,), cost of the logged message, or None.
    action_names : a name per action, or None (plain integer actions).
    catalog : the catalog that maps arm ids to channel × hour, or None for catalog-free logs.
    allowed : bool (n_rounds, n_actions), the actions the logging policy chose from in each row (the
        logged action among them), or None when the log does not say (file column ``allowed_arms``).
    support_size : float64 (n_rounds,), how many actions had positive logging probability, an integer in
        [1, n_actions]; NaN where not recorded. None when the log does not say.
    epsilon : float64 (n_rounds,), the logging policy's exploration floor, in [0, 1]; NaN where not
        recorded. None when the log does not say.
    experiment : DataFrame (n_rounds rows) of ``EXPERIMENT_COLUMNS`` (any of them), or None. Never context:
        a customer id would only overfit a reward model.

    Values arrive as given (lists, Series, arrays, even strings from a CSV) and are coerced here, so
    every row is checked by the same rules whether it came from code or from a file.
    """

    action: np.ndarray
    propensity: np.ndarray
    reward: np.ndarray
    n_actions: int | None = None
    decision_id: np.ndarray | None = None
    timestamp: np.ndarray | None = None
    context: pd.DataFrame | None = None
    outcomes: pd.DataFrame | None = None
    cost: np.ndarray | None = None
    action_names: tuple[str, ...] | None = None
    catalog: Catalog | None = None
    allowed: np.ndarray | None = None
    support_size: np.ndarray | None = None
    epsilon: np.ndarray | None = None
    experiment: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        raw_action = _column("action", self.action)
        n_rounds = raw_action.shape[0]
        set_ = object.__setattr__
        if self.action_names is not None:
            set_(self, "action_names", tuple(str(name) for name in self.action_names))
        action = _to_float(raw_action)
        n_actions = self._resolve_n_actions(action)
        set_(self, "n_actions", n_actions)
        ok = np.isfinite(action) & (action == np.round(action)) & (action >= 0) & (action < n_actions)
        of_catalog = "an arm id of the catalog" if self.catalog is not None else "an action id"
        check_rows("column 'action'", raw_action, ok, f"must be {of_catalog} in [0, {n_actions})")
        set_(self, "action", action.astype(np.int64))
        if self.allowed is not None:
            set_(self, "allowed", self._checked_allowed(n_rounds, n_actions))
        if self.support_size is not None:
            set_(self, "support_size", _checked_float("support_size", self.support_size, n_rounds,
                                                      f"must be an integer in [1, {n_actions}] or empty",
                                                      lambda k: (k == np.round(k)) & (k >= 1) & (k <= n_actions),
                                                      optional=True))
        if self.epsilon is not None:
            set_(self, "epsilon", _checked_float("epsilon", self.epsilon, n_rounds, "must lie in [0, 1] or be empty",
                                                 lambda e: (e >= 0) & (e <= 1), optional=True))
        set_(self, "propensity", _checked_float("propensity", self.propensity, n_rounds, "must lie in (0, 1]",
                                                lambda p: (p > 0) & (p <= 1)))
        set_(self, "reward", _checked_float("reward", self.reward, n_rounds, "must be finite", np.isfinite))
        if self.cost is not None:
            set_(self, "cost", _checked_float("cost", self.cost, n_rounds, "must be finite", np.isfinite))
        set_(self, "decision_id", self._checked_ids(n_rounds))
        if self.timestamp is not None:
            set_(self, "timestamp", _checked_timestamps(self.timestamp, n_rounds))
        set_(self, "context", self._checked_context(n_rounds))
        if self.outcomes is not None:
            set_(self, "outcomes", self._checked_outcomes(n_rounds))
        if self.experiment is not None:
            set_(self, "experiment", self._checked_experiment(n_rounds))

    @property
    def n_rounds(self) -> int:
        return int(self.action.shape[0])

    def take(self, rows: Any) -> LoggedFeedback:
        """The log of the rounds ``rows`` (indices, in that order): a subsample or one side of a split."""
        rows = np.asarray(rows, dtype=np.int64)
        changes: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, np.ndarray):
                changes[field.name] = value[rows]
            elif isinstance(value, pd.DataFrame):
                changes[field.name] = value.iloc[rows].reset_index(drop=True)
        return replace(self, **changes)

    def to_frame(self) -> pd.DataFrame:
        """The log as a table in file layout (see ``docs/logged-data.md``); ``write_logs`` writes it."""
        columns: dict[str, Any] = {"decision_id": self.decision_id}
        if self.timestamp is not None:
            columns["timestamp"] = pd.Series(self.timestamp).dt.tz_localize("UTC")
        frame = pd.DataFrame(columns)
        frame = pd.concat([frame, self.context], axis=1)
        if self.catalog is None:
            frame["action"] = self.action
        else:
            channel_names = np.array([*self.catalog.channels, NO_MESSAGE], dtype=object)
            hours = self.catalog.arm_hours()[self.action]
            frame["channel"] = channel_names[self.catalog.arm_channels()[self.action]]
            frame["hour"] = pd.array(np.where(hours < 0, None, hours), dtype="Int64")
        frame["propensity"] = self.propensity
        if self.allowed is not None:
            frame[ALLOWED_ARMS_COLUMN] = encode_mask(self.allowed, self.n_actions)
        if self.support_size is not None:
            frame["support_size"] = pd.Series(self.support_size).astype("Int64")
        if self.epsilon is not None:
            frame["epsilon"] = self.epsilon
        frame["reward"] = self.reward
        if self.outcomes is not None:
            frame = pd.concat([frame, self.outcomes], axis=1)
        if self.cost is not None:
            frame["cost"] = self.cost
        if self.experiment is not None:
            frame = pd.concat([frame, self.experiment], axis=1)
        return frame

    def _resolve_n_actions(self, action: np.ndarray) -> int:
        implied = {
            "catalog.n_arms": None if self.catalog is None else self.catalog.n_arms,
            "len(action_names)": None if self.action_names is None else len(self.action_names),
            "n_actions": self.n_actions,
        }
        given = {k: v for k, v in implied.items() if v is not None}
        if len(set(given.values())) > 1:
            listed = ", ".join(f"{k}={v}" for k, v in given.items())
            raise ValueError(f"the size of the action set is given inconsistently: {listed}")
        if given:
            n_actions = next(iter(given.values()))
        else:
            finite = action[np.isfinite(action)]
            n_actions = int(finite.max()) + 1 if finite.size else 1
        if not (isinstance(n_actions, int | np.integer) and n_actions >= 1):
            raise ValueError(f"`n_actions` must be an int >= 1; got {n_actions!r}")
        return int(n_actions)

    def _checked_allowed(self, n_rounds: int, n_actions: int) -> np.ndarray:
        allowed = self.allowed.to_numpy() if isinstance(self.allowed, pd.DataFrame) else np.asarray(self.allowed)
        if allowed.dtype != np.bool_:
            raise TypeError(f"`allowed` must be a bool array; got dtype {allowed.dtype}")
        if allowed.shape != (n_rounds, n_actions):
            raise ValueError(f"`allowed` must have shape (n_rounds, n_actions) = {(n_rounds, n_actions)}; "
                             f"got {allowed.shape}")
        outside = np.flatnonzero(~allowed[np.arange(n_rounds), self.action])
        if outside.size:
            i, arm = int(outside[0]), int(self.action[outside[0]])
            name = f"action {arm}"
            if self.catalog is not None:
                hour = self.catalog.hour_of(arm)
                name += f" ({self.catalog.channel_of(arm)}{'' if hour is None else f' at {hour}'})"
            raise RowError(f"column {ALLOWED_ARMS_COLUMN!r}, row {i}: must contain the logged {name}, which has "
                            f"propensity > 0; got {encode_mask(allowed[i], n_actions)!r}")
        return np.ascontiguousarray(allowed)

    def _checked_ids(self, n_rounds: int) -> np.ndarray:
        if self.decision_id is None:
            return np.arange(n_rounds, dtype=np.int64)
        ids = _column("decision_id", self.decision_id, n_rounds)
        check_rows("column 'decision_id'", ids, ~pd.isna(ids), "must not be empty")
        first_seen = pd.Series(ids).duplicated(keep="first").to_numpy()
        check_rows("column 'decision_id'", ids, ~first_seen, "must be unique (the id appears in an earlier row)")
        return ids

    def _checked_context(self, n_rounds: int) -> pd.DataFrame:
        context = pd.DataFrame(index=range(n_rounds)) if self.context is None else self.context
        context = _frame("context", context, n_rounds)
        clash = [c for c in context.columns if c in RESERVED_COLUMNS]
        if clash:
            raise ValueError(f"`context` must not use the reserved column names {clash}; "
                             f"reserved: {', '.join(RESERVED_COLUMNS)}")
        if self.catalog is not None:
            for column, field in _CATALOG_CONTEXT:
                if column in context.columns:
                    known = getattr(self.catalog, field)
                    values = context[column].to_numpy(dtype=object)
                    check_rows(f"column {column!r}", values, np.isin(values, known),
                               f"must be one of the catalog's {field} ({', '.join(known)})")
        return context

    def _checked_outcomes(self, n_rounds: int) -> pd.DataFrame:
        outcomes = _frame("outcomes", self.outcomes, n_rounds)
        clash = [c for c in outcomes.columns if c in RESERVED_COLUMNS or c in self.context.columns]
        if clash:
            raise ValueError(f"`outcomes` must not reuse context or reserved column names; got {clash}")
        checked = {c: _checked_float(c, outcomes[c], n_rounds, "must be finite", np.isfinite) for c in outcomes}
        return pd.DataFrame(checked, index=outcomes.index)

    def _checked_experiment(self, n_rounds: int) -> pd.DataFrame:
        experiment = _frame("experiment", self.experiment, n_rounds)
        unknown = [c for c in experiment.columns if c not in EXPERIMENT_COLUMNS]
        if unknown:
            raise ValueError(f"`experiment` columns must be among {', '.join(EXPERIMENT_COLUMNS)}; got {unknown}")
        checked: dict[str, Any] = {}
        for column in ("customer", "group"):
            if column in experiment:
                values = experiment[column].to_numpy(dtype=object)
                ok = np.array([isinstance(v, str) and v != "" for v in values], dtype=np.bool_)
                check_rows(f"column {column!r}", values, ok, "must be a non-empty string")
                checked[column] = values
        for column in ("pre_engagement", "model_propensity"):
            if column in experiment:
                checked[column] = _checked_float(column, experiment[column], n_rounds, "must be finite or empty",
                                                 np.isfinite, optional=True)
        if "model_sent_probability" in experiment:
            checked["model_sent_probability"] = _checked_float(
                "model_sent_probability", experiment["model_sent_probability"], n_rounds, "must lie in [0, 1] or be "
                "empty", lambda a: (a >= 0) & (a <= 1), optional=True)
        if "model_agrees" in experiment:
            checked["model_agrees"] = _checked_float("model_agrees", experiment["model_agrees"], n_rounds,
                                                     "must be 0, 1 or empty", lambda a: (a == 0) | (a == 1),
                                                     optional=True)
        return pd.DataFrame(checked, index=experiment.index)


def read_logs(path: str | Path, catalog: Catalog | None = None) -> LoggedFeedback:
    """Read and validate a log written in the format of ``docs/logged-data.md`` (``.parquet`` or ``.csv``).

    ``catalog`` resolves ``channel`` + ``hour`` columns to arm ids and checks ``region``, ``industry``,
    ``campaign_type``. Without it, a Parquet file's own catalog is used (``write_logs`` stores it), else
    one is inferred from the columns (default channels first, then any others; sorted regions,
    industries and campaign types). Outcome columns are the catalog's outcomes (default ``click``,
    ``unsubscribe``) or, in Parquet, the ones recorded by ``write_logs``; every other column is context.
    Errors name the file, the column, the row and the rule.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> log = LoggedFeedback(action=[0, 2], propensity=[0.5, 0.5], reward=[1.0, 0.0], n_actions=3)
    >>> path = write_logs(log, pathlib.Path(tempfile.mkdtemp()) / "logs.csv")
    >>> read_logs(path).action.tolist()
    [0, 2]
    """
    path = Path(path)
    frame, meta = _read_table(path)
    columns = set(frame.columns)
    missing = [c for c in ("decision_id", "propensity", "reward") if c not in columns]
    if "action" not in columns and not {"channel", "hour"} <= columns:
        missing.append("action" if "channel" not in columns else "hour")
    if missing:
        raise ValueError(f"{path.name}: column {missing[0]!r} is missing; {_REQUIRED}")
    if "action" in columns and columns & {"channel", "hour"}:
        raise ValueError(f"{path.name}: give either column 'action' or columns 'channel' and 'hour', not both")
    if catalog is None and meta.get("catalog"):
        catalog = Catalog.from_dict(meta["catalog"])
    if catalog is None and "channel" in columns:
        catalog = _infer_catalog(frame)
    outcome_names = meta.get("outcomes")
    if outcome_names is None:
        outcome_names = [o for o in (catalog.outcomes if catalog else DEFAULT_OUTCOMES) if o in columns]
    context = frame.drop(columns=[c for c in frame.columns if c in RESERVED_COLUMNS or c in outcome_names])
    experiment = [c for c in EXPERIMENT_COLUMNS if c in columns]
    try:
        action = frame["action"].to_numpy(dtype=object) if "action" in columns else _arms(frame, catalog)
        n_actions = None if catalog else meta.get("n_actions")
        allowed = None
        if ALLOWED_ARMS_COLUMN in columns:
            allowed, n_actions = _allowed_arms(frame[ALLOWED_ARMS_COLUMN], catalog.n_arms if catalog else n_actions,
                                               action)
        return LoggedFeedback(
            action=action,
            propensity=frame["propensity"],
            reward=frame["reward"],
            n_actions=None if catalog else n_actions,
            decision_id=frame["decision_id"],
            timestamp=frame["timestamp"] if "timestamp" in columns else None,
            context=context,
            outcomes=frame[outcome_names] if outcome_names else None,
            cost=frame["cost"] if "cost" in columns else None,
            action_names=meta.get("action_names"),
            catalog=catalog,
            allowed=allowed,
            support_size=frame["support_size"] if "support_size" in columns else None,
            epsilon=frame["epsilon"] if "epsilon" in columns else None,
            experiment=frame[experiment].astype({c: object for c in ("customer", "group") if c in experiment})
            if experiment else None,
        )
    except RowError as exc:
        raise ValueError(f"{path.name}: {exc}") from None


def write_logs(log: LoggedFeedback, path: str | Path) -> Path:
    """Write ``log`` to ``path`` in the format of ``docs/logged-data.md``; the suffix picks Parquet or CSV.

    Parquet also records the catalog, the number of actions, the action names and the outcome columns,
    so ``read_logs`` gets back exactly what was written. CSV carries only the table, so it refuses outcome
    columns other than the catalog's, which would read back as context.
    """
    path = Path(path)
    frame = log.to_frame()
    if _suffix(path) == ".csv":
        known = log.catalog.outcomes if log.catalog else DEFAULT_OUTCOMES
        unknown = [str(c) for c in (log.outcomes.columns if log.outcomes is not None else ()) if c not in known]
        if unknown:
            raise ValueError(f"{path.name}: CSV cannot mark {unknown} as outcomes (it recognises only the "
                             f"catalog's: {', '.join(known)}), so they would read back as context; write .parquet")
        frame.to_csv(path, index=False)
        return path
    meta = {
        "format_version": FORMAT_VERSION,
        "n_actions": log.n_actions,
        "action_names": None if log.action_names is None else list(log.action_names),
        "catalog": None if log.catalog is None else log.catalog.to_dict(),
        "outcomes": [] if log.outcomes is None else [str(c) for c in log.outcomes.columns],
    }
    naive = frame.assign(timestamp=frame["timestamp"].dt.tz_localize(None)) if log.timestamp is not None else frame
    table = pa.Table.from_pandas(naive, preserve_index=False)  # pyarrow reads tz-aware columns via a deprecated path
    if log.timestamp is not None:
        where = table.schema.get_field_index("timestamp")
        utc = pa.timestamp(table.schema.field(where).type.unit, tz="UTC")
        table = table.set_column(where, "timestamp", table["timestamp"].cast(utc))
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: json.dumps(meta)})
    pq.write_table(table, path)
    return path


def _read_table(path: Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    suffix = _suffix(path)
    if not path.is_file():
        raise FileNotFoundError(f"log file {str(path)!r} does not exist")
    if suffix == ".csv":
        # "NA" is a region, not a gap; mask codes such as "0001…" must stay text
        return pd.read_csv(path, keep_default_na=False, na_values=[""], dtype={ALLOWED_ARMS_COLUMN: str}), {}
    table = pq.read_table(path)
    meta = json.loads((table.schema.metadata or {}).get(_META_KEY, b"{}"))
    if meta and meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path.name}: log format version {meta.get('format_version')!r}; "
                         f"this sendwise reads version {FORMAT_VERSION}")
    return table.to_pandas(), meta


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"log file {str(path)!r} must end in .parquet or .csv; got {suffix or 'no suffix'!r}")
    return suffix


def _arms(frame: pd.DataFrame, catalog: Catalog) -> np.ndarray:
    """Arm ids from ``channel`` + ``hour`` columns; the no-message channel ``none`` needs no hour."""
    names = (*catalog.channels, NO_MESSAGE)
    channel = frame["channel"].to_numpy(dtype=object)
    channel_idx = frame["channel"].map({name: i for i, name in enumerate(names)}).to_numpy(dtype=float)
    check_rows("column 'channel'", channel, ~np.isnan(channel_idx),
               f"must be a channel of the catalog ({', '.join(names)})")
    hour = _to_float(frame["hour"].to_numpy(dtype=object))
    is_null = channel_idx == len(catalog.channels)
    ok = is_null | (np.isfinite(hour) & (hour == np.round(hour)) & (hour >= 0) & (hour < N_HOURS))
    check_rows("column 'hour'", frame["hour"].to_numpy(dtype=object), ok, f"must be an integer hour in [0, {N_HOURS})")
    arm = channel_idx * N_HOURS + np.where(is_null, 0, hour)
    return np.where(is_null, catalog.null_arm, arm).astype(np.int64)


def _allowed_arms(codes: pd.Series, n_actions: int | None, action: np.ndarray) -> tuple[np.ndarray, int | None]:
    """The ``allowed_arms`` column decoded to bool (n_rounds, n_actions); an empty cell allows every action.

    With ``n_actions`` unknown (plain actions, no metadata) the action set is the smallest that the
    logged actions, the allowed bits and the length of the codes fit; it is returned with the masks.
    """
    raw = codes.to_numpy(dtype=object)
    given = np.flatnonzero(~pd.isna(raw))
    width = n_actions
    if width is None:
        first = raw[given[0]] if given.size else ""
        width = 4 * len(first) if isinstance(first, str) else 1  # every bit a code of that length holds
    try:
        decoded = decode_mask(raw[given], max(width, 1))
    except MaskCodeError as exc:
        raise RowError(f"column {ALLOWED_ARMS_COLUMN!r}, row {int(given[exc.row])}: {exc.rule}; "
                        f"got {exc.value!r}") from None
    if n_actions is None:
        finite = _to_float(action)
        finite = finite[np.isfinite(finite)]
        highest = [int(finite.max()) + 1 if finite.size else 1, width - 7]
        set_bits = np.flatnonzero(decoded.any(axis=0))
        if set_bits.size:
            highest.append(int(set_bits[-1]) + 1)
        n_actions = max(highest)
    allowed = np.ones((raw.shape[0], n_actions), dtype=np.bool_)
    allowed[given] = False
    fits = min(width, n_actions)  # an action beyond the codes' width is in no mask; the log check says so
    allowed[given, :fits] = decoded[:, :fits]
    return allowed, n_actions


def _infer_catalog(frame: pd.DataFrame) -> Catalog:
    """A catalog for CSV logs that carry channel names but no catalog: order fixed by the data alone."""
    seen = {str(c) for c in frame["channel"].dropna().unique()} - {NO_MESSAGE}
    fields = {"channels": DEFAULT_CHANNELS + tuple(sorted(seen - set(DEFAULT_CHANNELS)))}
    for column, field in _CATALOG_CONTEXT:
        if column in frame.columns:
            fields[field] = tuple(sorted(str(v) for v in frame[column].dropna().unique()))
    return Catalog(**fields)


def _to_float(values: np.ndarray) -> np.ndarray:
    """Values as float64, NaN where a value is not a number (the row check then reports it)."""
    if values.dtype.kind in "biuf":
        return values.astype(np.float64)
    return pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)


def _column(name: str, values: Any, n_rounds: int | None = None) -> np.ndarray:
    """A 1-d array of ``n_rounds`` values (any length when None) from a list, array or Series."""
    arr = values.to_numpy() if isinstance(values, pd.Series) else np.asarray(values)
    if arr.ndim != 1 or (n_rounds is not None and arr.shape[0] != n_rounds):
        shape = "(n_rounds,)" if n_rounds is None else f"({n_rounds},) like `action`"
        raise ValueError(f"`{name}` must have shape {shape}; got {arr.shape}")
    return arr


def _checked_float(name: str, values: Any, n_rounds: int, rule: str,
                   test: Callable[[np.ndarray], np.ndarray], *, optional: bool = False) -> np.ndarray:
    """A float column whose every value passes ``test``; with ``optional`` a missing value (None, NaN, an
    empty cell) passes too and becomes NaN."""
    raw = _column(name, values, n_rounds)
    numbers = _to_float(raw)
    with np.errstate(invalid="ignore"):
        ok = pd.isna(raw) | (np.isfinite(numbers) & test(numbers)) if optional else test(numbers) & ~np.isnan(numbers)
        check_rows(f"column {name!r}", raw, ok, rule)
    return numbers


def _checked_timestamps(values: Any, n_rounds: int) -> np.ndarray:
    raw = _column("timestamp", values, n_rounds)
    parsed = pd.to_datetime(pd.Series(raw, dtype=object), utc=True, errors="coerce", format="ISO8601")
    check_rows("column 'timestamp'", raw, parsed.notna().to_numpy(), "must be an ISO 8601 date-time")
    return parsed.dt.tz_localize(None).to_numpy()


def _frame(name: str, frame: pd.DataFrame, n_rounds: int) -> pd.DataFrame:
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"`{name}` must be a pandas DataFrame; got {type(frame).__name__}")
    if len(frame) != n_rounds:
        raise ValueError(f"`{name}` must have {n_rounds} rows like `action`; got {len(frame)}")
    return frame.reset_index(drop=True)
