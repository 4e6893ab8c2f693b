"""Served budgets: spend counted from committed decisions, refunded on a failed delivery, the same on every
worker and after a restart, and said in each decision's reason."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from sendwise.models.policies.pacing import HOURS_PER_MONTH
from sendwise.server import Settings
from sendwise.server.guardrails import ServingRules
from tests.support.api import customer, decide, event, feedback
from tests.support.app import Clock, serve
from tests.support.catalogs import seed_world
from tests.support.stores import on_every_store

COST = 0.001  # every message of the tests' policy
BUDGET = 0.02  # USD of SMS per 30-day month: twenty messages
BATCH = 4
SMS_ONLY = {"channels": ["sms", "email"]}


def budget_settings(make_settings: Callable[..., Settings], budget: float = BUDGET) -> Settings:
    return make_settings(budgets={"sms": {"per_month": budget}}, decision_seed=7)


def sms_status(client: TestClient) -> tuple[float, float, bool]:
    """(spent, multiplier, exhausted) of SMS, as this worker's model counts it after reading every input."""
    service = client.app.state.service
    service.model.catch_up(service.store, fresh=True)
    (status,) = service.model.budget_status()
    assert status.channel == "sms"
    return status.spent, status.multiplier, status.exhausted


def month_start(clock: Clock) -> Clock:
    """A clock at the start of the pacer's next 30-day month (months count from the Unix epoch)."""
    month = HOURS_PER_MONTH * 3600
    return Clock(datetime.fromtimestamp(math.ceil(clock.now.timestamp() / month) * month, UTC))


def sms_spend(decisions: list[dict]) -> float:
    return COST * sum(d["channel"] == "sms" for d in decisions)


@on_every_store
def test_the_budget_holds_on_every_worker_and_after_a_restart(make_settings: Callable[..., Settings],
                                                              clock: Clock) -> None:
    settings, clock = budget_settings(make_settings), month_start(clock)
    made: list[dict] = []
    with serve(settings, clock) as one, serve(settings, clock) as two:
        for day in range(12):  # a demand of SMS far above the budget's pace, from two workers in turn
            for hour, worker in enumerate((one, two, one, two)):
                people = [customer(f"d{day}-h{hour}-{i}", **SMS_ONLY) for i in range(BATCH)]
                made += decide(worker, *people)
            clock.advance(days=1)
            one.app.state.service.close_windows(clock.now)
        spent = sms_spend(made)
        assert sms_status(one) == sms_status(two)
        assert sms_status(one)[0] == pytest.approx(spent)
        # Each batch is priced to expect at most the even pace of the next day: twelve days of demand far
        # above the pace spend about twelve days of it (a batch's draws may exceed what it expected).
        assert 0 < spent <= BUDGET * 13 / 30 + BATCH * COST
        assert any(d["reason"]["cost_multipliers"].get("sms", 1.0) > 1.0 for d in made)
        before = sms_status(one)
    with serve(settings, clock) as restarted:
        assert sms_status(restarted) == before


def test_a_spent_budget_removes_its_channel_until_the_month_ends(make_settings: Callable[..., Settings],
                                                                  clock: Clock) -> None:
    clock = month_start(clock)
    clock.advance(days=29, hours=12)  # the even-pace line is at the whole budget within a day
    with serve(budget_settings(make_settings, budget=2.5 * COST), clock) as client:
        made = [decide(client, customer(f"c-{i}", channels=["sms"]))[0] for i in range(12)]
        sms = [d for d in made if d["channel"] == "sms"]
        assert len(sms) == 3  # the third passes the budget: spend is counted once a decision is committed
        assert sms_status(client) == (pytest.approx(3 * COST), pytest.approx(1.0), True)
        after = made[made.index(sms[-1]) + 1:]
        assert after and all(d["channel"] == "none" for d in after)
        assert all({"rule": "budget", "channel": "sms", "hours": list(range(24))} in d["reason"]["guardrails"]
                   for d in after)
        clock.advance(days=1)  # a new month: SMS may be sent again, priced to the new month's first day of pace
        client.app.state.service.close_windows(clock.now)
        assert sms_status(client)[::2] == (0.0, False)
        reason = decide(client, customer("next-month", channels=["sms"]))[0]["reason"]
        assert all(g["rule"] != "budget" for g in reason["guardrails"]) and reason["cost_multipliers"]["sms"] > 1


def test_a_failed_delivery_refunds_its_spend_and_a_later_delivery_charges_it_again(
        make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(budget_settings(make_settings, budget=1.0), clock) as client:
        made = decide(client, *(customer(f"c-{i}", channels=["sms"]) for i in range(3)))
        sms = [d for d in made if d["channel"] == "sms"]
        assert sms, "an SMS-only request within budget sends SMS"
        spent = sms_status(client)[0]
        assert spent == pytest.approx(COST * len(sms))
        clock.advance(minutes=5)
        assert feedback(client, event(sms[0], "failed", "e-1", at=clock.now)) == ["applied"]
        assert sms_status(client)[0] == pytest.approx(spent - COST)
        assert feedback(client, event(sms[0], "failed", "e-2", at=clock.now)) == ["applied"]  # refunded once only
        assert sms_status(client)[0] == pytest.approx(spent - COST)
        assert feedback(client, event(sms[0], "delivered", "e-3", at=clock.now)) == ["applied"]
        assert sms_status(client)[0] == pytest.approx(spent)


def test_without_budgets_reasons_name_no_pricing(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(), clock) as client:
        (made,) = decide(client, customer("c-1"))
        assert made["reason"]["cost_multipliers"] == {}
        assert client.app.state.service.model.budget_status() == []


@pytest.mark.parametrize(("budgets", "message"), [({"sms": {"per_week": 5}}, "per_month"),
                                                    ({"fax": {"per_month": 5}}, "unknown channel 'fax'")])
def test_a_wrong_budget_setting_stops_the_start_with_its_reason(make_settings: Callable[..., Settings],
                                                                budgets: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ServingRules.from_world(make_settings(world="seed", budgets=budgets), seed_world())


def test_the_dashboard_shows_spend_against_pace(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(budget_settings(make_settings, budget=1.0), clock) as client:
        made = decide(client, *(customer(f"c-{i}", channels=["sms"]) for i in range(3)))
        page = client.get("/dashboard")
        assert page.status_code == 200
        spent = f"{sms_spend(made):.2f}"
        section = page.text[page.text.index('id="budgets"'):page.text.index('id="model"')]
        assert "<td>sms</td>" in section and f'<td class="num">{spent}</td>' in section
        assert '<td class="num">1.00</td>' in section  # the budget
    with serve(make_settings(), clock) as unbudgeted:
        assert 'id="budgets"' not in unbudgeted.get("/dashboard").text
