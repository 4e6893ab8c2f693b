"""Real logged-bandit datasets shipped small with the repository (``data/``), as ``LoggedFeedback``.

- Open Bandit Dataset sample (``data/obd``): 10,000 fashion-item recommendations logged by a uniform
  random policy, with clicks and propensities; actions are the 80 items.
- Hillstrom e-mail RCT (``data/hillstrom``): 64,000 customers randomly assigned to a men's e-mail, a
  women's e-mail or none, each with probability 1/3; a natural three-action log.

The files ship with the source repository, not with an installed wheel, so each loader takes a
``path`` (the dataset's folder or its CSV); without one it looks in ``$SENDWISE_DATA_DIR`` and then in
the repository's ``data/`` folder. Each folder's README says where the data come from and under which
license.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .logged import LoggedFeedback

DATA_DIR_ENV = "SENDWISE_DATA_DIR"
OBD_FILE = Path("random", "all", "all.csv")
OBD_ITEMS_FILE = Path("random", "all", "item_context.csv")
OBD_CONTEXT = ("position", "user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")
HILLSTROM_FILE = Path("hillstrom.csv")
HILLSTROM_ACTIONS = ("Mens E-Mail", "Womens E-Mail", "No E-Mail")
HILLSTROM_CONTEXT = (
    "recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "purchase_channel",
)
HILLSTROM_OUTCOMES = ("visit", "conversion", "spend")


def data_dir() -> Path:
    """Folder holding ``obd/`` and ``hillstrom/``: ``$SENDWISE_DATA_DIR``, else the repository's ``data/``."""
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "data"


def load_obd(path: str | Path | None = None) -> LoggedFeedback:
    """The Open Bandit Dataset sample (uniform random policy, campaign "all") as a catalog-free log.

    Actions are the 80 items of ``item_context.csv`` (item id = action), the reward is the click, the
    propensity is the logging policy's (1/80); the context is the slot ``position`` (1-3) and the four
    hashed user features. The user-item affinity columns are left out: in this sample they are 0 in
    more than 99.9% of cells. ``path``: the ``obd`` folder or its ``all.csv``.
    """
    csv = _dataset_file("OBD sample", "obd", OBD_FILE, path)
    items = pd.read_csv(csv.parent / OBD_ITEMS_FILE.name, index_col=0)
    frame = pd.read_csv(csv, index_col=0)
    return LoggedFeedback(
        action=frame["item_id"].to_numpy(),
        propensity=frame["propensity_score"].to_numpy(),
        reward=frame["click"].to_numpy(dtype=np.float64),
        n_actions=len(items),
        decision_id=frame.index.to_numpy(),
        timestamp=frame["timestamp"].to_numpy(),
        context=frame[list(OBD_CONTEXT)],
        outcomes=frame[["click"]].astype(np.float64),
    )


def load_hillstrom(path: str | Path | None = None, *, reward: str = "visit") -> LoggedFeedback:
    """The Hillstrom e-mail RCT as a three-action log with known propensity 1/3.

    Actions: ``HILLSTROM_ACTIONS`` (0 = Mens E-Mail, 1 = Womens E-Mail, 2 = No E-Mail); ``reward``: one
    of ``visit``, ``conversion`` (0/1) or ``spend`` (dollars), all three kept as outcomes; context: the
    customer columns of ``HILLSTROM_CONTEXT``, the CSV's ``channel`` (Phone, Web, Multichannel: where the
    customer bought) renamed ``purchase_channel`` because ``channel`` names the message channel in a log.
    ``path``: the ``hillstrom`` folder or its CSV.
    """
    if reward not in HILLSTROM_OUTCOMES:
        raise ValueError(f"`reward` must be one of {', '.join(HILLSTROM_OUTCOMES)}; got {reward!r}")
    frame = pd.read_csv(_dataset_file("Hillstrom data", "hillstrom", HILLSTROM_FILE, path))
    frame = frame.rename(columns={"channel": "purchase_channel"})
    action = frame["segment"].map({name: i for i, name in enumerate(HILLSTROM_ACTIONS)})
    unknown = np.flatnonzero(action.isna().to_numpy())
    if unknown.size:
        raise ValueError(f"Hillstrom column 'segment', row {unknown[0]}: must be one of "
                         f"{', '.join(HILLSTROM_ACTIONS)}; got {frame['segment'].iloc[unknown[0]]!r}")
    return LoggedFeedback(
        action=action.to_numpy(dtype=np.int64),
        propensity=np.full(len(frame), 1 / len(HILLSTROM_ACTIONS)),
        reward=frame[reward].to_numpy(dtype=np.float64),
        action_names=HILLSTROM_ACTIONS,
        context=frame[list(HILLSTROM_CONTEXT)],
        outcomes=frame[list(HILLSTROM_OUTCOMES)].astype(np.float64),
    )


def _dataset_file(title: str, folder: str, relative: Path, path: str | Path | None) -> Path:
    """The dataset's CSV from an explicit file or folder, or from the default data folder."""
    base = Path(path) if path is not None else data_dir() / folder
    csv = base / relative if path is None or base.is_dir() else base
    if not csv.is_file():
        raise FileNotFoundError(
            f"{title} not found at {str(csv)!r}; pass `path` (the {folder} folder or its CSV) or set "
            f"{DATA_DIR_ENV} to a folder holding {folder}/ (the data ship with the source repository's "
            "data/ folder, not with an installed package)"
        )
    return csv
