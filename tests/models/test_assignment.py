"""The experiment's groups: a keyed hash of the pseudonym, stable, at the configured shares, salt by salt."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models.experiments import BASELINE, GROUPS, HOLDOUT, MODEL, Assignment

N = 40_000
PSEUDONYMS = [f"customer-{i}" for i in range(N)]
# shares in steps of 1e-4: a share such as 2e-308 is a valid configuration, but no sampling test can check it
SHARES = st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).filter(lambda s: s[0] + s[1] <= 10_000).map(
    lambda s: (s[0] / 10_000, s[1] / 10_000))
SALTS = st.text(min_size=1, max_size=20)
RARE = 1e-6  # a correct hash fails these tests about once in a million runs; a biased one fails at once


@settings(max_examples=15, deadline=None)
@given(shares=SHARES, salt=SALTS)
def test_each_group_holds_its_configured_share_within_sampling_error(shares, salt):
    split = Assignment(salt=salt, holdout_share=shares[0], baseline_share=shares[1])
    groups = split.groups(PSEUDONYMS)
    for name, share in split.shares.items():
        count = int(np.sum(groups == name))
        if share in (0.0, 1.0):
            assert count == share * N, f"{name}: {count} customers for a share of {share}"
        else:
            p = scipy.stats.binomtest(count, N, share).pvalue
            assert p > RARE, f"{name}: {count}/{N} customers for a share of {share:.4f} (p = {p:.2g})"


def test_positions_are_uniform_on_the_unit_interval():
    positions = Assignment(salt="uniform").positions(PSEUDONYMS)
    assert ((positions >= 0.0) & (positions < 1.0)).all()
    assert scipy.stats.kstest(positions, "uniform").pvalue > RARE


@settings(max_examples=50, deadline=None)
@given(pseudonym=st.text(max_size=40), salt=SALTS, shares=SHARES)
def test_a_customer_is_always_in_the_same_group(pseudonym, salt, shares):
    first = Assignment(salt=salt, holdout_share=shares[0], baseline_share=shares[1])
    again = Assignment(salt=salt, holdout_share=shares[0], baseline_share=shares[1])  # another worker, a restart
    assert first.group_of(pseudonym) == again.group_of(pseudonym) == first.groups([pseudonym, "x"])[0]


def test_the_hash_is_fixed_across_versions_and_machines():
    # BLAKE2b-64 of b"customer-7" keyed by b"spring": a change here regroups every running experiment
    split = Assignment(salt="spring", holdout_share=0.1, baseline_share=0.45)
    assert split.positions(["customer-7"])[0] == pytest.approx(0.33685331864233553, abs=1e-15)
    assert split.group_of("customer-7") == BASELINE


def test_two_salts_give_independent_assignments():
    first = Assignment(salt="experiment-a", holdout_share=0.2, baseline_share=0.4).groups(PSEUDONYMS)
    second = Assignment(salt="experiment-b", holdout_share=0.2, baseline_share=0.4).groups(PSEUDONYMS)
    table = np.array([[np.sum((first == a) & (second == b)) for b in GROUPS] for a in GROUPS])
    assert scipy.stats.chi2_contingency(table).pvalue > RARE, table
    assert not (first == second).all()


@settings(max_examples=30, deadline=None)
@given(low=st.floats(0.0, 0.5), extra=st.floats(0.0, 0.5), salt=SALTS)
def test_raising_the_holdout_share_only_moves_customers_into_the_holdout(low, extra, salt):
    before = Assignment(salt=salt, holdout_share=low).groups(PSEUDONYMS[:2000])
    after = Assignment(salt=salt, holdout_share=low + extra).groups(PSEUDONYMS[:2000])
    changed = before != after
    assert (after[changed] == HOLDOUT).all() and (before[changed] == MODEL).all()
    assert (after[before == HOLDOUT] == HOLDOUT).all()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"salt": "s", "holdout_share": 0.6, "baseline_share": 0.5}, "must be <= 1"),
    ({"salt": "s", "holdout_share": -0.1}, "`holdout_share` must be a finite number >= 0"),
    ({"salt": "s", "baseline_share": float("nan")}, "`baseline_share` must be a finite number"),
    ({"salt": ""}, "`salt` must be a non-empty string"),
    ({"salt": "x" * 65}, "at most 64 bytes"),
])
def test_bad_configurations_are_refused_with_the_rule(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Assignment(**kwargs)
