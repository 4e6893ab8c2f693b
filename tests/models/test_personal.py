"""Beyond the segment: recent messages as context, each customer's own affinity, and the world's opens.

Property tests pin the invariants: the recent-message counts equal a brute-force count, a customer's own
evidence moves their factors in its direction and nobody else's, erasing a customer resets them. The
simulator's opens are checked by frequency with a 5-sigma tolerance on fixed seeds.
"""

import itertools

import numpy as np
import numpy.testing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models import Catalog, DecisionBatch, Outcomes, load_world
from sendwise.models.domain import draw_population
from sendwise.models.policies import POLICIES, Learner, Sends, load_policy
from sendwise.models.policies.learner import RecentSends
from sendwise.models.policies.thompson import N_CONTEXTS, context_keys
from sendwise.models.sim.simulate import _WorldRun, run_loop
from tests.support.learning import sent_and_resolved

CATALOG = Catalog(channels=("email", "push", "sms"), regions=("NA", "EU"), industries=("retail", "gaming"),
                  campaign_types=("broadcast", "cart"))
VALUE = np.array([1.0, -2.0])
COST = np.tile(np.append(np.repeat([0.001, 0.0002, 0.03], 24), 0.0), (2, 1))
PROPERTY = settings(max_examples=60, deadline=None)
SIGMAS = 5.0


def hier_ts(**params) -> object:
    return POLICIES["hier_ts"](CATALOG, VALUE, COST, random_state=0, **params)


@PROPERTY
@given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 2), st.floats(0.0, 400.0)), max_size=40),
       st.floats(0.0, 500.0), st.floats(1.0, 300.0))
def test_recent_counts_equal_a_count_over_every_message(sends, until, window):
    recent = RecentSends(n_channels=3, depth=64)
    for customer, channel, at in sends:
        recent.record(np.array([customer]), np.array([channel]), np.array([at]))
    counts = recent.counts(np.arange(5), until, window)
    expected = np.zeros((5, 3), np.int64)
    for customer, channel, at in sends:
        expected[customer, channel] += until - window <= at < until
    npt.assert_array_equal(counts, expected)


def test_recent_messages_of_one_batch_keep_their_order_and_forget_resets_them():
    recent = RecentSends(n_channels=2, depth=2)
    recent.record(np.array([1, 1, 1, 0]), np.array([0, 1, 1, 0]), np.array([1.0, 2.0, 3.0, 4.0]))
    npt.assert_array_equal(recent.counts(np.array([0, 1]), 10.0, 100.0), [[1, 0], [0, 2]])  # depth 2: the last two
    recent.forget(np.array([1]))
    npt.assert_array_equal(recent.counts(np.array([0, 1, 7]), 10.0, 100.0), [[1, 0], [0, 0], [0, 0]])


def test_context_keys_name_a_channels_own_messages_and_the_channels_touched():
    keys = context_keys(np.array([[0, 0, 0], [2, 0, 0], [1, 1, 0], [5, 1, 1]]))
    npt.assert_array_equal(keys, [[0, 0, 0], [6, 1, 1], [4, 4, 2], [11, 5, 5]])
    assert keys.max() < N_CONTEXTS


@st.composite
def histories(draw: st.DrawFn) -> tuple[Sends, Outcomes, int, int, bool]:
    """Messages to customers 0-4 on random arms and some of their clicks, then one customer, channel and
    whether the next piece of evidence is a click (True) or a message sent (False)."""
    n = draw(st.integers(0, 30))
    arm = np.array(draw(st.lists(st.integers(0, CATALOG.null_arm - 1), min_size=n, max_size=n)), np.int64)
    customer = np.array(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)), np.int64)
    clicked = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), np.float64)
    sends = Sends(key=np.arange(n), cell_idx=np.zeros(n, np.int64), arm=arm, sent_at=np.zeros(n), customer_idx=customer)
    outcomes = Outcomes(cell_idx=np.zeros(n, np.int64), arm=arm, outcome_idx=np.zeros(n, np.int64),
                        successes=clicked, failures=1.0 - clicked, customer_idx=customer)
    return sends, outcomes, draw(st.integers(0, 4)), draw(st.integers(0, 2)), draw(st.booleans())


