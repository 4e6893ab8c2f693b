"""The dashboard's fast side: the segment posterior as JSON, signing in with a cookie, escaping, read-only pages."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from sendwise.models import RandomPolicy
from sendwise.server import Settings
from sendwise.server.dashboard import INTERVAL_DRAWS, SESSION_COOKIE, SESSION_SECONDS, hour_ranges
from tests.support.api import customer, decide, event, feedback
from tests.support.app import API_KEY, DECIDE_KEY, Clock, serve
from tests.support.catalogs import CATALOG
from tests.support.stores import on_every_store

SEGMENT = "/v1/segments/NA/ecommerce/broadcast/posterior"
ANONYMOUS = {"Authorization": ""}
XSS = "<script>alert(1)</script>"


@on_every_store
def test_posterior_json_is_the_served_posterior_with_intervals(client: TestClient, clock: Clock) -> None:
    (decision,) = decide(client, customer())
    feedback(client, event(decision, "clicked", "click-1", at=clock.now))
    response = client.get(SEGMENT)
    assert response.status_code == 200, response.text
    body = response.json()
    policy = client.app.state.service.model.policy
    cell, region = CATALOG.cell("NA", "ecommerce", "broadcast"), CATALOG.region_index("NA")
    alpha, beta = (counts[cell, :, :-1] for counts in policy.posterior())  # open messages included
    expected = policy.value @ (alpha / (alpha + beta)) - policy.cost[region, :-1]
    options = [(ch, h) for ch in CATALOG.channels for h in range(24)]
    assert [(c["channel"], c["hour"]) for c in body["cells"]] == options
    np.testing.assert_allclose([c["net_value"] for c in body["cells"]], expected, rtol=1e-12)
    clicked = body["cells"][options.index((decision["channel"], decision["local_hour"]))]
    # The click counts at once; the message's unsubscribe outcome is still open, a provisional failure.
    assert clicked["net_value"] == pytest.approx(2 / 3 - 2 / 3 - 0.001), "a click must raise its option's mean at once"
    # Beta(1, 1) outcomes elsewhere: net = U1 - 2·U2 - cost, whose 5% and 95% quantiles are known in closed form
    # (density sqrt(0.2)/2 there); the Monte-Carlo quantiles may miss them by 4 standard errors at most.
    untouched = body["cells"][0] if body["cells"][0] != clicked else body["cells"][1]
    low, high = -2 + np.sqrt(0.2) - 0.001, 1 - np.sqrt(0.2) - 0.001
    tol = 4 * np.sqrt(0.05 * 0.95 / INTERVAL_DRAWS) / (np.sqrt(0.2) / 2)
    got = (untouched["ci_low"], untouched["ci_high"])
    assert got == pytest.approx((low, high), abs=tol), f"interval {got} vs exact ({low:.4f}, {high:.4f}) ± {tol:.4f}"
    assert body["credible_level"] == 0.9 and body["best"] is None, "all means are below 0, so no message is best"


@pytest.mark.parametrize("path, loc, msg", [
    pytest.param("/v1/segments/Mars/ecommerce/broadcast/posterior", ["path", "region"],
                 "unknown region 'Mars'; known: NA, EU", id="region"),
    pytest.param("/v1/segments/NA/mining/broadcast/posterior", ["path", "industry"],
                 "unknown industry 'mining'; known: ecommerce, gaming", id="industry"),
    pytest.param("/v1/segments/NA/ecommerce/fax_blast/posterior", ["path", "campaign_type"],
                 "unknown campaign type 'fax_blast'; known: broadcast, cart_reminder", id="campaign-type"),
])
def test_posterior_names_the_unknown_segment_and_the_known_ones(client: TestClient, path: str, loc: list[str],
                                                                 msg: str) -> None:
    response = client.get(path)
    assert response.status_code == 422
    assert response.json() == {"detail": [{"loc": loc, "msg": msg, "type": "value_error"}]}


def test_posterior_needs_an_admin_key(client: TestClient) -> None:
    assert client.get(SEGMENT, headers=ANONYMOUS).status_code == 401
    response = client.get(SEGMENT, headers={"Authorization": f"Bearer {DECIDE_KEY}"})
    assert response.status_code == 403
    assert response.json() == {"detail": "this API key lacks the 'admin' scope"}


@on_every_store
def test_a_policy_without_beta_posterior_gets_404_and_a_page_that_says_so(
        make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path) -> None:
    random_policy = RandomPolicy(CATALOG, np.array([1.0, -2.0]), np.full((2, CATALOG.n_arms), 0.001))
    with serve(make_settings(model_uri=str(random_policy.save(tmp_path / "random.npz"))), clock) as client:
        response = client.get(SEGMENT)
        assert response.status_code == 404
        assert response.json() == {"detail": "the served policy 'random' keeps no Beta posterior to show"}
        page = client.get("/dashboard")
        assert page.status_code == 200 and "keeps no Beta posterior" in page.text


@on_every_store
def test_before_a_model_loads_the_json_is_503_and_the_page_still_renders(
        make_settings: Callable[..., Settings], clock: Clock, tmp_path: Path) -> None:
    with serve(make_settings(model_uri=str(tmp_path / "missing.npz")), clock) as client:
        response = client.get(SEGMENT)
        assert response.status_code == 503 and response.headers["retry-after"]
        page = client.get("/dashboard")
        assert page.status_code == 200
        assert "no model is served yet" in page.text and "not_ready" in page.text


def test_anonymous_visitors_are_sent_to_sign_in_and_headers_work_like_the_api(client: TestClient) -> None:
    response = client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, "/dashboard/login")
    assert client.get("/dashboard/login", headers=ANONYMOUS).status_code == 200
    assert client.get("/dashboard", headers={"Authorization": "Bearer wrong-key-0123456789"}).status_code == 401
    assert client.get("/dashboard", headers={"X-API-Key": DECIDE_KEY, "Authorization": ""}).status_code == 403
    page = client.get("/dashboard", headers={"X-API-Key": API_KEY, "Authorization": ""})
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("key, status, detail", [
    pytest.param("wrong-key-0123456789", 401, "missing or invalid API key", id="wrong-key"),
    pytest.param(DECIDE_KEY, 403, "this API key lacks the 'admin' scope", id="decide-only-key"),
])
def test_sign_in_refuses_keys_that_cannot_see_the_dashboard(client: TestClient, key: str, status: int,
                                                            detail: str) -> None:
    response = client.post("/dashboard/login", json={"api_key": key}, headers=ANONYMOUS)
    assert (response.status_code, response.json()) == (status, {"detail": detail})
    assert "set-cookie" not in response.headers


def test_a_session_cookie_is_http_only_strict_signed_and_expires(client: TestClient, clock: Clock) -> None:
    response = client.post("/dashboard/login", json={"api_key": API_KEY}, headers=ANONYMOUS)
    assert response.status_code == 204
    cookie = response.headers["set-cookie"]
    for attribute in ("HttpOnly", "SameSite=strict", "Path=/dashboard", f"Max-Age={SESSION_SECONDS}"):
        assert attribute in cookie, f"{attribute} missing from {cookie!r}"
    assert client.get("/dashboard", headers=ANONYMOUS).status_code == 200
    value = client.cookies[SESSION_COOKIE]
    forged = value[:-1] + ("0" if value[-1] != "0" else "1")
    for bad in (forged, re.sub(r"\.\d+\.", ".99999999999.", value), "", "a.b.c"):
        client.cookies.set(SESSION_COOKIE, bad, path="/dashboard")
        assert client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 303, bad
    client.cookies.set(SESSION_COOKIE, value, path="/dashboard")
    clock.advance(seconds=SESSION_SECONDS - 1)
    assert client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 200
    clock.advance(seconds=2)
    assert client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 303


@on_every_store
def test_a_copied_cookie_is_refused_after_sign_out_by_every_worker(make_settings: Callable[..., Settings],
                                                                  clock: Clock) -> None:
    settings = make_settings()
    with serve(settings, clock) as first, serve(settings, clock) as second:
        assert first.post("/dashboard/login", json={"api_key": API_KEY}, headers=ANONYMOUS).status_code == 204
        copied = first.cookies[SESSION_COOKIE]
        second.cookies.set(SESSION_COOKIE, copied, path="/dashboard")
        assert second.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 200
        assert first.post("/dashboard/logout", json={}, headers=ANONYMOUS).status_code == 204
        for client in (first, second):  # the signed-out cookie, presented again, on either worker
            client.cookies.set(SESSION_COOKIE, copied, path="/dashboard")
            assert client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 303
        assert first.post("/dashboard/login", json={"api_key": API_KEY}, headers=ANONYMOUS).status_code == 204
        assert first.get("/dashboard", headers=ANONYMOUS).status_code == 200  # a new session is admitted
    with serve(settings, clock) as restarted:
        restarted.cookies.set(SESSION_COOKIE, copied, path="/dashboard")
        assert restarted.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 303


def test_signing_out_without_a_valid_cookie_writes_nothing(client: TestClient) -> None:
    for cookie in ("", "a.b.c", "x." + "9" * 30 + ".y"):
        client.cookies.set(SESSION_COOKIE, cookie, path="/dashboard")
        assert client.post("/dashboard/logout", json={}, headers=ANONYMOUS).status_code == 204
    with sqlite3.connect(client.app.state.settings.state_path) as conn:
        assert conn.execute("SELECT COUNT(*) FROM revoked_sessions").fetchone() == (0,)


def test_signing_out_or_retiring_the_key_ends_the_session(make_settings: Callable[..., Settings],
                                                          clock: Clock) -> None:
    with serve(make_settings(), clock) as client:
        assert client.post("/dashboard/login", json={"api_key": API_KEY}, headers=ANONYMOUS).status_code == 204
        value = client.cookies[SESSION_COOKIE]
        response = client.post("/dashboard/logout", json={}, headers=ANONYMOUS)
        assert response.status_code == 204 and 'sendwise_session=""' in response.headers["set-cookie"]
    with serve(make_settings(api_keys=f"another-admin-key-0123456789,{DECIDE_KEY}:decide"), clock) as client:
        client.cookies.set(SESSION_COOKIE, value, path="/dashboard")
        assert client.get("/dashboard", headers=ANONYMOUS, follow_redirects=False).status_code == 303


def test_strings_from_the_query_are_escaped(client: TestClient) -> None:
    page = client.get("/dashboard", params={"region": XSS, "customer_id": XSS, "timezone": XSS})
    assert page.status_code == 200
    assert XSS not in page.text
    assert "unknown region &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39;" in page.text
    assert 'value="&lt;script&gt;alert(1)&lt;/script&gt;"' in page.text


@on_every_store
def test_an_explanation_logs_and_counts_nothing(client: TestClient) -> None:
    decide(client, customer("c-0"))
    before = _decisions_logged(client), _decision_metrics(client)
    page = client.get("/dashboard", params={"region": "NA", "industry": "ecommerce", "campaign_type": "broadcast",
                                            "customer_id": "c-9", "timezone": "America/New_York",
                                            "channels": ["email", "push"]})
    assert page.status_code == 200
    assert 'id="explanation"' in page.text and "nothing was logged or counted" in page.text
    assert (_decisions_logged(client), _decision_metrics(client)) == before


@on_every_store
def test_activity_counts_the_window_and_open_decisions(client: TestClient, clock: Clock) -> None:
    decisions = decide(client, customer("c-1"), customer("c-2", channels=[]))
    feedback(client, event(decisions[0], "opened", "open-1", at=clock.now))
    store = client.app.state.service.store
    now = clock.now.timestamp()
    activity = store.activity(now, 24)
    # The ε floor may explore, even into no message: count what the responses say was done.
    explored = sum(d["reason"]["mode"] == "exploration" for d in decisions)
    sent = [d["channel"] for d in decisions if d["channel"] != "none"]
    assert (activity.decisions, activity.explored, activity.open_decisions) == (2, explored, len(sent))
    assert {f.type: f.events for f in activity.feedback} == {"opened": 1}
    assert activity.channel_mix().keys() == {decisions[0]["channel"], "none"}
    assert [w.channel for w in activity.closing_soon] == sent
    later = store.activity((clock.now + timedelta(hours=25)).timestamp(), 24)
    assert (later.decisions, later.feedback, later.open_decisions) == (0, [], len(sent))
    assert store.first_served(decisions[0]["model_version"]) == now
    assert store.first_served("never-served") is None


def test_assets_are_served_by_name_only(client: TestClient) -> None:
    css = client.get("/dashboard/assets/dashboard.css", headers=ANONYMOUS)
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    for name in ("dashboard.html", "..%2Fdashboard.py", "missing.js"):
        assert client.get(f"/dashboard/assets/{name}", headers=ANONYMOUS).status_code == 404, name


@pytest.mark.parametrize("hours, text", [
    pytest.param(list(range(24)), "all day", id="all-day"),
    pytest.param([5], "05", id="one"),
    pytest.param([23, 0, 1, 2, 22, 9], "00–02, 09, 22–23", id="runs"),
])
def test_hour_ranges(hours: list[int], text: str) -> None:
    assert hour_ranges(hours) == text


@on_every_store
def test_the_activity_window_is_24_hours_or_7_days(client: TestClient) -> None:
    decide(client, customer())
    assert "−21 h" in client.get("/dashboard").text
    week = client.get("/dashboard", params={"window": "7d"})
    assert week.status_code == 200 and "−7 d" in week.text and "the last 7 days" in week.text
    assert client.get("/dashboard", params={"window": "1y"}).status_code == 422


def _decisions_logged(client: TestClient) -> int:
    store = client.app.state.service.store
    return store.open_decisions() + len(store.closed_decisions()[0])


def _decision_metrics(client: TestClient) -> list[str]:
    return [line for line in client.get("/metrics").text.splitlines() if line.startswith("sendwise_decisions_total")]
