"""The learning loop: open messages weighed by arrival, delays learned, the same inputs give the same arrays."""

from __future__ import annotations

import dataclasses
import itertools
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models import POLICIES, DelayModel, Learner, Resolved, Sends, load_world
from sendwise.models.policies.base import OpenMessagesPolicy
from sendwise.models.policies.factory import make_world_policy
from sendwise.models.policies.learner import MAX_DELAY_HOURS
from sendwise.models.sim.simulate import run_loop
from tests.models.test_policies import CATALOG, make_batch, make_policy
from tests.support.learning import sent_and_resolved

COUNTING = sorted(n for n, cls in POLICIES.items() if issubclass(cls, OpenMessagesPolicy))


@pytest.mark.parametrize("name", COUNTING)
def test_every_sent_message_stays_open_until_its_outcomes_resolve(name):
    learner = Learner(make_policy(name), open_weight="full")
    keys = itertools.count()
    to_resolve = [sent_and_resolved(learner, make_batch(300 + r), r, keys) for r in range(3)]
    n_sent = sum(r.n_rows for r in to_resolve) // len(CATALOG.outcomes)
    learner.posterior()
    assert learner.policy.pending_.sum() == len(CATALOG.outcomes) * n_sent > 0
    for resolved in reversed(to_resolve):  # in any order
        learner.resolve(resolved)
    learner.posterior()
    assert not learner.policy.pending_.any()
    assert learner.open_messages.n_open == 0


@pytest.mark.parametrize("name", ["ts", "hier_ts"])
def test_under_the_full_rule_an_open_message_is_a_failure_until_it_resolves_as_what_it_was(name):
    batch = make_batch(7)
    opened, failed, resolved = (Learner(make_policy(name), open_weight="full") for _ in range(3))
    outcomes = sent_and_resolved(opened, batch, 0, itertools.count())
    failed.resolve(dataclasses.replace(outcomes, successes=np.zeros(outcomes.n_rows),
                                       failures=np.ones(outcomes.n_rows), arrived=np.zeros(outcomes.n_rows, bool)))
    np.testing.assert_allclose(opened.posterior(), failed.posterior())
    opened.resolve(outcomes)
    resolved.resolve(outcomes)
    np.testing.assert_allclose(opened.posterior(), resolved.posterior())


def test_an_open_message_counts_by_the_share_of_responses_that_would_have_arrived():
    learner = Learner(make_policy("ts"), open_weight="arrival")
    arm, cell = CATALOG.arm("email", 9), 0
    # 100 observed clicks on email, all arriving between 20 and 21 hours after the send.
    learner.delays.observe(np.zeros(100, np.int64), np.zeros(100, np.int64), np.full(100, 20.5))
    learner.advance(0.0)
    learner.sent(Sends(key=np.array([7]), cell_idx=np.array([cell]), arm=np.array([arm]), sent_at=np.array([0.0])))
    shares = []
    for hour in (1.0, 20.5, 30.0, 200.0):
        learner.advance(hour)
        learner.posterior()
        shares.append(learner.policy.pending_[cell, 0, arm])
    prior_part = learner.delays.prior_weight / (learner.delays.prior_weight + 100)
    assert shares[0] == pytest.approx(prior_part * 1 / 25)  # an hour old: almost nothing of a failure yet
    assert shares[1] == pytest.approx(prior_part * 20.5 / 44.5 + 0.5 * (1 - prior_part))
    assert shares[2] == pytest.approx(prior_part * 30 / 54 + (1 - prior_part))
    assert 0 < shares[0] < shares[1] < shares[2] < shares[3] < 1
    learner.resolve(Resolved(key=np.array([7]), cell_idx=np.array([cell]), arm=np.array([arm]),
                             outcome_idx=np.array([0]), successes=np.ones(1), failures=np.zeros(1),
                             sent_at=np.zeros(1), resolved_at=np.array([200.0]), arrived=np.ones(1, bool)))
    learner.posterior()
    assert learner.policy.pending_[cell, 0, arm] == 0.0  # resolved: counted once, as what it was
    assert learner.policy.pending_[cell, 1, arm] > 0.0  # its unsubscribe outcome is still open
    assert learner.delays.counts[0, 0].sum() == 101  # the arrival taught the delay model


@settings(max_examples=40, deadline=None)
@given(delays=st.lists(st.floats(-5.0, 2.0 * MAX_DELAY_HOURS), min_size=1, max_size=40),
       ages=st.lists(st.floats(-10.0, 2.0 * MAX_DELAY_HOURS), min_size=2, max_size=10),
       prior_weight=st.floats(0.0, 5.0))
def test_the_arrived_share_is_a_distribution_function(delays, ages, prior_weight):
    model = DelayModel(2, 2, prior_weight=prior_weight)
    model.observe(np.ones(len(delays), np.int64), np.zeros(len(delays), np.int64), np.array(delays))
    ages = np.sort(np.array(ages))
    share = model.arrived_share(np.ones(ages.size, np.int64), np.zeros(ages.size, np.int64), ages)
    assert np.all((share >= 0) & (share <= 1))
    assert np.all(np.diff(share) >= -1e-12)  # never decreases with age
    assert np.all(share[ages <= 0] == 0)
    observed = np.array(delays)
    above_all = ages >= MAX_DELAY_HOURS
    if prior_weight == 0:
        assert np.allclose(share[above_all], 1.0)
        inside = (ages > 0) & (ages < MAX_DELAY_HOURS)
        empirical = np.array([(np.floor(np.clip(observed, 0, None)) + 1 <= a).mean() for a in ages[inside]])
        assert np.all(share[inside] >= empirical - 1e-12)  # whole hours below the age all count


