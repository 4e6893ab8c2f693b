"""B7: local send hours → UTC instants across every DST transition 2020–2035 in ten zones.

The oracle is deliberately naive: walk UTC in quarter hours (every local hour start and every
transition of these zones lies on a UTC quarter hour, which ``transitions`` checks) and take, for each
hour ``h``, the first step at which the wall clock moves forward past ``h:00`` on its first pass
(fold=0). A spring-forward gap that jumps over ``h:00`` crosses it at the transition, which is the
documented shift; the second pass through a fall-back repeat (fold=1) never counts, so an ambiguous
hour is sent once.

That the server and the MLflow pyfunc report these instants is checked in ``tests/server/test_send_times.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sendwise.models.domain.timing import next_send_at, send_instants

ZONES = (
    "America/New_York", "Europe/London", "Europe/Berlin", "Australia/Sydney", "Australia/Lord_Howe",
    "Pacific/Chatham", "Asia/Kolkata", "Asia/Kathmandu", "America/Sao_Paulo", "UTC",
)
FIRST, END = datetime(2020, 1, 1, tzinfo=UTC), datetime(2036, 1, 1, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
HORIZON = timedelta(hours=27)  # every hour recurs within 24 h plus the longest gap


@cache
def transitions(zone_name: str) -> tuple[datetime, ...]:
    """UTC instants in [FIRST, END) at which ``zone_name`` changes its offset, to the second."""
    zone, found = ZoneInfo(zone_name), []
    day = FIRST
    while day < END:
        low, high = day, day + timedelta(days=1)
        if low.astimezone(zone).utcoffset() != high.astimezone(zone).utcoffset():
            while high - low > timedelta(seconds=1):
                middle = low + timedelta(seconds=(high - low).total_seconds() // 2)
                same = middle.astimezone(zone).utcoffset() == low.astimezone(zone).utcoffset()
                low, high = (middle, high) if same else (low, middle)
            assert high.timestamp() % QUARTER.total_seconds() == 0, f"{zone_name} {high} is off the oracle grid"
            found.append(high)
        day += timedelta(days=1)
    return tuple(found)


def oracle(zone: ZoneInfo, now: datetime, not_before: datetime | None = None,
           deadline: datetime | None = None) -> dict[int, datetime]:
    """Per local hour, the first quarter-hour step in the window after ``now`` where the clock first passes it."""
    start = now if not_before is None else max(now, not_before)
    step = datetime.fromtimestamp(start.timestamp() // QUARTER.total_seconds() * QUARTER.total_seconds(), UTC)
    end = start + HORIZON if deadline is None else min(deadline, start + HORIZON)
    previous_wall = (step - QUARTER).astimezone(zone).replace(tzinfo=None)
    found: dict[int, datetime] = {}
    while step <= end and len(found) < 24:
        wall = step.astimezone(zone).replace(tzinfo=None)
        if step > now and (not_before is None or step >= not_before) and wall.fold == 0:
            for hour in range(24):
                if hour not in found and previous_wall < datetime.combine(wall.date(), time(hour)) <= wall:
                    found[hour] = step
        previous_wall, step = wall, step + QUARTER
    return found


def check_instant(zone: ZoneInfo, hour: int, instant: datetime) -> str | None:
    """Why ``instant`` is not a valid send instant for local ``hour`` (None when it is)."""
    wall = instant.astimezone(zone)
    if (wall.hour, wall.minute, wall.second, wall.fold) == (hour, 0, 0, 0):
        return None
    # Otherwise it must be the documented gap shift: ``instant`` is a forward transition and hour:00
    # lies in the skipped wall-clock interval [clock just before it, clock at it).
    just_before = (instant - timedelta(seconds=1)).astimezone(zone)
    gap_start = just_before.replace(tzinfo=None) + timedelta(seconds=1)
    target = datetime.combine(wall.date(), time(hour))
    if wall.utcoffset() > just_before.utcoffset() and gap_start <= target < wall.replace(tzinfo=None):
        return None
    return f"{instant.isoformat()} shows {wall.isoformat()} (fold={wall.fold}), neither {hour}:00 nor its gap shift"


def anchors(zone_name: str) -> tuple[datetime, ...]:
    """Reference instants for a zone: its transitions, or the New York ones for zones without DST."""
    return transitions(zone_name) or transitions("America/New_York")


def test_transition_count_matches_the_plan() -> None:
    counts = {name: len(transitions(name)) for name in ZONES}
    assert sum(counts.values()) == 192, f"expected 192 transitions 2020–2035; zoneinfo gives {counts}"


@pytest.mark.parametrize("zone_name", ZONES)
def test_every_transition_and_hour_matches_the_oracle(zone_name: str) -> None:
    """24 hours around each transition: the earliest valid instant strictly after ``now``."""
    zone, failures, n_cases = ZoneInfo(zone_name), [], 0
    for transition in anchors(zone_name):
        now = transition - timedelta(hours=12)
        expected = oracle(zone, now)
        for hour in range(24):
            n_cases += 1
            got = next_send_at(hour, zone, now)
            problem = check_instant(zone, hour, got) if got is not None else "None"
            if got != expected.get(hour) or problem or not got > now:
                failures.append(f"{hour}:00 after {now.isoformat()}: got {got}, oracle {expected.get(hour)}; {problem}")
    assert n_cases == 24 * len(anchors(zone_name))
    assert not failures, f"{len(failures)} of {n_cases} cases fail; first: {failures[:3]}"


@pytest.mark.parametrize("zone_name", ZONES)
def test_each_hour_is_sent_once_per_local_day(zone_name: str) -> None:
    """A scheduler that always asks again right after the last send sends once per local date, fold=0."""
    zone, failures = ZoneInfo(zone_name), []
    for transition in anchors(zone_name):
        for hour in range(24):
            now, days = transition - timedelta(days=2), []
            while (now := next_send_at(hour, zone, now)) < transition + timedelta(days=2):
                days.append(now.astimezone(zone).date())
            if len(days) != len(set(days)) or len(days) < 3:
                failures.append(f"{hour}:00 around {transition.isoformat()}: local dates {days}")
    assert not failures, f"{len(failures)} hour×transition cases fail; first: {failures[:3]}"


def test_bucket_is_the_local_hour_not_the_utc_offset() -> None:
    """09:00 in New York is one bucket all year although its UTC hour moves with DST."""
    zone = ZoneInfo("America/New_York")
    winter = next_send_at(9, zone, datetime(2024, 1, 15, tzinfo=UTC))
    summer = next_send_at(9, zone, datetime(2024, 7, 15, tzinfo=UTC))
    assert (winter.hour, summer.hour) == (14, 13)
    assert winter.astimezone(zone).hour == summer.astimezone(zone).hour == 9


near_transition = st.builds(
    lambda zone_name, index, seconds: anchors(zone_name)[index % len(anchors(zone_name))] + timedelta(seconds=seconds),
    st.sampled_from(ZONES), st.integers(0, 10_000), st.integers(-2 * 86_400, 2 * 86_400),
)
any_instant = st.datetimes(min_value=datetime(2020, 1, 2), max_value=datetime(2035, 12, 30), timezones=st.just(UTC))


@settings(max_examples=300, deadline=None)
@given(
    zone_name=st.sampled_from(ZONES),
    now=st.one_of(any_instant, near_transition),
    hour=st.integers(0, 23),
    window=st.one_of(st.none(), st.tuples(st.integers(-3600, 30 * 3600), st.integers(0, 30 * 3600))),
)
def test_random_instants_match_the_oracle(zone_name: str, now: datetime, hour: int,
                                          window: tuple[int, int] | None) -> None:
    zone = ZoneInfo(zone_name)
    not_before = deadline = None
    if window is not None:
        not_before = now + timedelta(seconds=window[0])
        deadline = not_before + timedelta(seconds=window[1])
    expected = oracle(zone, now, not_before, deadline)
    got = next_send_at(hour, zone, now, not_before, deadline)
    assert got == expected.get(hour), f"{zone_name} {hour}:00 after {now}: got {got}, oracle {expected.get(hour)}"
    assert next_send_at(hour, zone_name, now.astimezone(zone), not_before, deadline) == got  # any aware `now`
    assert send_instants(zone, now, not_before, deadline) == tuple(expected.get(h) for h in range(24))
    if got is not None:
        assert check_instant(zone, hour, got) is None
        assert got > now and got.tzinfo is UTC


INVALID_CALLS = [
    pytest.param({"local_hour": 24}, "`local_hour` must be an int in [0, 23]; got 24", id="hour-24"),
    pytest.param({"local_hour": 9.0}, "`local_hour` must be an int in [0, 23]; got 9.0", id="float-hour"),
    pytest.param({"now": datetime(2024, 1, 1)}, "`now` must be timezone-aware; got naive 2024-01-01T00:00:00",
                 id="naive-now"),
    pytest.param({"deadline": datetime(2024, 1, 2)},
                 "`deadline` must be timezone-aware; got naive 2024-01-02T00:00:00", id="naive-deadline"),
]


@pytest.mark.parametrize("overrides, message", INVALID_CALLS)
def test_invalid_arguments_are_rejected(overrides: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {"local_hour": 9, "tz": "UTC", "now": datetime(2024, 1, 1, tzinfo=UTC)} | overrides
    with pytest.raises(ValueError, match=re.escape(message)):
        next_send_at(**kwargs)  # type: ignore[arg-type]
