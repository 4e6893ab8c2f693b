"""Stateful API fuzzing: Schemathesis chains real calls along the schema's OpenAPI links.

Every scenario starts with decisions (a rule of the test: Schemathesis takes a ``customer_id`` for a
reference to a resource no operation creates, so it would not start there), asked about the seed
world's segments as a real client's are (generated names are unknown to the served catalog and get a
422; the customer ids and the other fields stay generated). The links say what a client does next:
report feedback about the decision it got (``RecordFeedback``), send the same feedback again as a
retry (``RetryFeedback``), erase a customer it asked about (``EraseCustomer``). Schemathesis
generates the rest of each request, runs sequences of calls in process (ASGI, the app's real
lifespan and SQLite store) and applies its checks to every response: no 5xx, status codes, content
types, headers and bodies as documented.

Events get the run's start time as their timestamp, as a real client's carry a recent one (a
generated one is nearly always outside the accepted skew, and would only exercise the 422), and
event ids scoped to their decision; one time for the whole run, so an example that Hypothesis
replays sends the same event again, not a conflicting one. ``SENDWISE_STATEFUL_EXAMPLES`` sets the
number of scenarios.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import hypothesis
import schemathesis
from hypothesis.stateful import Bundle
from schemathesis import GenerationMode
from schemathesis.core.transport import Response
from schemathesis.generation.stateful.state_machine import StepInput
from schemathesis.specs.openapi.stateful import transition

from sendwise.server import Settings, create_app
from tests.support.api import EU_CART
from tests.support.app import E2E_AUTH, e2e_settings

SCENARIOS = int(os.environ.get("SENDWISE_STATEFUL_EXAMPLES", "40"))
STATE = Path(tempfile.gettempdir()) / f"sendwise-stateful-{uuid.uuid4().hex}"
APP = create_app(Settings(**e2e_settings(STATE)))
schema = schemathesis.openapi.from_dict(APP.openapi())
schema.app = APP
schema.config.generation.update(modes=[GenerationMode.POSITIVE], with_security_parameters=False)
# Region, industry and channel names are checked against the served model's catalog, which the schema
# cannot enumerate: a schema-valid request may still get a 422, so positive data may be refused.
schema.config.checks.update(excluded_check_names=["positive_data_acceptance"])
RUN_STARTED = datetime.now(UTC).isoformat()
SEEN: Counter[tuple[str, int]] = Counter()  # (operation, status) over the whole run


Workflow = schema.as_state_machine()
DECISIONS = schema["/v1/decisions"]["POST"]


class ClientWorkflow(Workflow):  # type: ignore[misc,valid-type]
    """Decisions, feedback about them, retries and erasures, with the test's key and recent timestamps."""

    # A root rule like those Schemathesis makes itself: random decisions, whose answers feed the links.
    RANDOM__POST_v1_decisions = transition(name="RANDOM__POST_v1_decisions", target=Bundle("catch_all"),
                                           input=DECISIONS.as_strategy().map(StepInput.initial),
                                           precondition=lambda machine: True)

    def before_call(self, case: schemathesis.Case) -> None:
        if case.operation.path == "/v1/decisions" and isinstance(case.body, dict):
            for customer in case.body.get("customers") or []:
                if isinstance(customer, dict):
                    customer.update(EU_CART, channels=["email", "push", "sms"])
                    customer.pop("quiet_hours", None)
        if case.operation.path == "/v1/feedback" and isinstance(case.body, dict):
            for event in case.body.get("events") or []:
                if isinstance(event, dict):
                    event["timestamp"] = RUN_STARTED
                    # Generated ids ("0", "a") recur with other content (a 409, rightly); ids scoped to their
                    # decision keep retries identical and spread the rest (set once, so a retry keeps it).
                    event_id = str(event.get("event_id", ""))
                    if not event_id.startswith("ev:"):
                        event["event_id"] = f"ev:{event.get('decision_id')}:{event_id}"

    def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, dict[str, str]]:
        return {"headers": E2E_AUTH}

    def after_call(self, response: Response, case: schemathesis.Case) -> None:
        super().after_call(response, case)
        SEEN[(f"{case.operation.method.upper()} {case.operation.path}", response.status_code)] += 1


def test_linked_calls_never_fail_and_conform() -> None:
    try:
        ClientWorkflow.run(settings=hypothesis.settings(max_examples=SCENARIOS, stateful_step_count=6,
                                                        deadline=None, database=None,
                                                        suppress_health_check=list(hypothesis.HealthCheck)))
    finally:
        shutil.rmtree(STATE, ignore_errors=True)
    assert not [call for call in SEEN if call[1] >= 500], SEEN
    # The chains reached the state they are for: feedback about real decisions was accepted, and erasures ran.
    assert SEEN[("POST /v1/decisions", 200)] and SEEN[("POST /v1/feedback", 200)], SEEN
    assert SEEN[("DELETE /v1/customers/{customer_id}", 200)], SEEN
