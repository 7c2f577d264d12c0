"""Pydantic models at the edge for pulling from partners (published at /openapi.json).

The partner protocol: every `every_minutes` the registry sends
`GET <url>?<cursor_param>=<cursor>&limit=<page_size>` (the cursor left out before the first page unless
`start_cursor` is set) with the `auth_header`, and reads a JSON object: a list of items at `items_field`
and the next page's cursor at `next_cursor_field` (null or absent: caught up; the same cursor is asked
again next time). Timeouts: 5 s to connect, 30 s to answer; answers over 8 MiB, redirects, non-2xx
statuses and bodies that are not JSON fail the run, which is retried with exponential backoff.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from .schemas import Strict

PATH = r"^[^.\s]+(\.[^.\s]+)*$"  # a dotted path into a partner's item: `meter.id`, `values.0.wh`
NAME = r"^[A-Za-z0-9_.~-]{1,64}$"
# Headers the HTTP client sets itself, or that would change how the request travels.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept",
                              "user-agent", "te", "upgrade", "expect"})


def _path(description: str, optional: bool = False) -> Any:
    extra: dict[str, Any] = {"default": None} if optional else {}
    return Field(min_length=1, max_length=200, pattern=PATH, description=description, **extra)


class PullMapping(Strict):
    """Our field → the partner's field (a dotted path) in each item."""

    device_id: str = _path("holds the registry's device_id")
    period_start: str = _path("ISO 8601 UTC start")
    period_end: str = _path("ISO 8601 UTC end")
    energy_wh: str = _path("integer Wh")
    external_id: str | None = _path("the partner's id of the reading", optional=True)
    signature: str | None = _path("the reading's EIP-712 signature (required when signed is true)",
                                 optional=True)


class AuthHeader(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$", description="An HTTP header name")
    value: str = Field(min_length=1, max_length=4096, description="Kept encrypted (SSM SecureString); never shown")

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.lower() in RESERVED_HEADERS:
            raise ValueError(f"{value} is set by the registry's HTTP client; use another header")
        return value


class PullIn(Strict):
    url: str = Field(min_length=8, max_length=2048, description="http(s) URL of the partner's readings; no "
                     "credentials in it, no internal address (loopback, link-local, private ranges)")
    auth_header: AuthHeader | None = None
    every_minutes: int = Field(ge=1, le=1440)
    mapping: PullMapping
    signed: bool = Field(description="Each item carries its reading's EIP-712 signature (mapping.signature)")
    page_size: int = Field(default=500, ge=1, le=1000)
    cursor_param: str = Field(default="after", pattern=NAME)
    items_field: str = Field(default="items", min_length=1, max_length=200, pattern=PATH)
    next_cursor_field: str = Field(default="next_cursor", min_length=1, max_length=200, pattern=PATH)
    start_cursor: str | None = Field(default=None, min_length=1, max_length=1024)

    @field_validator("cursor_param")
    @classmethod
    def _not_limit(cls, value: str) -> str:
        if value == "limit":
            raise ValueError("limit is the page size's parameter; name the cursor's otherwise")
        return value


class AuthHeaderOut(BaseModel):
    name: str
    value: str = Field(description="Always the text '(set; never shown)'")


class PullOut(BaseModel):
    source_id: str
    url: str
    every_minutes: int
    mapping: dict[str, str]
    signed: bool
    page_size: int
    cursor_param: str
    items_field: str
    next_cursor_field: str
    start_cursor: str | None = None
    auth_header: AuthHeaderOut | None = None
    generation: int = Field(description="Counts the configurations set for this source")
    configured_at: str
    configured_by: str
    cursor: str | None = Field(default=None, description="The partner's cursor the next run starts from")
    next_due_at: str | None = None
    failures: int = Field(description="Failed runs in a row (the backoff's exponent)")
    running_until: str | None = Field(default=None, description="A run holds the source until then")
    last_run_id: str | None = None
    last_status: str | None = None
    last_error: str | None = None
    change: Literal["created", "unchanged", "replaced"] | None = Field(
        default=None, description="On POST: created (201), unchanged (the same again, 200), replaced (200)")


class PullRemoved(BaseModel):
    source_id: str
    removed: bool = Field(description="False when there was no configuration (removing again changes nothing)")
    removed_at: str | None = None


class PullDue(BaseModel):
    source_id: str
    due_at: str
    running: bool = Field(description="A run is in progress; another follows as soon as it ends")


class RunError(BaseModel):
    page: int
    index: int | None = Field(default=None, description="The item's position in its page; none: the whole page")
    field: str | None = None
    error: str


class PullRunOut(BaseModel):
    run_id: str
    started_at: str
    finished_at: str
    status: Literal["ok", "partial", "failed"] = Field(
        description="ok: every item taken in; partial: some items refused (see errors); failed: a page could not "
                    "be read, the run stopped before it and is retried with backoff")
    pages: int
    readings: int = Field(description="Items the partner's pages held")
    queued: int = Field(description="Readings new to the registry, stored and queued for validation")
    refused: int
    caught_up: bool
    errors: list[RunError] = Field(description="At most 100 kept; `refused` counts them all")
    cursor_before: str | None = None
    next_cursor: str | None = None
