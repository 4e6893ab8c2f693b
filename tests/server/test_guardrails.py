"""Guardrails are never violated: unsubscribes (also after a restart), quiet hours, send windows, caps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import Clock, customer, decide, event, feedback, serve

from sendwise.server import Settings
from sendwise.server.deps import get_now
from sendwise.server.schemas import DecisionRequest
from sendwise.server.timing import next_send_at

ZONES = ("America/New_York", "Europe/London", "Australia/Lord_Howe", "Asia/Kolkata", "Asia/Kathmandu",
         "Pacific/Chatham", "America/Sao_Paulo", "UTC")
CHANNELS = ("email", "push", "sms", "whatsapp")


def _unsubscribe_from_email(client: TestClient, clock: Clock) -> None:
    decisions = [decide(client, customer("c-unsub", channels=["email"]))[0] for _ in range(20)]
    sent = next(d for d in decisions if d["channel"] == "email")
    clock.now = datetime.fromisoformat(sent["send_at"]) + timedelta(minutes=5)
    assert feedback(client, event(sent, "unsubscribed", "unsub-1")) == ["applied"]


def _decide_repeatedly(client: TestClient, asked: dict, n: int) -> list[dict]:
    """``n`` decisions for one customer: a few over HTTP, the rest through the service the route calls."""
    over_http = [decide(client, asked)[0] for _ in range(5)]
    request = DecisionRequest.model_validate({"customers": [asked]})
    service, now = client.app.state.service, client.app.dependency_overrides[get_now]()
    direct = [service.decide(request, now).decisions[0].model_dump(mode="json") for _ in range(n - 5)]
    return over_http + direct


def test_an_unsubscribed_channel_is_never_chosen_again_even_after_a_restart(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    settings_ = make_settings()
    asked = customer("c-unsub", channels=["email", "push"])
    with serve(settings_, clock) as client:
        _unsubscribe_from_email(client, clock)
        before = _decide_repeatedly(client, asked, 1000)
    with serve(settings_, clock) as restarted:
        after = _decide_repeatedly(restarted, asked, 1000)
    for decisions in (before, after):
        assert len(decisions) == 1000
        assert sum(d["channel"] == "email" for d in decisions) == 0
        assert sum(d["channel"] == "push" for d in decisions) > 400  # push is still chosen
        assert decisions[0]["reason"]["guardrails"][0] == {"rule": "unsubscribed", "channel": "email",
                                                           "hours": list(range(24))}


def test_consent_restores_a_channel_and_the_later_of_the_two_wins(client: TestClient, clock: Clock) -> None:
    _unsubscribe_from_email(client, clock)
    (decision,) = decide(client, customer("c-unsub", channels=["email"]))
    assert decision["channel"] == "none"
    stale = event(decision, "consent", "consent-old", clock.now - timedelta(days=1), channel="email")
    assert feedback(client, stale) == ["applied"]
    assert decide(client, customer("c-unsub", channels=["email"]))[0]["channel"] == "none"
    fresh = event(decision, "consent", "consent-new", clock.now, channel="email")
    assert feedback(client, fresh) == ["applied"]
    chosen = [decide(client, customer("c-unsub", channels=["email"]))[0]["channel"] for _ in range(20)]
    assert "email" in chosen


def test_world_quiet_hours_and_caps_apply(make_settings: Callable[..., Settings], clock: Clock) -> None:
    """The seed world: NA SMS only 08–21 local; at most 2 SMS and 5 messages per customer per week."""
    with serve(make_settings(world="seed"), clock) as client:
        decisions = [decide(client, customer("c-sms", channels=["sms"]))[0] for _ in range(10)]
    sent = [d for d in decisions if d["channel"] == "sms"]
    assert len(sent) == 2
    assert all(8 <= d["local_hour"] < 21 for d in sent)
    assert {"rule": "quiet_hours", "channel": "sms", "hours": [*range(8), 21, 22, 23]} in \
        decisions[0]["reason"]["guardrails"]


def _assert_within_caps(sends: list[tuple[str, datetime]], caps: dict[str, int], total_cap: int,
                        window: timedelta) -> None:
    """No half-open window of length ``window`` holds more sends than a cap allows."""
    for start in (t for _, t in sends):
        inside = [channel for channel, t in sends if start <= t < start + window]
        assert len(inside) <= total_cap, (start, sends)
        for channel, cap in caps.items():
            assert inside.count(channel) <= cap, (channel, start, sends)


step = st.fixed_dictionaries({
    "who": st.integers(0, 2),
    "timezone": st.sampled_from(ZONES),
    "region": st.sampled_from(("NA", "EU")),
    "channels": st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=4, unique=True),
    "quiet": st.one_of(st.none(), st.tuples(st.sampled_from(CHANNELS), st.integers(0, 23), st.integers(0, 23))
                       .filter(lambda q: q[1] != q[2])),
    "window": st.one_of(st.none(), st.tuples(st.integers(0, 30), st.integers(0, 30))),
    "advance_hours": st.integers(0, 60),
})


def test_quiet_hours_send_windows_and_caps_hold_over_random_requests(make_settings: Callable[..., Settings],
                                                                     clock: Clock) -> None:
    caps, total_cap, window = {"sms": 1, "email": 2}, 3, timedelta(hours=48)
    sends: dict[int, list[tuple[str, datetime]]] = defaultdict(list)
    configured = make_settings(world="seed", channel_caps=caps, total_cap=total_cap, cap_window_hours=48)
    with serve(configured, clock) as client:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(steps=st.lists(step, min_size=1, max_size=6))
        def run(steps: list[dict]) -> None:
            for s in steps:
                clock.advance(hours=s["advance_hours"])
                asked = customer(f"c-{s['who']}", timezone=s["timezone"], region=s["region"], channels=s["channels"])
                if s["quiet"] is not None:
                    asked["quiet_hours"] = {s["quiet"][0]: {"start": s["quiet"][1], "end": s["quiet"][2]}}
                not_before = deadline = None
                if s["window"] is not None:
                    not_before = clock.now + timedelta(hours=s["window"][0])
                    deadline = not_before + timedelta(hours=s["window"][1])
                    asked |= {"not_before": not_before.isoformat(), "deadline": deadline.isoformat()}
                (d,) = decide(client, asked)
                if d["channel"] == "none":
                    continue
                hour, channel = d["local_hour"], d["channel"]
                assert channel in s["channels"]
                if s["quiet"] is not None and s["quiet"][0] == channel:
                    start, end = s["quiet"][1], s["quiet"][2]
                    assert not (start <= hour < end if start < end else hour >= start or hour < end)
                if channel == "sms" and s["region"] == "NA":
                    assert 8 <= hour < 21
                send_at = datetime.fromisoformat(d["send_at"])
                assert send_at == next_send_at(hour, s["timezone"], clock.now, not_before, deadline)
                sends[s["who"]].append((channel, send_at))
                _assert_within_caps(sends[s["who"]], caps, total_cap, window)

        run()
    assert sum(map(len, sends.values())) > 20
