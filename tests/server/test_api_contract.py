"""The HTTP contract: status codes, exact error messages, limits, and never a 500 for a client's mistake."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from sendwise.server import Settings, create_app
from tests.support.api import customer, decide
from tests.support.app import Clock, serve
from tests.support.catalogs import CATALOG

KNOWN_CHANNELS = ", ".join(CATALOG.channels)


def test_decision_has_every_documented_field(client: TestClient) -> None:
    (decision,) = decide(client, customer())
    assert set(decision) == {"decision_id", "customer_id", "channel", "local_hour", "send_at", "propensity",
                             "model_version", "reason"}
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", decision["decision_id"])
    assert decision["channel"] in ("email", "push", "sms", "none")
    assert 0 < decision["propensity"] <= 1
    assert decision["model_version"].startswith("policy.npz@")
    assert decision["reason"]["mode"] in ("exploration", "exploitation")


def test_a_batch_gets_one_decision_per_customer_in_order(client: TestClient, clock: Clock) -> None:
    ids = [f"c-{i}" for i in range(50)]
    decisions = decide(client, *(customer(i) for i in ids))
    assert [d["customer_id"] for d in decisions] == ids
    assert len({d["decision_id"] for d in decisions}) == 50
    made_ms = {uuid.UUID(d["decision_id"]).int >> 80 for d in decisions}  # UUIDv7: the first 48 bits
    assert made_ms == {int(clock.now.timestamp() * 1000)}
    clock.advance(milliseconds=2)
    (later,) = decide(client, customer("c-later"))
    assert later["decision_id"] > max(d["decision_id"] for d in decisions), "ids do not grow with time"


UNKNOWN_NAMES = [
    pytest.param({"channels": ["email", "fax"]}, ["body", "customers", 0, "channels", 1],
                 f"unknown channel 'fax'; known: {KNOWN_CHANNELS}", id="channel"),
    pytest.param({"region": "MARS"}, ["body", "customers", 0, "region"],
                 "unknown region 'MARS'; known: NA, EU", id="region"),
    pytest.param({"industry": "mining"}, ["body", "customers", 0, "industry"],
                 "unknown industry 'mining'; known: ecommerce, gaming", id="industry"),
    pytest.param({"campaign_type": "spam"}, ["body", "customers", 0, "campaign_type"],
                 "unknown campaign type 'spam'; known: broadcast, cart_reminder", id="campaign-type"),
    pytest.param({"timezone": "Mars/Olympus"}, ["body", "customers", 0, "timezone"],
                 "unknown time zone 'Mars/Olympus'; use an IANA name such as 'Europe/Berlin'", id="timezone"),
    pytest.param({"quiet_hours": {"fax": {"start": 1, "end": 2}}}, ["body", "customers", 0, "quiet_hours", "fax"],
                 f"unknown channel 'fax'; known: {KNOWN_CHANNELS}", id="quiet-hours-channel"),
    pytest.param({"quiet_hours": {"sms": {"start": 3, "end": 3}}}, ["body", "customers", 0, "quiet_hours", "sms"],
                 "`start` and `end` must differ; leave the channel out of `channels` to block it all day",
                 id="empty-quiet-hours"),
    pytest.param({"customer_id": "a\x00b"}, ["body", "customers", 0, "customer_id"],
                 "must not contain control characters", id="nul-in-id"),
    pytest.param({"customer_id": "\ud800"}, ["body", "customers", 0, "customer_id"],
                 "Input should be a valid string, unable to parse raw data as a unicode string", id="lone-surrogate"),
    pytest.param({"not_before": "2025-03-05T10:00:00"}, ["body", "customers", 0, "not_before"],
                 "Input should have timezone info", id="naive-datetime"),
    pytest.param({"not_before": "2025-03-06T00:00:00Z", "deadline": "2025-03-05T00:00:00Z"},
                 ["body", "customers", 0], "`deadline` must not be before `not_before`", id="window-reversed"),
]


@pytest.mark.parametrize("fields, loc, message", UNKNOWN_NAMES)
def test_bad_customer_fields_are_422_naming_the_field(client: TestClient, fields: dict, loc: list,
                                                      message: str) -> None:
    body = json.dumps({"customers": [customer(**fields)]})  # ASCII-escaped, so a lone surrogate travels as \ud800
    response = client.post("/v1/decisions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert {"loc": loc, "msg": message, "type": response.json()["detail"][0]["type"]} in response.json()["detail"]


def test_the_same_customer_twice_in_a_batch_is_422(client: TestClient) -> None:
    response = client.post("/v1/decisions", json={"customers": [customer("x"), customer("y"), customer("x")]})
    assert response.status_code == 422
    assert response.json()["detail"] == [{
        "loc": ["body", "customers", 2, "customer_id"], "type": "value_error",
        "msg": "customer_id appears more than once in this request (first at customers[0]); ask once per customer"}]


@pytest.mark.parametrize("customers, status", [(0, 422), (1000, 200), (1001, 422)])
def test_batch_size_limits(client: TestClient, customers: int, status: int) -> None:
    body = {"customers": [customer(f"c-{i}", channels=["email"]) for i in range(customers)]}
    assert client.post("/v1/decisions", json=body).status_code == status


RAW_BODIES = [
    pytest.param('{"customers": [{"customer_id": NaN}]}', 422, id="nan"),
    pytest.param('{"events": [{"event_id": "e", "decision_id": "00000000-0000-4000-8000-000000000000", '
                 '"type": "converted", "timestamp": "2025-03-04T12:00:00Z", "value": Infinity}]}', 422, id="infinity"),
    pytest.param('{"events": [{"event_id": "e", "decision_id": "00000000-0000-4000-8000-000000000000", '
                 '"type": "converted", "timestamp": "2025-03-04T12:00:00Z", "value": 1e309}]}', 422, id="overflow"),
    pytest.param('{"customers": ' + "[" * 10 + "]" * 10 + "}", 422, id="nesting-10"),
    pytest.param('{"customers": ' + "[" * 1000 + "]" * 1000 + "}", (400, 422), id="nesting-1k"),
    pytest.param('{"customers": ' + "[" * 100_000 + "]" * 100_000 + "}", (400, 422), id="nesting-100k"),
    pytest.param('{"customers": [', 422, id="truncated-json"),
    pytest.param("", 422, id="empty-body"),
    pytest.param('[1, 2, 3]', 422, id="not-an-object"),
    pytest.param('{"customers": [], "extra": 1}', 422, id="extra-field"),
]


@pytest.mark.parametrize("body, status", RAW_BODIES)
@pytest.mark.parametrize("path", ["/v1/decisions", "/v1/feedback"])
def test_malformed_bodies_are_4xx(client: TestClient, path: str, body: str, status: int | tuple[int, ...]) -> None:
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert response.status_code in (status if isinstance(status, tuple) else (status,)), response.text


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_non_json_content_type_is_415(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/v1/decisions", content=json.dumps({"customers": [customer()]}), headers=headers)
    assert response.status_code == 415
    assert response.json() == {"detail": "Content-Type must be application/json"}


def test_body_over_one_mib_is_413_with_or_without_content_length(client: TestClient) -> None:
    padding = "x" * (1 << 20)
    body = json.dumps({"customers": [customer(padding)]}).encode()
    declared = client.post("/v1/decisions", content=body, headers={"Content-Type": "application/json"})
    chunked = client.post("/v1/decisions", content=iter([body[:1000], body[1000:]]),
                          headers={"Content-Type": "application/json"})
    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json() == {"detail": f"request body larger than {1 << 20} bytes"}


def test_a_lying_content_length_cannot_smuggle_a_large_body(make_settings: Callable[..., Settings],
                                                           clock: Clock) -> None:
    """The cap counts the bytes that arrive, not the header: a small declared length does not help."""
    from sendwise.server.limits import RequestLimitsMiddleware

    sent: list[dict] = []
    chunks = [{"type": "http.request", "body": b"x" * 4096, "more_body": True}] * 300

    async def receive() -> dict:
        return chunks.pop() if chunks else {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    async def app(scope: dict, receive: object, send: object) -> None:
        raise AssertionError("the body should never reach the app")

    import asyncio

    scope = {"type": "http", "method": "POST", "path": "/v1/decisions", "root_path": "",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"10")]}
    router = create_app(make_settings()).router
    asyncio.run(RequestLimitsMiddleware(app, router, 1 << 20, 10.0)(scope, receive, send))
    assert sent[0]["status"] == 413


def test_feedback_from_the_future_is_422(client: TestClient, clock: Clock) -> None:
    (decision,) = decide(client, customer())
    future = clock.now.replace(minute=6)  # 12:06 > 12:00 + 5 min
    response = client.post("/v1/feedback", json={"events": [{"event_id": "e-1", "decision_id": decision["decision_id"],
                                                           "type": "clicked", "timestamp": future.isoformat()}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == (
        "must not be later than now + 0:05:00; got 2025-03-04T12:06:00+00:00")


def test_consent_without_channel_is_422(client: TestClient) -> None:
    response = client.post("/v1/feedback", json={"events": [{
        "event_id": "e", "decision_id": "00000000-0000-4000-8000-000000000000", "type": "consent",
        "timestamp": "2025-03-04T12:00:00Z"}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "a consent event needs `channel`"


def test_unexpected_errors_are_a_generic_500(make_settings: Callable[..., Settings], clock: Clock,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(make_settings(), clock, raise_server_exceptions=False) as client:
        def boom(*args: object) -> None:
            raise RuntimeError("secret internals")

        monkeypatch.setattr(client.app.state.service, "decide", boom)
        response = client.post("/v1/decisions", json={"customers": [customer()]})
    assert response.status_code == 500
    assert response.json() == {"detail": "internal server error"}


def test_health_ready_metrics_and_docs(client: TestClient) -> None:
    decide(client, customer())
    assert client.get("/v1/health").json() == {"status": "ok"}
    ready = client.get("/v1/ready")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready" and ready.json()["model_version"].startswith("policy.npz@")
    metrics = client.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    for line in ('sendwise_http_requests_total{method="POST",route="/v1/decisions",status="200"} 1.0',
                 "sendwise_open_decisions ", "sendwise_model_info{version=", "sendwise_decisions_total{channel=",
                 "sendwise_http_request_seconds_bucket"):
        assert line in metrics.text
    assert client.get("/docs").status_code == 200
    assert "/v1/decisions" in client.get("/openapi.json").json()["paths"]


def test_docs_can_be_switched_off(make_settings: Callable[..., Settings], clock: Clock) -> None:
    with serve(make_settings(expose_docs=False), clock) as client:
        assert client.get("/docs").status_code == 404
        assert client.get("/openapi.json").status_code == 404


def test_without_a_model_the_app_is_up_but_not_ready(make_settings: Callable[..., Settings], clock: Clock,
                                                     tmp_path: object) -> None:
    with serve(make_settings(model_uri="/nonexistent/policy.npz"), clock) as client:
        assert client.get("/v1/health").status_code == 200
        ready = client.get("/v1/ready")
        assert ready.status_code == 503 and ready.json()["status"] == "not_ready"
        assert "does not exist" in ready.json()["detail"]
        response = client.post("/v1/decisions", json={"customers": [customer()]})
        assert response.status_code == 503 and response.headers["retry-after"] == "5"


def test_a_wrong_method_is_405_before_any_body_check(client: TestClient) -> None:
    assert client.put("/v1/health").status_code == 405
    assert client.put("/v1/decisions", content=b"x", headers={"Content-Type": "text/plain"}).status_code == 405


def test_event_timestamps_older_than_any_window_are_422(client: TestClient, clock: Clock) -> None:
    (decision,) = decide(client, customer())
    old = clock.now - timedelta(hours=72, minutes=6)  # no world: the longest window is the 72 h default
    response = client.post("/v1/feedback", json={"events": [{"event_id": "e-1", "decision_id": decision["decision_id"],
                                                           "type": "clicked", "timestamp": old.isoformat()}]})
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == ("must not be earlier than now - 3 days, 0:05:00 (the longest "
                                                  "attribution window plus grace); got 2025-03-01T11:54:00+00:00")


@pytest.mark.parametrize("field, value", [("start", True), ("start", "5"), ("start", 5.0)])
def test_quiet_hours_must_be_integers_not_lookalikes(client: TestClient, field: str, value: object) -> None:
    quiet = {"start": 1, "end": 2, field: value}
    response = client.post("/v1/decisions", json={"customers": [customer(quiet_hours={"sms": quiet})]})
    assert response.status_code == 422


@pytest.mark.parametrize("timestamp", [1741089600, None, True])
def test_event_timestamps_must_be_iso_text(client: TestClient, timestamp: object) -> None:
    response = client.post("/v1/feedback", json={"events": [{
        "event_id": "e", "decision_id": "00000000-0000-4000-8000-000000000000", "type": "opened",
        "timestamp": timestamp, "value": False}]})
    assert response.status_code == 422
