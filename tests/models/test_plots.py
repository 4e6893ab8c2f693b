"""Plots of a simulation: the learned-vs-true map marks the arms a policy never tried."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sendwise.models import Outcomes, load_policy
from sendwise.models.domain import N_HOURS
from sendwise.models.policies.base import OpenCounts
from sendwise.models.sim.plots import _busiest_cell, plot_learned_vs_true, untried_mask
from sendwise.models.sim.simulate import simulate
from tests.models.test_policies import CATALOG, make_policy


@pytest.mark.parametrize("name", ["ts", "egreedy", "hier_ts"])
def test_an_arm_is_untried_until_a_message_on_it_is_open_or_resolved(name):
    policy = make_policy(name)
    assert policy.untried_arms().all(), "a fresh policy has tried nothing"
    resolved_cell, resolved_arm = CATALOG.cell("NA", "retail", "cart"), CATALOG.arm("push", 19)
    policy.update(Outcomes(cell_idx=np.array([resolved_cell] * 2), arm=np.array([resolved_arm] * 2),
                           outcome_idx=np.array([0, 1]), successes=np.zeros(2), failures=np.ones(2)))
    pending = np.zeros(policy.pending_.shape)
    open_cell, open_arm = CATALOG.cell("EU", "gaming", "broadcast"), CATALOG.arm("sms", 9)
    pending[open_cell, :, open_arm] = 1.0
    policy.set_open(OpenCounts(pending))
    expected = np.ones((CATALOG.n_cells, CATALOG.n_arms), dtype=bool)
    expected[resolved_cell, resolved_arm] = expected[open_cell, open_arm] = False
    np.testing.assert_array_equal(policy.untried_arms(), expected)


def test_policies_without_a_posterior_cannot_tell_and_the_mask_is_channel_by_hour():
    assert make_policy("ucb1").untried_arms() is None
    assert not untried_mask(make_policy("ucb1"), 0).any()
    policy = make_policy("ts")
    cell = CATALOG.cell("NA", "retail", "broadcast")
    policy.pending_[cell, :, CATALOG.arm("sms", 9)] = 1.0
    mask = untried_mask(policy, cell)
    assert mask.shape == (len(CATALOG.channels), N_HOURS)
    assert np.argwhere(~mask).tolist() == [[CATALOG.channels.index("sms"), 9]]


@pytest.mark.parametrize("name", ["hier_ts", "ts"])
def test_the_learned_map_of_a_real_simulation_is_written_with_untried_arms_marked(name, tmp_path: Path):
    result = simulate("seed", [name], n_customers=2000, n_days=4, seeds=[0], out_dir=tmp_path, progress=False)
    heatmap = tmp_path / "heatmap_learned_vs_true.png"
    assert heatmap in result.plots and heatmap.read_bytes()[:4] == b"\x89PNG"
    policy = load_policy(result.runs[0].policy_state)
    cell, region = _busiest_cell(result.world)
    untried = untried_mask(policy, cell) & result.world.hour_allowed[region]
    assert 0 < untried.sum() < result.world.hour_allowed[region].sum(), "some arms of the segment tried, some not"
    again = plot_learned_vs_true(result.world, result.runs[0].policy_state, tmp_path / "again.png", title=name)
    assert again.read_bytes()[:4] == b"\x89PNG"
