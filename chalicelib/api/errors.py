"""The one table from domain errors to HTTP statuses, the route wrapper and JSON responses."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, ParamSpec

from chalice import Response
from pydantic import BaseModel

from ..domain.errors import (
    BadInput,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    RuleBroken,
    TooLarge,
    Unauthorized,
    UnsupportedMedia,
)
from ..telemetry import logger

log = logger

P = ParamSpec("P")

# The one table from domain errors to HTTP statuses.
# Most specific first: `status_of` takes the first class the error is an instance of.
STATUS: dict[type[DomainError], int] = {
    TooLarge: 413,
    UnsupportedMedia: 415,
    BadInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RuleBroken: 422,
}

INTERNAL = {"error": {"code": "internal", "message": "internal error; it was logged", "field": None}}
UNAVAILABLE = {"error": {"code": "unavailable", "field": None,
                         "message": "the store or the chain did not answer in time; send the same request "
                                    "again (transfers and redemptions with the same Idempotency-Key)"}}
RETRY_AFTER_S = 2
# DynamoDB's answers that mean "not now" once the SDK's own retries are spent.
BUSY_CODES = frozenset({"ThrottlingException", "ProvisionedThroughputExceededException", "RequestLimitExceeded",
                        "InternalServerError", "ServiceUnavailable", "TransactionInProgressException"})


def unavailable(error: Exception) -> bool:
    """A dependency that is down or busy (a restarting emulator, throttling): a 503, not a 500."""
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    from ..domain.stores import ChainError

    if isinstance(error, (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, ChainError)):
        return True
    return isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") in BUSY_CODES

# Accounts and devices read differently with and without a key (privacy): a shared cache must not
# hand the owner's answer to the public.
HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json", "Vary": "X-Api-Key"}


def json_text(body: Any) -> str:
    """The JSON an answer carries; the verify route reads its in-process answers through it too."""
    if isinstance(body, BaseModel):
        return body.model_dump_json(exclude_none=False)
    return json.dumps(body, default=str)


def json_response(body: Any, status: int = 200) -> Response:
    return Response(body=json_text(body), status_code=status, headers=HEADERS)


def status_of(error: DomainError) -> int:
    return next(code for cls, code in STATUS.items() if isinstance(error, cls))


def error_response(error: DomainError) -> Response:
    return json_response({"error": error.to_dict()}, status_of(error))


def api(handler: Callable[P, Response]) -> Callable[P, Response]:
    """Route wrapper: domain errors become their status, anything else a logged 500."""

    @functools.wraps(handler)
    def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return handler(*args, **kwargs)
        except DomainError as error:
            return error_response(error)
        except Exception as error:
            if unavailable(error):
                log.warning("dependency unavailable in %s: %s", handler.__name__, error)
                return Response(body=json_text(UNAVAILABLE), status_code=503,
                                headers={**HEADERS, "Retry-After": str(RETRY_AFTER_S)})
            log.exception("unhandled error in %s", handler.__name__)
            return json_response(INTERNAL, 500)

    return wrapped


MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit [bytes]


def admit(request: Any, accepted: list[str]) -> None:
    """A body the route can read: one of its media types, at most API Gateway's 10 MB."""
    if request is None:
        return
    raw = request.raw_body or b""
    if len(raw) > MAX_BODY:
        raise TooLarge(f"the body holds {len(raw)} bytes; at most {MAX_BODY} (10 MB) per request; "
                       "upload larger CSV files through POST /uploads/url", field="body")
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    if raw and media not in accepted:
        raise UnsupportedMedia(f"Content-Type {media or '(none)'} is not read here; send {' or '.join(accepted)}",
                               field="Content-Type")


def page_body(page: Any) -> dict[str, Any]:  # a Page, or a service's page of views
    return {"items": page.items, "next_cursor": page.next_cursor}
