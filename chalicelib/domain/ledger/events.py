"""The append-only event sequences: every lifecycle step, with its source.

Events are numbered per shard (`domain.ledger.shards` says which events go to which shard):
an event is identified by (shard, seq), `ev-<shard>-<seq>`; seqs are gap-free within a shard.
"""

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
# A source's pull configuration: bodies carry the URL without its query and the auth header's name, never its value.
PULL_CONFIGURED = "PullConfigured"
PULL_RECONFIGURED = "PullReconfigured"
PULL_REMOVED = "PullRemoved"
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
    PULL_CONFIGURED,
    PULL_RECONFIGURED,
    PULL_REMOVED,
)


# The fields of an event's document: what its Merkle leaf hashes (`Event.document`).
DOCUMENT_FIELDS = ("shard", "seq", "event_id", "type", "subject_id", "source_id", "occurred_at", "body")


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended; the store gives it its shard's next sequence number."""

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
    shard: int = 0

    @property
    def event_id(self) -> str:
        return event_id_for(self.shard, self.seq)

    @property
    def position(self) -> str:
        return position_of(self.occurred_at, self.shard, self.seq)

    def document(self) -> dict[str, Any]:
        """What is hashed into the event's Merkle leaf and published with its batch."""
        return {
            "shard": self.shard,
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


def event_id_for(shard: int, seq: int) -> str:
    return f"ev-{shard}-{seq:012d}"


def parse_event_id(event_id: str) -> tuple[int, int] | None:
    """(shard, seq) of `ev-<shard>-<seq>`; the unsharded `ev-<seq>` of earlier releases is shard 0."""
    parts = event_id.split("-")
    if parts[0] != "ev" or len(parts) not in (2, 3) or not all(p.isdigit() and len(p) <= 20 for p in parts[1:]):
        return None
    numbers = [int(p) for p in parts[1:]]
    shard, seq = (0, numbers[0]) if len(numbers) == 1 else (numbers[0], numbers[1])
    return (shard, seq) if seq > 0 else None


def position_of(occurred_at: str, shard: int, seq: int) -> str:
    """Where an event sorts among a subject's events: by its time, then shard and seq.

    Within a shard seq is the true order; a subject whose history needs an order keeps it in
    one shard (`shards`), so time only interleaves histories that no rule orders.
    """
    return f"{occurred_at}#{shard:05d}#{seq:012d}"


def history_key(event_type: str, shard: int, seq: int) -> tuple[bool, int, int]:
    """The causal order of a D-REC's events: its issuance (in its pool's shard) first, then its moves,
    all in the registry shard, in sequence order (`shards`: a move needs the item its issuance wrote)."""
    return event_type != DREC_ISSUED, shard, seq
