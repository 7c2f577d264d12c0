"""The event outbox in memory: events appended with gap-free sequence numbers, as `DynamoBase.commit` does."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.ledger.events import Event, NewEvent


class FakeEventLog:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        seq0 = len(self.events)
        stored = [Event(seq=seq0 + i + 1, type=e.type, subject_id=e.subject_id, source_id=e.source_id,
                        occurred_at=e.occurred_at, body=e.body, related_ids=e.related_ids,
                        correlation_ids=e.correlation_ids)
                  for i, e in enumerate(events)]
        self.events += stored
        return stored

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]
