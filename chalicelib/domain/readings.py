"""Readings as submitted: identity, periods, and the accepted-period ranges of a device.

A device's accepted (and held) periods are kept as merged, sorted ranges of epoch
seconds: an honest meter reporting every hour leaves one growing range, so the
record stays small while every new period is checked against all earlier ones.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from .errors import BadInput, RuleBroken
from .ledger.events import NewEvent
from .time import MAX_PERIOD, parse_utc

MAX_READINGS_PER_REQUEST = 1000
#: Reading ids one queue message names.
IDS_PER_MESSAGE = 100

Range = tuple[int, int]  # [start, end) in epoch seconds


class ReadingStatus(StrEnum):
    """queued → accepted | rejected | flagged | awaiting_peers; a flagged reading is reviewed into accepted or
    rejected; one awaiting its neighbours is judged again when they have reported or its wait is over."""

    QUEUED = "queued"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    FLAGGED = "flagged"
    AWAITING_PEERS = "awaiting_peers"


class Stage(StrEnum):
    """Which handler a reading waits for: the validator, then the issuer. None once it waits for nobody."""

    VALIDATION = "queued"
    POOLING = "pooling"
    # Awaiting its neighbours: the validator's again, sent back to it by the sweep until judged. Apart from
    # "queued" so that lost messages are never stuck behind readings that are only waiting.
    PEERS = "peers"


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
    """A period in UTC, start before end, at most 31 days: rules beyond the published schema (422)."""
    for name, moment in (("period_start", period_start), ("period_end", period_end)):
        if moment.tzinfo is None or moment.utcoffset() is None:
            raise BadInput(f"{name} has no time zone; send UTC like 2026-11-01T10:00:00Z",
                           field=f"{field_prefix}{name}")
        try:  # stored and judged in UTC: an offset may carry year 1 or 9999 outside the calendar
            moment.astimezone(UTC)
        except OverflowError as exc:
            raise RuleBroken(f"{name} falls outside the years 1 to 9999 in UTC",
                             field=f"{field_prefix}{name}") from exc
    if period_end <= period_start:
        raise RuleBroken("period_end must be after period_start", field=f"{field_prefix}period_end")
    if period_end - period_start > MAX_PERIOD:
        raise RuleBroken(f"the period is {(period_end - period_start).days} days long; at most 31 days per reading",
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


def id_messages(reading_ids: Sequence[str], correlation_id: str | None = None,
                devices: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Queue message bodies naming `reading_ids` in order, at most `IDS_PER_MESSAGE` to a body, with the
    correlation id of the request they came from (when there is one).

    With `devices` (each id's device, the ids grouped by device), a device's readings are never split
    between two bodies unless they alone exceed one: validators running at once then never judge one
    device together (they would race for its state, and one of them would judge it again)."""
    extra = {"correlation_id": correlation_id} if correlation_id else {}
    bodies: list[list[str]] = []
    current: list[str] = []
    for start, end in _groups(reading_ids, devices):
        group = list(reading_ids[start:end])
        if current and len(current) + len(group) > IDS_PER_MESSAGE:
            bodies.append(current)
            current = []
        while len(group) > IDS_PER_MESSAGE:
            bodies.append(group[:IDS_PER_MESSAGE])
            group = group[IDS_PER_MESSAGE:]
        current += group
    if current:
        bodies.append(current)
    return [{"reading_ids": ids, **extra} for ids in bodies]


def _groups(reading_ids: Sequence[str], devices: Sequence[str] | None) -> list[tuple[int, int]]:
    """(start, end) of each run of one device's ids; without `devices`, every id alone."""
    if devices is None:
        return [(i, i + 1) for i in range(len(reading_ids))]
    if len(devices) != len(reading_ids):
        raise ValueError("one device per reading id")
    runs: list[tuple[int, int]] = []
    for i, device_id in enumerate(devices):
        if runs and devices[runs[-1][0]] == device_id:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


