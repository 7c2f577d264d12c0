"""Readings as submitted: identity, periods, and the accepted-period ranges of a device.

A device's accepted (and held) periods are kept as merged, sorted ranges of epoch
seconds: an honest meter reporting every hour leaves one growing range, so the
record stays small while every new period is checked against all earlier ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from .errors import BadInput
from .time import MAX_PERIOD

MAX_READINGS_PER_REQUEST = 1000
#: Reading ids one queue message names.
IDS_PER_MESSAGE = 100

Range = tuple[int, int]  # [start, end) in epoch seconds


@dataclass(frozen=True)
class Reading:
    device_id: str
    period_start: datetime
    period_end: datetime
    energy_wh: int
    external_id: str | None = None
    signature: str | None = None  # as sent: verified (or dropped) by the intake, never trusted as is

    @property
    def reading_id(self) -> str:
        return reading_id(self.device_id, self.period_start, self.period_end)

    @property
    def span(self) -> Range:
        return epoch(self.period_start), epoch(self.period_end)


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def reading_id(device_id: str, period_start: datetime, period_end: datetime) -> str:
    """The same device and period always give the same id: a resubmission counts once."""
    text = f"{device_id}|{epoch(period_start)}|{epoch(period_end)}"
    return "rdg-" + hashlib.sha256(text.encode()).hexdigest()[:24]


def check_period(period_start: datetime, period_end: datetime, field_prefix: str = "") -> None:
    for name, moment in (("period_start", period_start), ("period_end", period_end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise BadInput(f"{name} has no time zone; send UTC like 2026-11-01T10:00:00Z",
                           field=f"{field_prefix}{name}")
    if period_end <= period_start:
        raise BadInput("period_end must be after period_start", field=f"{field_prefix}period_end")
    if period_end - period_start > MAX_PERIOD:
        raise BadInput(f"the period is {(period_end - period_start).days} days long; at most 31 days per reading",
                       field=f"{field_prefix}period_end")


def overlapping(ranges: list[Range], span: Range) -> Range | None:
    """The first stored range that shares time with `span`, if any."""
    start, end = span
    for r_start, r_end in ranges:
        if r_start < end and start < r_end:
            return r_start, r_end
        if r_start >= end:
            break
    return None


def claim(ranges: list[Range], span: Range) -> list[Range]:
    """`ranges` with `span` added, merged with touching neighbours (the caller checked overlap)."""
    merged: list[Range] = []
    start, end = span
    placed = False
    for r_start, r_end in ranges:
        if r_end < start:
            merged.append((r_start, r_end))
        elif end < r_start:
            if not placed:
                merged.append((start, end))
                placed = True
            merged.append((r_start, r_end))
        else:
            start, end = min(start, r_start), max(end, r_end)
    if not placed:
        merged.append((start, end))
    return sorted(merged)


def release(ranges: list[Range], span: Range) -> list[Range]:
    """`ranges` with `span` removed (a held reading rejected on review frees its period)."""
    start, end = span
    out: list[Range] = []
    for r_start, r_end in ranges:
        if r_end <= start or end <= r_start:
            out.append((r_start, r_end))
            continue
        if r_start < start:
            out.append((r_start, start))
        if end < r_end:
            out.append((end, r_end))
    return out


def id_messages(reading_ids: Sequence[str]) -> list[dict[str, list[str]]]:
    """Queue message bodies naming `reading_ids` in order, `IDS_PER_MESSAGE` to a body."""
    return [{"reading_ids": list(reading_ids[start:start + IDS_PER_MESSAGE])}
            for start in range(0, len(reading_ids), IDS_PER_MESSAGE)]