def drive(learner: Learner, days: int, seed: int) -> None:
    """A fixed schedule of sends, arrivals, window closes and ticks (the same for every learner)."""
    rng = np.random.default_rng(seed)
    keys = itertools.count()
    held: list[Resolved] = []
    learner.advance(0.0)
    for day in range(days):
        held.append(sent_and_resolved(learner, make_batch(1000 + day + seed), day, keys, sent_at=24.0 * day + 3,
                                      delay_hours=float(rng.uniform(1, 60))))
        due = [r for r in held if rng.random() < 0.5]
        held = [r for r in held if not any(r is d for d in due)]
        for resolved in due:
            learner.resolve(resolved)
        learner.advance(24.0 * (day + 1))


@pytest.mark.parametrize("open_weight", ["arrival", "full"])
def test_the_same_inputs_give_the_same_arrays_bit_for_bit(open_weight):
    runs = []
    for _ in range(2):
        learner = Learner(make_policy("hier_ts", seed=3), open_weight=open_weight)
        drive(learner, 12, seed=5)
        posterior = learner.posterior()
        runs.append((posterior.alpha.copy(), posterior.beta.copy(), learner.policy.pending_.copy(),
                     learner.policy.personal_expected_.copy(), learner.policy.context_expected_.copy(),
                     learner.recent_sends.sent_at.copy(), learner.delays.counts.copy()))
    for first, second in zip(*runs, strict=True):
        assert first.tobytes() == second.tobytes()


def test_compaction_keeps_the_open_messages_and_their_order():
    learner = Learner(make_policy("ts"), open_weight="full")
    keys = itertools.count()
    resolved = [sent_and_resolved(learner, make_batch(r, n_rows=200), r, keys) for r in range(12)]
    for r in resolved[:-2]:
        learner.resolve(r)  # most rows are resolved: the table compacts
    table = learner.open_messages
    assert len(table.sent_at) < sum(r.n_rows for r in resolved) // 2
    learner.posterior()
    open_now = learner.policy.pending_.sum()
    assert open_now == table.n_open == sum(r.n_rows for r in resolved[-2:])
    for r in resolved[-2:]:
        learner.resolve(r)
    learner.posterior()
    assert learner.policy.pending_.sum() == 0


def test_the_clock_passes_days_to_the_policy_and_never_goes_back():
    learner = Learner(make_policy("hier_ts", discount=0.5))
    learner.policy.successes_[...] = 1.0
    learner.advance(10.0)
    learner.advance(58.0)  # two days
    assert learner.policy.successes_.max() == pytest.approx(0.25)
    learner.advance(30.0)  # earlier than the clock: nothing happens
    assert learner.clock == 58.0 and learner.policy.successes_.max() == pytest.approx(0.25)


def test_in_the_simulator_the_open_messages_are_the_feedback_still_due():
    world = load_world("seed")
    learner = Learner(make_world_policy("hier_ts", world, seed=0), open_weight="full")
    run = run_loop(world, learner, n_customers=500, n_days=6, seed=2, name="hier_ts")
    assert learner.clock == 6 * 24
    assert run.totals["feedback_open"] > 0
    learner.posterior()
    assert learner.policy.pending_.sum() == learner.open_messages.n_open == run.totals["feedback_open"]


def test_bad_loop_inputs_are_refused_clearly():
    learner = Learner(make_policy("ts"))
    one = np.array([0])
    with pytest.raises(ValueError, match=re.escape("the no-message arm sends nothing")):
        learner.sent(Sends(key=one, cell_idx=one, arm=np.array([CATALOG.null_arm]), sent_at=np.zeros(1)))
    with pytest.raises(ValueError, match=re.escape("`arm` must have 1 rows like `key`; got 2")):
        Sends(key=one, cell_idx=one, arm=np.array([0, 1]), sent_at=np.zeros(1))
    learner.sent(Sends(key=one, cell_idx=one, arm=one, sent_at=np.zeros(1)))
    with pytest.raises(ValueError, match=re.escape("message 0 was already reported as sent")):
        learner.sent(Sends(key=one, cell_idx=one, arm=one, sent_at=np.zeros(1)))
    with pytest.raises(ValueError, match=re.escape("`open_weight` must be 'arrival' or 'full'; got 'half'")):
        Learner(make_policy("ts"), open_weight="half")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.booleans(), st.integers(0, 29), st.integers(0, len(CATALOG.outcomes) - 1)),
                max_size=80))
def test_the_running_open_counts_equal_a_sum_over_the_open_table(steps):
    """Sends (True) and closes (False, of any key, sent or not, again or not) in any order."""
    learner = Learner(make_policy("ts"), open_weight="full")
    table, sent = learner.open_messages, set()
    for is_send, key, outcome in steps:
        if is_send and key not in sent:
            sent.add(key)
            learner.sent(Sends(key=np.array([key]), cell_idx=np.array([key % CATALOG.n_cells]),
                               arm=np.array([key % CATALOG.null_arm]), sent_at=np.array([0.0])))
        elif not is_send:
            table.close(np.array([key, key]), np.array([outcome, outcome]))  # a pair twice: it closes once
        recount, outcomes = np.zeros_like(table.by_cell), np.arange(table.n_outcomes)
        np.add.at(recount, (np.repeat(table.cell, table.n_outcomes), np.tile(outcomes, table.cell.size),
                            np.repeat(table.arm, table.n_outcomes)), table.open.ravel().astype(np.float64))
        assert np.array_equal(table.by_cell, recount)
    learner.posterior()
    assert np.array_equal(learner.policy.pending_, table.by_cell)
