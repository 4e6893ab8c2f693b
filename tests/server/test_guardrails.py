"""Guardrails are never violated: unsubscribes (also after a restart), quiet hours, send windows, caps."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sendwise.models import next_send_at
from sendwise.server import Settings
from sendwise.server.deps import get_now
from sendwise.server.guardrails import ServingRules, batch_options
from sendwise.server.schemas import DecisionRequest
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.catalogs import CATALOG
from tests.support.stores import on_every_store

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


@on_every_store
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


@on_every_store
def test_consent_restores_a_channel_and_the_later_of_the_two_wins(client: TestClient, clock: Clock) -> None:
    _unsubscribe_from_email(client, clock)
    (decision,) = decide(client, customer("c-unsub", channels=["email"]))
    assert decision["channel"] == "none"
    stale = event(decision, "consent", "consent-old", clock.now - timedelta(days=1), channel="email")
    assert feedback(client, stale) == ["applied"]
    assert decide(client, customer("c-unsub", channels=["email"]))[0]["channel"] == "none"
    fresh = event(decision, "consent", "consent-new", clock.advance(minutes=1), channel="email")  # 6 min later
    assert feedback(client, fresh) == ["applied"]
    chosen = [decide(client, customer("c-unsub", channels=["email"]))[0]["channel"] for _ in range(20)]
    assert "email" in chosen


@on_every_store
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


@on_every_store
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


def test_a_batch_gets_each_customer_the_guardrails_it_gets_alone(client: TestClient, clock: Clock) -> None:
    """Customers decided together (profiles repeated, mixed) are guarded exactly as when asked one by one."""
    _unsubscribe_from_email(client, clock)
    window = {"not_before": (clock.now + timedelta(hours=3)).isoformat(),
              "deadline": (clock.now + timedelta(hours=9)).isoformat()}
    profiles = [customer("c-unsub", channels=["push", "email", "push"]),
                customer("c-subscribed", channels=["push", "email", "push"]),
                customer("c-quiet", timezone="Asia/Kathmandu", quiet_hours={"sms": {"start": 21, "end": 8}}),
                customer("c-loud", timezone="Asia/Kathmandu"),
                customer("c-window", region="EU", timezone="Europe/London", **window),
                customer("c-nothing", channels=[]),
                customer("c-howe", timezone="Australia/Lord_Howe", channels=["sms"], **window)]
    asked = profiles + [{**p, "customer_id": f"{p['customer_id']}-{k}"} for k in (2, 3) for p in profiles[1:]]
    service, now = client.app.state.service, clock.now

    def reasons(*customers: dict) -> list[dict]:
        response = service.decide(DecisionRequest.model_validate({"customers": list(customers)}), now, dry_run=True)
        return [d.reason.model_dump()["guardrails"] for d in response.decisions]

    alone = [reasons(c)[0] for c in asked]
    assert reasons(*asked) == alone
    assert {"rule": "unsubscribed", "channel": "email", "hours": list(range(24))} in alone[0]
    assert alone[1] == alone[3] == [] and [g["rule"] for g in alone[4]] == ["send_window"]


def test_send_instants_stay_exact_as_the_clock_moves_across_transitions(make_settings: Callable[..., Settings]) -> None:
    """Instants are reused between requests only while they cannot change: every hour of every customer
    matches ``next_send_at`` as ``now`` walks in 20-minute steps across DST changes and send windows."""
    rules = ServingRules.from_world(make_settings(), None)
    start = datetime(2025, 3, 29, 18, 0, tzinfo=UTC)  # Europe/London springs forward 2025-03-30 01:00 UTC
    asked = DecisionRequest.model_validate({"customers": [
        customer(f"c-{zone}-{bounded}", timezone=zone,
                 **({"not_before": (start + timedelta(hours=5)).isoformat(),
                     "deadline": (start + timedelta(hours=14)).isoformat()} if bounded else {}))
        for zone in ("Europe/London", "America/Sao_Paulo", "Australia/Lord_Howe", "Asia/Kathmandu")
        for bounded in (False, True)]}).customers
    for step in range(0, 24 * 3 * 2):
        now = start + timedelta(minutes=20 * step)
        options = batch_options(asked, CATALOG, rules, rules.allowed_hours(CATALOG), [()] * len(asked),
                                [()] * len(asked), now)
        for person, send_at in zip(asked, options.send_at, strict=True):
            assert list(send_at) == [next_send_at(h, person.timezone, now, person.not_before, person.deadline)
                                     for h in range(24)], (person.customer_id, now)