@PROPERTY
@given(histories())
def test_a_customers_own_evidence_moves_their_factor_its_way_and_nobody_elses(case):
    history, outcomes, customer, channel, click = case
    policy = hier_ts(context=False)
    policy.sent(history)
    policy.update(outcomes)
    everyone = np.arange(6)
    before = policy.personal_factors(everyone)
    one = np.array([customer])
    arm = np.array([channel * 24 + 9])
    if click:  # a click arrives: observed, on top of what was expected
        policy.update(Outcomes(cell_idx=np.array([1]), arm=arm, outcome_idx=np.array([0]), successes=np.ones(1),
                               failures=np.zeros(1), customer_idx=one))
    else:  # a message goes out: expected, and nothing observed yet
        policy.sent(Sends(key=np.array([99]), cell_idx=np.array([1]), arm=arm, sent_at=np.zeros(1), customer_idx=one))
    after = policy.personal_factors(everyone)
    others = everyone != customer
    npt.assert_array_equal(after[others], before[others])  # bit for bit
    npt.assert_array_equal(np.delete(after[customer], channel, axis=1), np.delete(before[customer], channel, axis=1))
    moved = after[customer, 0, channel] - before[customer, 0, channel]
    assert moved > 0 if click else moved < 0


def test_a_customer_without_evidence_decides_as_the_segment():
    policy = hier_ts(context=False)
    batch = DecisionBatch(cell_idx=np.zeros(3, np.int64), cost_row_idx=np.zeros(3, np.int64),
                          mask=np.ones((3, CATALOG.n_arms), np.bool_), customer_idx=np.array([0, 1, 2]))
    npt.assert_array_equal(policy.channel_factors(batch), 1.0)
    assert hier_ts(context=False, personal=False).channel_factors(batch) is None


def test_an_email_person_gets_more_email_and_the_others_do_not_move():
    """Customer 0 clicks every email; customer 1 has no history. Same seed, same bank of draws."""
    policy = hier_ts(context=False)
    n = 40
    policy.update(Outcomes(cell_idx=np.zeros(n, np.int64), arm=np.full(n, 9), outcome_idx=np.zeros(n, np.int64),
                           successes=np.ones(n), failures=np.zeros(n), customer_idx=np.zeros(n, np.int64)))
    batch = DecisionBatch(cell_idx=np.zeros(2, np.int64), cost_row_idx=np.zeros(2, np.int64),
                          mask=np.ones((2, CATALOG.n_arms), np.bool_), customer_idx=np.array([0, 1]))
    probs = policy.reseed(3).propensities(batch, bank_draws=400)
    email = np.asarray(CATALOG.arm_channels()) == 0
    assert probs[0, email].sum() > probs[1, email].sum() + 0.2
    policy.forget(np.array([0]))  # erased: decides as the segment again
    again = policy.reseed(3).propensities(batch, bank_draws=400)
    npt.assert_array_equal(again[0], again[1])


def test_context_learns_fatigue_from_the_loop():
    """Every message on a channel the customer got a message on this week fails; fresh ones succeed."""
    learner = Learner(hier_ts(personal=False, context_prior=1.0))
    keys = itertools.count()
    for day in range(6):
        customers = np.arange(50)
        batch = DecisionBatch(cell_idx=np.zeros(50, np.int64), cost_row_idx=np.zeros(50, np.int64),
                              mask=np.zeros((50, CATALOG.n_arms), np.bool_), customer_idx=customers)
        batch.mask[:, 9] = True  # email at 9 only
        recent = learner.recent_sends.counts(customers, 24.0 * day)[:, 0]
        rates = np.zeros((50, 2, CATALOG.n_arms))
        rates[:, 0, 9] = np.where(recent > 0, 0.0, 1.0)
        learner.advance(24.0 * day)
        resolved = sent_and_resolved(learner, DecisionBatch(**{**batch.__dict__, "true_rates": rates}), day, keys,
                                     sent_at=24.0 * day)
        learner.resolve(resolved)
    factors = learner.policy.context_factors()[0, 0]  # clicks on email by context
    assert factors[context_keys(np.array([[0, 0, 0]]))[0, 0]] > 1.0 > factors[context_keys(np.array([[1, 0, 0]]))[0, 0]]