@dataclass(frozen=True)
class ReceivedReading:
    """A reading as stored: what was received (never changed afterwards) and how it was judged."""

    reading_id: str
    device_id: str
    owner_account_id: str
    period_start: str
    period_end: str
    energy_wh: int
    source_id: str
    status: ReadingStatus = ReadingStatus.QUEUED
    stage: Stage | None = Stage.VALIDATION
    received_at: str | None = None
    external_id: str | None = None
    signer: str | None = None  # only ever a verified signature's signer
    signature: str | None = None
    derived: bool = False
    payment: Mapping[str, Any] | None = None  # the paid window a derived reading came from
    judged_at: str | None = None
    judged_energy_wh: int | None = None
    rule: str | None = None
    reason: str | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)  # expected_wh, sigma_wh, ceiling_wh, clear_sky_wh
    review: Mapping[str, Any] | None = None
    pooled_wh: int = 0
    # The id of its `ReadingAccepted` event, written with the verdict; None for a reading not accepted,
    # or accepted before the reading kept it (then its event and D-RECs are found by their links).
    accepted_event_id: str | None = None
    # Serials of the D-RECs that spend it (when `accepted_event_id` is set: every one, once linked).
    drec_serials: frozenset[str] = frozenset()
    # The request (or upload) that brought it: what its log lines, messages and events are found by.
    correlation_id: str | None = None

    @property
    def content(self) -> tuple[str, str, str, int]:
        """What makes two submissions the same reading (external id and signature are not content)."""
        return self.device_id, self.period_start, self.period_end, int(self.energy_wh)

    @property
    def span(self) -> Range:
        return epoch(parse_utc(self.period_start)), epoch(parse_utc(self.period_end))


@dataclass(frozen=True)
class DeviceState:
    """A device's accepted (and held) periods and the history of its accepted readings, with a version."""

    device_id: str
    version: int = 0
    ranges: tuple[Range, ...] = ()
    history: Mapping[str, Any] = field(default_factory=dict)  # judging.DeviceHistory as a mapping


@dataclass(frozen=True)
class Transition:
    """A reading moved on from `from_status`, written only if it is still there and (given
    `judged_energy_wh`) still holds the energy that was judged: the verdict holds for that energy only."""

    reading_id: str
    from_status: ReadingStatus
    status: ReadingStatus
    stage: Stage | None  # None: it leaves the pipeline
    judged_energy_wh: int | None = None
    judged_at: str | None = None
    rule: str | None = None
    reason: str | None = None
    numbers: Mapping[str, float] = field(default_factory=dict)
    review: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class StateChange:
    """A device's new ranges and history, written only if its state is still at `old_version`."""

    device_id: str
    old_version: int
    ranges: tuple[Range, ...]
    history: Mapping[str, Any]


@dataclass(frozen=True)
class ReadingContent:
    """Only what makes a reading the same reading: what the intake compares on every resubmission."""

    reading_id: str
    device_id: str
    period_start: str
    period_end: str
    energy_wh: int

    @property
    def content(self) -> tuple[str, str, str, int]:
        return self.device_id, self.period_start, self.period_end, int(self.energy_wh)


@dataclass(frozen=True)
class PeerContribution:
    """One judged reading's ratio added to its cell's histogram for its period (in one of `shards`)."""

    cell: str
    period_start_s: int
    duration_s: int
    shard: int
    ratio_bin: int
    diffuse_bin: int | None = None
    orientation_known: bool = True  # the plane ratio goes with the declared planes' (else with the assumed ones')


@dataclass(frozen=True)
class DeviceUpdate:
    """What the validator changes on a device's registry record: a review it opens (status active →
    under_review), and the owner's maintenance note (set, or removed when None)."""

    device_id: str
    review: Mapping[str, Any] | None = None
    maintenance_changed: bool = False
    maintenance: Mapping[str, Any] | None = None
    # Readings were held for a review: written only while the device is still under review (a clear that
    # lands between the validator's read and its write sends the batch round again, to be judged afresh).
    still_under_review: bool = False


@dataclass
class DeviceWrites:
    """One device's verdicts: its state change (if any), its readings' transitions and their events,
    its ratios added to its neighbourhood's histograms, the cell it starts reporting in, and a change
    to its registry record — written all at once or not at all."""

    device_id: str
    state: StateChange | None
    transitions: list[Transition]
    events: list[NewEvent]
    peers: tuple[PeerContribution, ...] = ()
    new_cell: str | None = None
    device: DeviceUpdate | None = None
