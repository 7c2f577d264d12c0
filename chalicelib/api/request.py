"""Reading a request at the edge: query, body, paging, the caller's principal and its Idempotency-Key.

One copy for every blueprint, so no two routes read a header or a parameter differently.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, TypeVar

from chalice import Blueprint
from pydantic import BaseModel

from .. import bootstrap
from ..domain.errors import BadInput
from ..domain.model import Principal
from ..services.access import authenticate
from .schemas import parse

MAX_IDEMPOTENCY_KEY = 200
MAX_QUERY_VALUE = 4096  # a signed cursor is far shorter

T = TypeVar("T", bound=BaseModel)

# What every list answers about its pages (said in each list route's summary).
PAGING = ("each request reads at most max(limit, 1000) stored items, so a page may hold fewer than `limit` "
          "items, or none, and still give `next_cursor`: page on until next_cursor is null")


def paging(params: dict[str, str] | None) -> tuple[int, str | None]:
    """(limit, cursor) of a list request."""
    params = params or {}
    raw = params.get("limit", "50")
    # ASCII digits only, at most 4 of them: no int() of a 5,001-digit string, no Arabic-Indic digits.
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= 1000:
        raise BadInput("limit must be an integer from 1 to 1000", field="limit")
    return int(raw), params.get("cursor") or None


class Incoming:
    """The request a route answers (Chalice's `current_request`, or None outside a request)."""

    def __init__(self, request: Any) -> None:
        self.request = request

    def header(self, name: str) -> str | None:
        return self.request.headers.get(name) if self.request is not None else None

    @property
    def query(self) -> dict[str, str]:
        """The query parameters; one given empty or with control characters is refused, not read as absent."""
        params = dict(self.request.query_params or {}) if self.request is not None else {}
        for name, value in params.items():
            if not value or len(value) > MAX_QUERY_VALUE or any(unicodedata.category(c) == "Cc" for c in value):
                raise BadInput(f"{name} must be 1 to {MAX_QUERY_VALUE} characters without control characters; "
                               "leave the parameter out to not filter by it", field=name)
        return params

    @property
    def body(self) -> bytes:
        raw = (self.request.raw_body if self.request is not None else b"") or b""
        return raw.encode() if isinstance(raw, str) else raw

    def parse(self, model: type[T]) -> T:
        """The JSON body validated against `model`; the first problem is a BadInput naming its field."""
        return parse(model, self.body)

    def paging(self) -> tuple[int, str | None]:
        return paging(self.query)

    @property
    def api_key(self) -> str | None:
        return self.header("x-api-key")

    def principal(self) -> Principal:
        c = bootstrap.container()
        return authenticate(c.registry, c.settings.operator_key, self.api_key)

    def viewer(self) -> Principal | None:
        """Who reads: None (the public) without a key; a key nobody holds is a 401, as on writes."""
        return self.principal() if self.api_key else None

    def idempotency_key(self) -> str | None:
        """The caller's `Idempotency-Key`, or None when the header is absent.

        A header that is present but blank is refused rather than read as absent: the caller
        meant to make the request replayable, and silently treating it as a new request each
        time would move D-RECs twice on a retry.
        """
        raw = self.header("idempotency-key")
        if raw is None:
            return None
        value = raw.strip()
        if not 1 <= len(value) <= MAX_IDEMPOTENCY_KEY:
            raise BadInput(f"Idempotency-Key holds 1 to {MAX_IDEMPOTENCY_KEY} characters; leave the header out "
                           "for a request that is not to be replayed", field="Idempotency-Key")
        return value


def incoming(blueprint: Blueprint) -> Incoming:
    """The request the app is answering, read from any blueprint."""
    return Incoming(blueprint.current_request)
