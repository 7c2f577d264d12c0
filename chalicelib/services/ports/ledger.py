"""The ports of the ledger: the event outbox, the anchored batches, and the files published beside them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ...domain.anchoring import Anchor, Backoff, Batch
from ...domain.ledger.events import Event


class Events(Protocol):
    """The append-only event sequences, one per shard (appended by the stores' writes, read here)."""

    @property
    def shards(self) -> int: ...

    def current_seq(self, shard: int) -> int: ...

    def current_seqs(self) -> list[int]:
        """Every shard's newest seq, in shard order, in one read."""
        ...

    def event(self, event_id: str) -> Event | None: ...

    def events_by_id(self, event_ids: Sequence[str]) -> list[Event]: ...

    def events_by_seq(self, shard: int, seqs: list[int]) -> list[Event]: ...

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None, shard: int = 0) -> tuple[list[Event], str | None]: ...


class Batches(Protocol):
    """Batches of events and the anchoring watermark, per shard.

    `save_prepared` holds only when no batch of that shard starts at that seq; `record_anchored`
    moves the shard's watermark only from `first_seq - 1`, in the same step as it marks the batch
    anchored. `rewind` puts a shard's watermark back (the chain lost anchors it had recorded).
    """

    def anchored_through(self, shard: int) -> int: ...

    def anchored_throughs(self, shards: int) -> list[int]:
        """Every shard's watermark, in shard order, in one read."""
        ...

    def batch(self, shard: int, first_seq: int) -> Batch | None: ...

    def save_prepared(self, batch: Batch) -> None: ...

    def record_anchored(self, shard: int, first_seq: int, count: int, anchor: Anchor) -> None: ...

    def rewind(self, shard: int, old: int, new: int) -> None: ...

    def covering(self, shard: int, seq: int) -> Batch | None: ...

    def note_failure(self, retry_at: str, failures: int, error: str) -> None: ...

    def backoff(self) -> Backoff | None: ...

    def clear_backoff(self) -> None: ...


class Files(Protocol):
    """A bucket of published files (batch files, redemption ledgers)."""

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes | None: ...


class Receipt(Protocol):
    @property
    def batch_id(self) -> int: ...

    @property
    def tx_hash(self) -> str: ...

    @property
    def block_number(self) -> int: ...


class Chain(Protocol):
    """The ledger contract: it refuses a batch that does not start at its shard's `next_seq(shard)`
    (no gap, no replay). Failures to reach it raise `adapters.chain.ChainError`.
    """

    def next_seq(self, shard: int) -> int: ...

    def next_seqs(self, shards: int) -> list[int]: ...

    def find_anchor(self, root: bytes) -> Receipt | None: ...

    def anchor_batch(self, shard: int, root: bytes, first_seq: int, event_count: int,
                     data_hash: bytes) -> Receipt: ...
