"""Open Bandit Pipeline's numbers for sendwise's off-policy estimators, on the Open Bandit Dataset sample.

Runs OBP's estimators on ``data/obd`` (uniform random logging over 80 items) for a fixed target policy
and a fixed reward model q̂, and writes their estimates, with the versions used and a checksum of every
input array, to ``tests/data/obp_reference.json``. ``tests/models/test_obp_reference.py`` rebuilds the
same inputs with :func:`reference_inputs`, checks the checksum and compares sendwise's estimates with
OBP's. The target and q̂ come from integer arithmetic on the logged columns (no random numbers, no
floating-point functions beyond one division), so they are the same bits under any numpy.

OBP pulls torch and declares Python < 3.11, so it runs in a virtual environment of its own:

    python3.10 -m venv obp-venv
    obp-venv/bin/pip install -r benchmarks/requirements-obp.txt
    obp-venv/bin/python benchmarks/obp_reference.py [--out tests/data/obp_reference.json]

Importing this module needs numpy only (the test imports it); OBP and pandas load in :func:`main`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
OBD_CSV = REPO / "data" / "obd" / "random" / "all" / "all.csv"
OUT = REPO / "tests" / "data" / "obp_reference.json"
N_ACTIONS = 80
USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")

# sendwise spec -> (OBP class name, its keyword arguments); OBP's `lambda_` is sendwise's clip, tau or lambda_.
CASES: dict[str, tuple[str, dict[str, float]]] = {
    "ips": ("InverseProbabilityWeighting", {}),
    "ips(clip=2)": ("InverseProbabilityWeighting", {"lambda_": 2.0}),
    "snips": ("SelfNormalizedInverseProbabilityWeighting", {}),
    "dm": ("DirectMethod", {}),
    "dr": ("DoublyRobust", {}),
    "dr(clip=2)": ("DoublyRobust", {"lambda_": 2.0}),
    "switch-dr(tau=0.5)": ("SwitchDoublyRobust", {"lambda_": 0.5}),
    "switch-dr(tau=2)": ("SwitchDoublyRobust", {"lambda_": 2.0}),
    "dr-os(lambda_=1)": ("DoublyRobustWithShrinkage", {"lambda_": 1.0}),
    "dr-os(lambda_=10)": ("DoublyRobustWithShrinkage", {"lambda_": 10.0}),
    "sndr": ("SelfNormalizedDoublyRobust", {}),
}


def reference_inputs(position: np.ndarray, user_features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The fixed target π and reward model q̂, float64 (n_rounds, N_ACTIONS), from the logged context.

    ``position`` is the slot (1-3), ``user_features`` the four hashed user features, shape (n_rounds, 4).
    π(a | x) ∝ k³ + 1 with k = (31a + 17u + 7p) mod 13, plus 2000 on one preferred item per (u, p), u
    the user's index among the distinct feature rows: uneven weights (0.002 to 7.4 under 1/80 logging)
    that give clipping, switching and shrinkage something to do. q̂(x, a) = ((13a + 5u + 3p) mod 11) / 200.
    """
    rows = np.array(["|".join(map(str, row)) for row in np.asarray(user_features)])
    user = np.unique(rows, return_inverse=True)[1].reshape(-1, 1).astype(np.int64)
    slot = np.asarray(position, dtype=np.int64).reshape(-1, 1)
    item = np.arange(N_ACTIONS, dtype=np.int64).reshape(1, -1)
    weight = ((31 * item + 17 * user + 7 * slot) % 13) ** 3 + 1 + 2000 * (item == (11 * user + 5 * slot) % N_ACTIONS)
    target_probs = weight / weight.sum(axis=1, keepdims=True)
    q_hat = ((13 * item + 5 * user + 3 * slot) % 11) / 200
    return target_probs, q_hat


def checksum(*arrays: np.ndarray) -> str:
    """sha256 of the arrays' little-endian bytes, in order; the dtype is part of the input."""
    digest = hashlib.sha256()
    for arr in arrays:
        arr = np.ascontiguousarray(arr)
        digest.update(arr.dtype.newbyteorder("<").str.encode())
        digest.update(arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes())
    return digest.hexdigest()


def main() -> None:
    import obp
    import pandas as pd
    from obp import ope
    from obp.dataset import OpenBanditDataset

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help="JSON file to write (default %(default)s)")
    out = parser.parse_args().out

    frame = pd.read_csv(OBD_CSV, index_col=0)
    action = frame["item_id"].to_numpy(dtype=np.int64)
    reward = frame["click"].to_numpy(dtype=np.float64)
    pscore = frame["propensity_score"].to_numpy(dtype=np.float64)
    target_probs, q_hat = reference_inputs(frame["position"].to_numpy(), frame[list(USER_FEATURES)].to_numpy())

    # OBP's own loader must see the same rounds in the same order.
    feedback = OpenBanditDataset(behavior_policy="random", campaign="all",
                                 data_path=OBD_CSV.parents[2]).obtain_batch_bandit_feedback()
    for key, ours in (("action", action), ("reward", reward), ("pscore", pscore)):
        np.testing.assert_array_equal(feedback[key], ours, err_msg=f"OBP's loader disagrees on {key}")

    # One slot per round (len_list 1): the position is context here, as in sendwise's load_obd.
    inputs = {"reward": reward, "action": action, "pscore": pscore, "action_dist": target_probs[:, :, None],
              "estimated_rewards_by_reg_model": q_hat[:, :, None]}
    estimates = {spec: float(getattr(ope, cls_name)(**kwargs).estimate_policy_value(**inputs))  # extras go to **kwargs
                 for spec, (cls_name, kwargs) in CASES.items()}

    result = {
        "about": "Open Bandit Pipeline's estimates on data/obd/random/all for benchmarks/obp_reference.py's "
                 "target and reward model; regenerate with that script",
        "obp_version": obp.__version__,
        "numpy_version": np.__version__,
        "python_version": platform.python_version(),
        "data_sha256": hashlib.sha256(OBD_CSV.read_bytes()).hexdigest(),
        "inputs_sha256": checksum(action, reward, pscore, target_probs, q_hat),
        "n_rounds": int(action.size),
        "n_actions": N_ACTIONS,
        "obp_estimators": {spec: f"{cls_name}({', '.join(f'{k}={v}' for k, v in kwargs.items())})"
                           for spec, (cls_name, kwargs) in CASES.items()},
        "estimates": estimates,
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
