"""B6: API fuzzing. Schemathesis from the app's own OpenAPI schema, and the handmade edge corpus.

Schemathesis runs in process (ASGI) on every operation, with valid (positive) and invalid (negative)
data, and applies its checks: no 5xx, status codes, content types, headers and bodies as the schema
documents them, invalid input refused, auth enforced, 405 for undeclared methods. (Schema-valid
input may still be refused: see the test.) ``SENDWISE_FUZZ_EXAMPLES`` sets the examples per operation
and mode: 60 by default to fit the suite's time budget (RELIABILITY B6: 200 in CI, 2,000 long).

The edge corpus is the table of RELIABILITY B6, one parametrized case per row and place: each must
give its stated status and never a 5xx. Body-size rows go to a real uvicorn over a raw socket, since
only a real HTTP server sees chunked bodies and lying ``Content-Length`` headers.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from sendwise.server import BackgroundServer, Settings, create_app, serve_in_background
from tests.support.api import decide, event, seed_customer
from tests.support.app import E2E_AUTH, app_client, e2e_settings

EXAMPLES = int(os.environ.get("SENDWISE_FUZZ_EXAMPLES", "60"))
MAX_BODY = 1 << 20


# The schema is built at import, for ``parametrize``, from the app's own ``openapi()``: nothing is opened
# until Schemathesis starts the app's lifespan for the first call (and it ends it after each test).
FUZZ_STATE = Path(tempfile.gettempdir()) / f"sendwise-fuzz-{uuid.uuid4().hex}"
FUZZ_APP = create_app(Settings(**e2e_settings(FUZZ_STATE)))
schema = schemathesis.openapi.from_dict(FUZZ_APP.openapi())
schema.app = FUZZ_APP
# Requests carry the test's valid key; Schemathesis probes auth by removing or spoiling it (so it must not
# generate credentials of its own, which would sit beside the valid key).
schema.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=EXAMPLES,
                                with_security_parameters=False)


@pytest.fixture(scope="module")
def fuzz_state() -> Iterator[Path]:
    yield FUZZ_STATE
    shutil.rmtree(FUZZ_STATE, ignore_errors=True)


@schema.parametrize()
def test_every_operation_conforms_and_never_fails(case: schemathesis.Case, fuzz_state: Path) -> None:
    # Region, industry and channel names are checked against the served model's catalog, which the
    # schema cannot enumerate (it changes with the model): a schema-valid name may still get a 422.
    case.call_and_validate(headers=E2E_AUTH, excluded_checks=[positive_data_acceptance])


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    with app_client(tmp_path_factory.mktemp("corpus")) as c:
        yield c


@pytest.fixture(scope="module")
def decision_id(client: TestClient) -> str:
    decisions = decide(client, seed_customer("corpus-1"))
    return str(decisions[0]["decision_id"])


def nested(depth: int) -> str:
    return '{"customers": ' + "[" * depth + "]" * depth + "}"


def decisions_body(ensure_ascii: bool = True, **fields: Any) -> str:
    return json.dumps({"customers": [seed_customer("edge-1") | fields]}, ensure_ascii=ensure_ascii)


def events_body(decision: str, **fields: Any) -> str:
    return json.dumps({"events": [event(decision, "converted", "edge-e1", _now()) | fields]})


def _now(offset: timedelta = timedelta()) -> str:
    return (datetime.now(UTC) + offset).isoformat()


# (path, body factory taking the decision id, extra headers, accepted statuses)
Row = tuple[str, Callable[[str], str], dict[str, str], set[int]]
JSON = {"Content-Type": "application/json"}
CORPUS: dict[str, Row] = {
    **{f"{literal}-in-event-value": ("/v1/feedback", lambda d, v=literal: events_body(d).replace(
        '"type": "converted"', f'"type": "converted", "value": {v}'), JSON, {422})
       for literal in ("NaN", "Infinity", "-Infinity", "1e309")},
    **{f"{literal}-in-quiet-hour": ("/v1/decisions", lambda d, v=literal: decisions_body().replace(
        '"channels"', f'"quiet_hours": {{"email": {{"start": {v}, "end": 6}}}}, "channels"'), JSON, {422})
       for literal in ("NaN", "Infinity", "-Infinity", "1e309")},
    **{f"nesting-{depth}": ("/v1/decisions", lambda d, n=depth: nested(n), JSON, {400, 422})
       for depth in (10, 1_000, 100_000)},
    "1001-customers": ("/v1/decisions", lambda d: json.dumps(
        {"customers": [seed_customer(f"c{i}") for i in range(1001)]}), JSON, {422}),
    "1001-events": ("/v1/feedback", lambda d: json.dumps(
        {"events": [event(d, "opened", f"e{i}", _now()) for i in range(1001)]}), JSON, {422}),
    "customer-id-nul": ("/v1/decisions", lambda d: decisions_body(customer_id="a\x00b"), JSON, {422}),
    "customer-id-lone-surrogate-escaped": ("/v1/decisions", lambda d: decisions_body(customer_id="\ud800"), JSON,
                                           {422}),
    "customer-id-lone-surrogate-raw": ("/v1/decisions", lambda d: decisions_body(False, customer_id="\ud800"), JSON,
                                       {400, 422}),
    "customer-id-129-chars": ("/v1/decisions", lambda d: decisions_body(customer_id="x" * 129), JSON, {422}),
    "customer-id-128-chars": ("/v1/decisions", lambda d: decisions_body(customer_id="x" * 128), JSON, {200}),
    "customer-id-rtl-and-emoji": ("/v1/decisions", lambda d: decisions_body(customer_id="مرحبا-😀"), JSON, {200}),
    "timezone-mars": ("/v1/decisions", lambda d: decisions_body(timezone="Mars/Olympus"), JSON, {422}),
    "timestamp-6-minutes-ahead": ("/v1/feedback", lambda d: events_body(
        d, timestamp=_now(timedelta(minutes=6))), JSON, {422}),
    "timestamp-before-the-window": ("/v1/feedback", lambda d: events_body(
        d, timestamp=_now(-timedelta(days=100))), JSON, {422}),
    "timestamp-naive": ("/v1/feedback", lambda d: events_body(d, timestamp="2025-01-01T00:00:00"), JSON, {422}),
    "content-type-missing": ("/v1/decisions", lambda d: decisions_body(), {}, {415, 422}),
    "content-type-text": ("/v1/decisions", lambda d: decisions_body(), {"Content-Type": "text/plain"}, {415, 422}),
    "content-type-form": ("/v1/feedback", lambda d: events_body(d),
                          {"Content-Type": "application/x-www-form-urlencoded"}, {415, 422}),
}


@pytest.mark.parametrize("row", CORPUS.values(), ids=CORPUS.keys())
def test_edge_corpus_gets_its_status(client: TestClient, decision_id: str, row: Row) -> None:
    path, body, headers, expected = row
    response = client.post(path, content=body(decision_id).encode("utf-8", "surrogatepass"), headers=headers)
    assert response.status_code in expected, f"{path}: expected {sorted(expected)}, got {response.status_code}: " \
                                             f"{response.text[:300]}"
    if response.status_code == 200 and path == "/v1/decisions":
        asked = json.loads(body(decision_id))["customers"][0]["customer_id"]
        assert response.json()["decisions"][0]["customer_id"] == asked, "customer_id not echoed exactly"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BackgroundServer]:
    """A real uvicorn in a thread of this process: the body cap is enforced before the app sees a byte."""
    with serve_in_background(e2e_settings(tmp_path_factory.mktemp("body-cap")), thread=True) as server:
        yield server


def raw_post(port: int, headers: dict[str, str], chunks: Iterator[bytes]) -> int:
    """Status of a POST /v1/feedback sent byte for byte; stops sending once the server has answered."""
    head = "".join(f"{k}: {v}\r\n" for k, v in ({"Host": "127.0.0.1", **E2E_AUTH, **JSON} | headers).items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"POST /v1/feedback HTTP/1.1\r\n{head}\r\n".encode())
        for chunk in chunks:
            if select.select([sock], [], [], 0)[0]:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
        response = sock.recv(4096)
    return int(response.split(b" ", 2)[1])


def body_of(n_bytes: int) -> bytes:
    """A syntactically valid JSON request body of exactly ``n_bytes`` bytes (padded with spaces)."""
    core = b'{"events": []}'
    return core[:-1] + b" " * (n_bytes - len(core)) + core[-1:]


def chunked(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        part = body[start:start + size]
        yield f"{len(part):x}\r\n".encode() + part + b"\r\n"
    yield b"0\r\n\r\n"


def plain(body: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start:start + size]


OVERSIZED = body_of(MAX_BODY + 1)
BodyCapRow = tuple[dict[str, str], Callable[[bytes], Iterator[bytes]], set[int]]
BODY_CAP_ROWS: dict[str, BodyCapRow] = {
    "content-length": ({"Content-Length": str(len(OVERSIZED))}, plain, {413}),
    "chunked": ({"Transfer-Encoding": "chunked"}, chunked, {413}),
    # Both framings at once is a smuggling pattern: refusing the framing (400) is as safe as 413.
    "chunked-with-lying-length": ({"Transfer-Encoding": "chunked", "Content-Length": "100"}, chunked, {400, 413}),
}


@pytest.mark.parametrize("row", BODY_CAP_ROWS.values(), ids=BODY_CAP_ROWS.keys())
def test_body_over_one_mebibyte_is_413(live: BackgroundServer, row: BodyCapRow) -> None:
    headers, framing, expected = row
    status = raw_post(live.port, headers, framing(OVERSIZED))
    assert status in expected, f"expected {sorted(expected)}, got {status}"


def test_body_of_exactly_one_mebibyte_is_parsed(live: BackgroundServer) -> None:
    """The cap is ``>``, not ``>=``: a body of exactly 1 MiB reaches validation (422: no events)."""
    body = body_of(MAX_BODY)
    assert raw_post(live.port, {"Transfer-Encoding": "chunked"}, chunked(body)) == 422
    assert raw_post(live.port, {"Content-Length": str(len(body))}, plain(body)) == 422

