"""The ports of the ledger: the event outbox, the anchored batches, and the files published beside them."""

from __future__ import annotations

from typing import Any, Protocol

from ...domain.events import Event


class Events(Protocol):
    """The append-only event sequence (appended by the stores' writes, read here)."""

    def current_seq(self) -> int: ...

    def event(self, seq: int) -> Event | None: ...

    def events_by_seq(self, seqs: list[int]) -> list[Event]: ...

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None) -> tuple[list[Event], str | None]: ...


class Batches(Protocol):
    """Batches of events and the anchoring watermark.

    `save_prepared` holds only when no batch starts at that seq; `record_anchored` moves the
    watermark only from `first_seq - 1`, in the same step as it marks the batch anchored.
    """

    def anchored_through(self) -> int: ...

    def batch(self, first_seq: int) -> dict[str, Any] | None: ...

    def save_prepared(self, record: dict[str, Any]) -> None: ...

    def record_anchored(self, first_seq: int, count: int, anchor: dict[str, Any]) -> None: ...

    def covering(self, seq: int) -> dict[str, Any] | None: ...

    def note_failure(self, retry_at: str, failures: int, error: str) -> None: ...

    def backoff(self) -> dict[str, Any] | None: ...

    def clear_backoff(self) -> None: ...


class Files(Protocol):
    """A bucket of published files (batch files, redemption ledgers)."""

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None: ...

    def get(self, key: str) -> bytes | None: ...
