"""The append-only event sequence: every lifecycle step, with its source."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .canonical import canonical_json

# Past-tense event types, one per lifecycle step.
SOURCE_REGISTERED = "SourceRegistered"
ACCOUNT_REGISTERED = "AccountRegistered"
DEVICE_REGISTERED = "DeviceRegistered"
READING_ACCEPTED = "ReadingAccepted"
DREC_ISSUED = "DrecIssued"
DREC_TRANSFERRED = "DrecTransferred"
DREC_REDEEMED = "DrecRedeemed"
# Key lifecycle: bodies name the principal and the time, never a key or its hash.
API_KEY_ROTATED = "ApiKeyRotated"
SOURCE_REVOKED = "SourceRevoked"
ACCOUNT_REVOKED = "AccountRevoked"
# A device steadily above its reference goes under review (the validator); the operator decides.
DEVICE_REVIEW_OPENED = "DeviceReviewOpened"
DEVICE_REVIEW_CLEARED = "DeviceReviewCleared"
DEVICE_SUSPENDED = "DeviceSuspended"
EVENT_TYPES = (
    SOURCE_REGISTERED,
    ACCOUNT_REGISTERED,
    DEVICE_REGISTERED,
    READING_ACCEPTED,
    DREC_ISSUED,
    DREC_TRANSFERRED,
    DREC_REDEEMED,
    API_KEY_ROTATED,
    SOURCE_REVOKED,
    ACCOUNT_REVOKED,
    DEVICE_REVIEW_OPENED,
    DEVICE_REVIEW_CLEARED,
    DEVICE_SUSPENDED,
)


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store gives it its sequence number."""

    type: str
    subject_id: str
    source_id: str
    occurred_at: str
    body: dict[str, Any]
    # Further subjects (e.g. each device of an issued D-REC) that should find this event.
    related_ids: tuple[str, ...] = field(default_factory=tuple)
    # The requests whose readings it records (operations only: kept beside the event, never hashed or published).
    correlation_ids: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Event:
    seq: int
    type: str
    subject_id: str
    source_id: str
    occurred_at: str
    body: dict[str, Any]
    related_ids: tuple[str, ...] = ()
    correlation_ids: tuple[str, ...] = ()  # not in `document()`: what the logs know it by, not what is anchored

    @property
    def event_id(self) -> str:
        return event_id_for(self.seq)

    def document(self) -> dict[str, Any]:
        """What is hashed into the event's Merkle leaf and published with its batch."""
        return {
            "seq": self.seq,
            "event_id": self.event_id,
            "type": self.type,
            "subject_id": self.subject_id,
            "source_id": self.source_id,
            "occurred_at": self.occurred_at,
            "body": self.body,
        }

    def canonical_bytes(self) -> bytes:
        return canonical_json(self.document())


def event_id_for(seq: int) -> str:
    return f"ev-{seq:012d}"


def seq_of(event_id: str) -> int | None:
    if not event_id.startswith("ev-"):
        return None
    tail = event_id[3:]
    return int(tail) if tail.isdigit() else None
