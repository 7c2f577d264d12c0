"""Reading a request at the edge: the caller's principal, its API key and its Idempotency-Key.

One copy for app.py and every blueprint, so no two routes read a header differently.
"""

from __future__ import annotations

from typing import Any

from . import bootstrap
from .domain.errors import BadInput
from .domain.model import Principal
from .services.access import authenticate

MAX_IDEMPOTENCY_KEY = 200


def api_key(request: Any) -> str | None:
    return request.headers.get("x-api-key") if request is not None else None


def principal(request: Any) -> Principal:
    c = bootstrap.container()
    return authenticate(c.registry, c.settings.operator_key, api_key(request))


def idempotency_key(request: Any) -> str | None:
    """The caller's `Idempotency-Key`, or None when the header is absent.

    A header that is present but blank is refused rather than read as absent: the caller
    meant to make the request replayable, and silently treating it as a new request each
    time would move D-RECs twice on a retry.
    """
    raw = request.headers.get("idempotency-key") if request is not None else None
    if raw is None:
        return None
    value = raw.strip()
    if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
        raise BadInput(f"Idempotency-Key holds 1 to {MAX_IDEMPOTENCY_KEY} characters; leave the header out "
                       "for a request that is not to be replayed", field="Idempotency-Key")
    return value