def test_personal_state_survives_save_and_load(tmp_path):
    policy = hier_ts()
    n = 12
    policy.update(Outcomes(cell_idx=np.zeros(n, np.int64), arm=np.arange(n) * 5, outcome_idx=np.zeros(n, np.int64),
                           successes=np.ones(n), failures=np.zeros(n), customer_idx=np.arange(n) % 4,
                           recent_sends=np.tile([[1, 0, 2]], (n, 1))))
    loaded = load_policy(policy.save(tmp_path / "p.npz"))
    for name in ("personal_observed_", "personal_expected_", "context_observed_", "context_expected_"):
        npt.assert_array_equal(getattr(loaded, name), getattr(policy, name))
    npt.assert_array_equal(loaded.personal_factors(np.arange(4)), policy.personal_factors(np.arange(4)))


def test_the_seed_worlds_opens_nest_the_clicks_at_the_rates_it_states():
    world = load_world("seed")
    population = draw_population(world, 10, seed=0)
    run = _WorldRun(world, population, n_days=1, seed=0)
    n = 200_000
    email_9 = world.catalog.arm("email", 9)
    rates = np.zeros((n, 3, world.catalog.n_arms))
    rates[:, 0, email_9], rates[:, 2, email_9] = 0.03, 0.2
    batch = DecisionBatch(cell_idx=np.zeros(n, np.int64), cost_row_idx=np.zeros(n, np.int64),
                          mask=np.ones((n, world.catalog.n_arms), np.bool_), customer_idx=np.zeros(n, np.int64),
                          true_rates=rates)
    clicked = np.random.default_rng(1).random(n) < 0.03
    opened = run._opens(0, batch, np.full(n, email_9), clicked, np.ones(n))
    assert np.all(opened[clicked])  # every click is an open
    share, sd = opened.mean(), np.sqrt(0.2 * 0.8 / n)
    assert abs(share - 0.2) < SIGMAS * sd


def test_a_simulated_world_reports_opens_more_often_than_clicks_and_they_reach_the_loop():
    world = load_world("seed")
    learner = Learner(POLICIES["hier_ts"](world.catalog, world.value, world.cost, random_state=0))
    run = run_loop(world, learner, n_customers=2000, n_days=10, seed=3, name="hier_ts")
    assert run.totals["opens"] > 1.5 * run.totals["clicks"] > 0  # email and WhatsApp opens outnumber clicks
    policy = learner.policy
    open_idx = world.catalog.outcomes.index("open")
    assert policy.successes_[:, open_idx].sum() > policy.successes_[:, 0].sum()
    assert policy.personal_observed_[:, open_idx].sum() > 0


@pytest.mark.parametrize("switch", ["context", "personal"])
def test_switches_are_saved_with_the_policy(switch, tmp_path):
    policy = hier_ts(**{switch: False})
    assert load_policy(policy.save(tmp_path / "p.npz")).get_params()[switch] is False


class Recording(Learner):
    """A learner that also keeps every resolved row it is handed."""

    def __init__(self, policy) -> None:
        super().__init__(policy)
        self.rows: list = []

    def resolve(self, resolved) -> None:
        self.rows.append(resolved)
        super().resolve(resolved)


def test_an_open_arrives_after_its_send_and_no_later_than_its_click():
    world = load_world("seed")
    learner = Recording(POLICIES["hier_ts"](world.catalog, world.value, world.cost, random_state=0))
    run_loop(world, learner, n_customers=3000, n_days=12, seed=4, name="hier_ts")
    key, outcome, arrived = (np.concatenate([getattr(r, f) for r in learner.rows])
                             for f in ("key", "outcome_idx", "arrived"))
    delay = np.concatenate([r.resolved_at - r.sent_at for r in learner.rows])
    assert np.all(delay[arrived] >= 0)
    open_idx = world.catalog.outcomes.index("open")
    is_open, is_click = arrived & (outcome == open_idx), arrived & (outcome == 0)
    opened = dict(zip(key[is_open].tolist(), delay[is_open].tolist(), strict=True))
    clicked = dict(zip(key[is_click].tolist(), delay[is_click].tolist(), strict=True))
    both = set(opened) & set(clicked)
    assert both and all(opened[k] <= clicked[k] for k in both)
    assert set(clicked) <= set(opened)  # an attributed click's open came no later, inside the same window
