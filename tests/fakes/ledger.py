"""In-memory event outbox: gap-free sequence numbers, links from each subject to its events."""

from __future__ import annotations

from collections.abc import Sequence

from chalicelib.domain.events import Event, NewEvent


class FakeEvents:
    def __init__(self) -> None:
        self.stored: dict[int, Event] = {}
        self.links: dict[str, list[int]] = {}

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        """What the outbox does inside the caller's transaction: the next numbers, and a link per subject."""
        seq0 = self.current_seq()
        out = [Event(seq0 + i + 1, e.type, e.subject_id, e.source_id, e.occurred_at, e.body, e.related_ids)
               for i, e in enumerate(events)]
        for event in out:
            self.stored[event.seq] = event
            for subject in dict.fromkeys((event.subject_id, *event.related_ids)):
                self.link(subject, event.seq)
        return out

    def link(self, subject: str, seq: int) -> None:
        seqs = self.links.setdefault(subject, [])
        if seq not in seqs:
            seqs.append(seq)

    def current_seq(self) -> int:
        return max(self.stored, default=0)

    def event(self, seq: int) -> Event | None:
        return self.stored.get(seq)

    def events_by_seq(self, seqs: list[int]) -> list[Event]:
        return [self.stored[s] for s in sorted(seqs) if s in self.stored]

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.stored.values() if e.type == event_type]

    def of_subject(self, subject_id: str) -> list[Event]:
        return self.events_by_seq(self.links.get(subject_id, []))


class FakeBucket:
    """An S3 bucket of objects in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes | str, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = data.encode() if isinstance(data, str) else data

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)
