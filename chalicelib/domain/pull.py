"""Pulling readings from partners that cannot push: the configuration, its rules, and a run's record.

A partner answers `GET <url>?<cursor_param>=<cursor>&limit=<page_size>` with a JSON object holding a
list of items (`items_field`) and the cursor of the next page (`next_cursor_field`; null or absent:
caught up). `mapping` says where each of our reading fields is in a partner's item (dotted paths).
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from .errors import BadInput, RuleBroken

REQUIRED_FIELDS = ("device_id", "period_start", "period_end", "energy_wh")
OPTIONAL_FIELDS = ("external_id", "signature")
MAX_BACKOFF_MINUTES = 1440  # a failing partner is still tried once a day
MAX_RUN_ERRORS = 100  # errors a run's record keeps; the count of refused rows is always exact
RunStatus = Literal["ok", "partial", "failed"]
Change = Literal["created", "unchanged", "replaced"]
# What a replacement must change for the partner's cursor to mean something else: then it starts over.
CURSOR_SCOPE = ("url", "cursor_param", "start_cursor", "items_field", "next_cursor_field")


def stamp(moment: datetime) -> str:
    """Second-precision UTC: the form `next_due_at`, leases and runs compare as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, kw_only=True)
class PullSettings:
    """What a pull configuration says: where to pull, how often, how to read the partner's pages."""

    url: str
    every_minutes: int
    mapping: dict[str, str]
    signed: bool
    page_size: int = 500
    cursor_param: str = "after"
    items_field: str = "items"
    next_cursor_field: str = "next_cursor"
    start_cursor: str | None = None

    def settings(self) -> dict[str, Any]:
        """The settings alone (a copy of the mapping), as keyword arguments of any `PullSettings`."""
        return {f.name: dict(self.mapping) if f.name == "mapping" else getattr(self, f.name)
                for f in fields(PullSettings)}


@dataclass(frozen=True, kw_only=True)
class PullConfig(PullSettings):
    """A source's pull configuration as stored: never the auth value, only its parameter's name."""

    source_id: str
    auth_header_name: str | None = None
    auth_parameter: str | None = None  # the SecureString holding the header's value
    fingerprint: str = ""  # HMAC of the request that set it (auth value included): a replay changes nothing
    generation: int = 1
    configured_at: str = ""
    configured_by: str = ""


@dataclass(frozen=True)
class PullState:
    """Where a source's pulling is: the partner's cursor, when it is due, its failures, who holds it."""

    cursor: str | None = None
    next_due_at: str | None = None
    failures: int = 0
    lease_owner: str | None = None
    lease_until: str | None = None
    last_run_id: str | None = None
    last_status: str | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class Lease:
    """A puller's hold on one source, for one configuration generation, until `until` (ISO)."""

    source_id: str
    owner: str
    generation: int
    until: str


