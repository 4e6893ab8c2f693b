"""Keep raw customer ids out of the access log: ``sendwise serve`` runs it off by default, redacted when on.

The database, exports and the Redis AOF hold pseudonyms only, so a log line with
``/v1/customers/<id>`` or ``?customer_id=<id>`` would be the one place a raw id survives. The filter
rewrites the request target of each uvicorn access record before any handler formats it.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

from uvicorn.config import LOGGING_CONFIG

REDACTED = "<redacted>"
_CUSTOMER_PATH = re.compile(r"(/v1/customers/)[^/?#]*")
_CUSTOMER_QUERY = re.compile(r"([?&](?:customer_id|customer%5Fid)=)[^&#]*", re.IGNORECASE)


def redact_target(target: str) -> str:
    """``target`` (a path, with its query if any) with each customer id replaced by ``<redacted>``."""
    return _CUSTOMER_QUERY.sub(rf"\1{REDACTED}", _CUSTOMER_PATH.sub(rf"\1{REDACTED}", target))


class RedactCustomerIds(logging.Filter):
    """Redact the request target of uvicorn's access records, ``(client, method, target, version, status)``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and len(record.args) >= 3 and isinstance(record.args[2], str):
            record.args = (*record.args[:2], redact_target(record.args[2]), *record.args[3:])
        return True


def serve_log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config with the ``sendwise`` loggers at ``level`` and the access records redacted."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["sendwise"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    config["filters"] = {"redact_customer_ids": {"()": RedactCustomerIds}}
    config["handlers"]["access"]["filters"] = ["redact_customer_ids"]
    return config
