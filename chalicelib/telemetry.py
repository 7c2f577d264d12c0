"""What an operator sees: JSON log lines with a correlation id, and metrics in CloudWatch's embedded metric format.

Both come from Powertools for AWS Lambda (Python). Every log line is one JSON object on stdout
(`POWERTOOLS_DEV=1` pretty-prints them, `POWERTOOLS_LOG_LEVEL` sets the level); the loggers
`drec.*` of the standard library write through the same handler. Metrics are EMF documents on
stdout, which CloudWatch Logs turns into metrics of namespace `Drec` with the dimension
`prefix` (the stack's prefix, e.g. drec-prod); locally they stay in the log files.

The correlation id follows readings: an HTTP request's id (the client's `X-Correlation-Id`,
else API Gateway's request id, else a new one) is stored on every reading that request
brought, rides in the queue messages, and is named by the validator's, the issuer's and the
anchorer's lines about those readings, their D-RECs and their events. `grep <id>` (or Logs
Insights `filter correlation_id = "<id>"`) shows a request's readings from intake to chain.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import EphemeralMetrics

from . import config
from .domain.errors import BadInput

SERVICE = "drec"
NAMESPACE = "Drec"
CORRELATION_HEADER = "X-Correlation-Id"
CORRELATION_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,128}$"
_CORRELATION_ID = re.compile(CORRELATION_ID_PATTERN)


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to sys.stdout as it is at each line (Lambda's stdout; a test's capture)."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stdout
        super().emit(record)


#: The platform's logger; `logging.getLogger("drec.<part>")` lines go through it too.
logger = Logger(service=SERVICE, logger_handler=_Stdout())

_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def correlation_id() -> str | None:
    """The correlation id of the request or message being handled, if any."""
    return _current.get()


def new_correlation_id() -> str:
    return str(uuid.uuid4())


def request_correlation_id(request: Any) -> str:
    """The client's X-Correlation-Id (BadInput when malformed), else API Gateway's request id, else a new id."""
    if request is None:
        return new_correlation_id()
    sent = request.headers.get(CORRELATION_HEADER.lower())
    if sent is not None:
        if not _CORRELATION_ID.fullmatch(sent):
            raise BadInput(f"{CORRELATION_HEADER} must be 1 to 128 letters, digits, '.', '_', ':' or '-'",
                           field=CORRELATION_HEADER)
        return str(sent)
    request_id = (getattr(request, "context", None) or {}).get("requestId")
    return str(request_id) if request_id and _CORRELATION_ID.fullmatch(str(request_id)) else new_correlation_id()


@contextmanager
def correlated(value: str | None) -> Iterator[str | None]:
    """Within this block, log lines carry `correlation_id` and `correlation_id()` answers it (per thread)."""
    token = _current.set(value)
    if value:
        logger.thread_safe_append_keys(correlation_id=value)
    try:
        yield value
    finally:
        _current.reset(token)
        if value:
            logger.thread_safe_remove_keys(["correlation_id"])


def log_by_correlation(message: str, groups: Mapping[str | None, Mapping[str, Any]]) -> None:
    """One line per correlation id: `grep <id>` finds what was done to that request's readings."""
    for value, fields in groups.items():
        logger.info(message, extra={"correlation_id": value or "none", **fields}, stacklevel=3)


def publish(counts: Mapping[str, float], unit: str = "Count", **dimensions: str) -> None:
    """One EMF document with `counts` as metrics, dimensions `prefix` (and `dimensions`), flushed to stdout."""
    if not counts:
        return
    metrics = EphemeralMetrics(namespace=NAMESPACE)
    metrics.add_dimension(name="prefix", value=config.prefix())
    for dimension, label in dimensions.items():
        metrics.add_dimension(name=dimension, value=label)
    for metric, value in counts.items():
        metrics.add_metric(name=metric, unit=unit, value=float(value))
    metrics.flush_metrics()
