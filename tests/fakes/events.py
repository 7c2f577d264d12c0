"""The event outbox in memory: events appended with gap-free sequence numbers per shard, as `DynamoBase.commit` does."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.config import event_shards
from chalicelib.domain.ledger.events import Event, NewEvent
from chalicelib.domain.ledger.shards import shard_of


class FakeEventLog:
    def __init__(self, shards: int | None = None) -> None:
        self.shards = event_shards() if shards is None else shards
        self.events: list[Event] = []
        self.counters: dict[int, int] = {}

    def append(self, events: Sequence[NewEvent], shard_key: str | None = None) -> list[Event]:
        shard = shard_of(shard_key, self.shards)
        seq0 = self.counters.get(shard, 0)
        stored = [Event(seq=seq0 + i + 1, type=e.type, subject_id=e.subject_id, source_id=e.source_id,
                        occurred_at=e.occurred_at, body=e.body, related_ids=e.related_ids,
                        correlation_ids=e.correlation_ids, shard=shard)
                  for i, e in enumerate(events)]
        if stored:
            self.counters[shard] = seq0 + len(stored)
        self.events += stored
        return stored

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e.type == event_type]