@dataclass
class RunRecord:
    run_id: str
    source_id: str
    started_at: str
    cursor_before: str | None
    finished_at: str = ""
    status: RunStatus = "ok"
    pages: int = 0
    readings: int = 0
    queued: int = 0
    refused: int = 0
    caught_up: bool = False
    errors: list[dict[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None

    def refuse(self, page: int, index: int | None, error: str, field_name: str | None = None) -> None:
        if index is not None:
            self.refused += 1
        if len(self.errors) < MAX_RUN_ERRORS:
            entry: dict[str, Any] = {"page": page, "index": index, "error": error}
            if field_name:
                entry["field"] = field_name
            self.errors.append(entry)

    def view(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "started_at": self.started_at, "finished_at": self.finished_at,
                "status": self.status, "pages": self.pages, "readings": self.readings, "queued": self.queued,
                "refused": self.refused, "caught_up": self.caught_up, "errors": list(self.errors),
                "cursor_before": self.cursor_before, "next_cursor": self.next_cursor}


class PartnerFailed(Exception):
    """A partner's page could not be had: HTTP error, timeout, not JSON, too big, a refused address."""


@dataclass(frozen=True)
class PartnerPage:
    """One page of a partner's answer: its items and the next cursor (None: caught up)."""

    items: list[Any]
    next_cursor: str | None


def read_page(document: Any, items_field: str, next_cursor_field: str) -> PartnerPage:
    """A partner's decoded JSON answer → its page; PartnerFailed naming what is wrong with it."""
    if not isinstance(document, dict):
        raise PartnerFailed(f"the answer is a JSON {type(document).__name__}, not an object with "
                            f"{items_field!r} and {next_cursor_field!r}")
    found, items = get_path(document, items_field)
    if not found or not isinstance(items, list):
        raise PartnerFailed(f"the answer has no list at {items_field!r} (items_field)")
    try:
        next_cursor = cursor_text(get_path(document, next_cursor_field)[1])
    except ValueError as error:
        raise PartnerFailed(f"{next_cursor_field!r}: {error}") from error
    return PartnerPage(items, next_cursor)


def backoff_minutes(every_minutes: int, failures: int, rng: random.Random | None = None) -> float:
    """Minutes until a failing source is tried again: every × 2^failures, capped at a day, ±10 % jitter
    (so partners that failed together are not all retried in the same minute)."""
    base = min(MAX_BACKOFF_MINUTES, every_minutes * 2 ** min(failures, 20))
    return base * (rng or random).uniform(0.9, 1.1)


def get_path(item: Any, path: str) -> tuple[bool, Any]:
    """(found, value) of a dotted path in a JSON value (`meter.id`); list positions are digits."""
    value = item
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, None
    return True, value


def mapped_reading(item: Any, mapping: Mapping[str, str]) -> dict[str, Any]:
    """A partner's item as a raw reading in our field names; fields the item lacks are left out (the
    reading parser then names them)."""
    out: dict[str, Any] = {}
    for ours, theirs in mapping.items():
        found, value = get_path(item, theirs)
        if found and value is not None:
            out[ours] = value
    return out


def check_mapping(mapping: Mapping[str, str], signed: bool) -> None:
    for name in REQUIRED_FIELDS:
        if not mapping.get(name):
            raise BadInput(f"mapping must name the partner's field for {name} (one of the four required: "
                           f"{', '.join(REQUIRED_FIELDS)})", field=f"mapping.{name}")
    if signed and not mapping.get("signature"):
        raise RuleBroken("signed: true needs mapping.signature, the partner's field holding each reading's "
                       "EIP-712 signature", field="mapping.signature")
    if not signed and mapping.get("signature"):
        raise RuleBroken("mapping.signature is read only when signed is true", field="mapping.signature")


def check_url(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a partner URL: http or https, a host, no credentials, no fragment.

    The document says only "a string": a URL it admits that breaks these rules is a 422, not a 400."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RuleBroken(f"url is not a URL: {error}", field="url") from error
    if parts.scheme not in ("http", "https"):
        raise RuleBroken("url must start with http:// or https://", field="url")
    if parts.username is not None or parts.password is not None:
        raise RuleBroken("url must not carry credentials (user:password@); send them in auth_header, which is "
                       "kept encrypted", field="url")
    if not parts.hostname:
        raise RuleBroken("url must name a host", field="url")
    if parts.fragment:
        raise RuleBroken("url must not have a #fragment", field="url")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def public_url(url: str) -> str:
    """The URL as an event may carry it: no query string (a partner may put a token there)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def private_address(address: str) -> bool:
    """Loopback, link-local (instance metadata 169.254.169.254), private, shared, reserved, multicast,
    unspecified: nothing a partner's public database lives at. IPv4-mapped IPv6 is judged as IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def refused_addresses(addresses: Iterable[str]) -> list[str]:
    return sorted({a for a in addresses if private_address(a)})


def cursor_text(value: Any) -> str | None:
    """A partner's next cursor as we keep it; null and empty mean caught up."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, (str, int)):
        return str(value)
    raise ValueError(f"the next cursor is a {type(value).__name__}, not a string or a number")


@dataclass(frozen=True, kw_only=True)
class ConfigurePull(PullSettings):
    """A pull configuration as asked for (the edge's `PullIn`), the auth header's value still in it."""

    auth_header: tuple[str, str] | None = None


def page_url(url: str, cursor_param: str, cursor: str | None, page_size: int) -> str:
    """`url` with the cursor (left out before the first page) and the page size in its query."""
    from urllib.parse import parse_qsl, urlencode

    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in (cursor_param, "limit")]
    if cursor is not None:
        query.append((cursor_param, cursor))
    query.append(("limit", str(page_size)))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
