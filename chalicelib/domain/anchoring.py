"""Batches of events anchored on the chain, as records: a batch is prepared, then anchored."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any


class BatchStatus(str, Enum):
    PREPARED = "prepared"  # its file is published and its root computed; the chain may or may not hold it
    ANCHORED = "anchored"  # the chain holds its root, and the watermark has passed it


@dataclass(frozen=True)
class Anchor:
    """Where the chain holds a batch's root."""

    batch_id: int
    root: str
    tx_hash: str
    block_number: int

    def to_dict(self) -> dict[str, Any]:
        return {"batch_id": self.batch_id, "root": self.root, "tx_hash": self.tx_hash,
                "block_number": self.block_number}


@dataclass(frozen=True)
class Batch:
    """Events `first_seq .. first_seq + count - 1` of `shard`, their Merkle root (hex) and their published file."""

    shard: int
    first_seq: int
    count: int
    root: str
    data_sha256: str
    object: str
    status: BatchStatus
    prepared_at: str
    anchor: Anchor | None = None

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq < self.first_seq + self.count


@dataclass(frozen=True)
class Backoff:
    """Anchoring failed `failures` times in a row; the next try waits until `retry_at` (ISO)."""

    retry_at: str
    failures: int
    error: str = ""
