"""Time as the registry speaks it: aware UTC datetimes, ISO 8601 text with a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from .errors import BadInput

#: The longest period one reading may cover.
MAX_PERIOD = timedelta(days=31)


def now_utc() -> datetime:
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """UTC ISO 8601 with a Z, second precision unless sub-second is present: ``2026-11-01T10:00:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    """ISO 8601 text with a zone (as stored and published) -> aware UTC datetime."""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise BadInput(f"time without a zone: {text!r}", field="period_start")
    return moment.astimezone(UTC)
