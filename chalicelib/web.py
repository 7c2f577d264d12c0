"""HTTP edge helpers for app.py: the error table, JSON responses, paging parameters."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from typing import Any

from chalice import Response
from pydantic import BaseModel

from .domain.errors import BadInput, Conflict, DomainError, Forbidden, NotFound, RuleBroken, Unauthorized

log = logging.getLogger("drec.api")

# The one table from domain errors to HTTP statuses.
STATUS: dict[type[DomainError], int] = {
    BadInput: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    RuleBroken: 422,
}

# Accounts and devices read differently with and without a key (privacy): a shared cache must not
# hand the owner's answer to the public.
HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json", "Vary": "X-Api-Key"}


def json_response(body: Any, status: int = 200) -> Response:
    if isinstance(body, BaseModel):
        payload = body.model_dump_json(exclude_none=False)
    else:
        payload = json.dumps(body, default=str)
    return Response(body=payload, status_code=status, headers=HEADERS)


def error_response(error: DomainError) -> Response:
    status = next(code for cls, code in STATUS.items() if isinstance(error, cls))
    return json_response({"error": error.to_dict()}, status)


def api(handler: Callable[..., Any]) -> Callable[..., Any]:
    """Route wrapper: domain errors become their status, anything else a logged 500."""

    @functools.wraps(handler)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        try:
            return handler(*args, **kwargs)
        except DomainError as error:
            return error_response(error)
        except Exception:
            log.exception("unhandled error in %s", handler.__name__)
            return json_response({"error": {"code": "internal", "message": "internal error; it was logged",
                                            "field": None}}, 500)

    return wrapped


def paging(params: dict[str, str] | None) -> tuple[int, str | None]:
    params = params or {}
    raw = params.get("limit", "50")
    if not raw.isdigit() or not 1 <= int(raw) <= 1000:
        raise BadInput("limit must be an integer from 1 to 1000", field="limit")
    return int(raw), params.get("cursor") or None


def page_body(page: Any) -> dict[str, Any]:  # a Page, or a service's page of views
    return {"items": page.items, "next_cursor": page.next_cursor}
