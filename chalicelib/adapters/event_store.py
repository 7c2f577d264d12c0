"""Reading the event outbox: by subject, by type, in sequence order."""

from __future__ import annotations

from ..domain.ledger.events import Event
from .dynamo import DynamoBase, event_from_item, open_cursor, sign_cursor

IN_ORDER = "events in sequence order"


class DynamoEvents(DynamoBase):
    def event(self, seq: int) -> Event | None:
        item = self.get("events", seq=seq)
        return event_from_item(item) if item else None

    def events_by_seq(self, seqs: list[int]) -> list[Event]:
        found = self.batch_get("events", [{"seq": s} for s in seqs])
        return sorted((event_from_item(i) for i in found), key=lambda e: e.seq)

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None) -> tuple[list[Event], str | None]:
        if subject_id:
            seqs, next_cursor = self.subject_seqs(subject_id, limit, cursor)
            events = self.events_by_seq(seqs)
            if event_type:
                events = [e for e in events if e.type == event_type]
            return events, next_cursor
        if event_type:
            page = self.query_page("events", "by_type", "type", event_type, limit, cursor)
            return [event_from_item(i) for i in page.items], page.next_cursor
        return self.in_order(limit, cursor)

    def subject_seqs(self, subject_id: str, limit: int, cursor: str | None) -> tuple[list[int], str | None]:
        """The seqs of a page of the subject's events (its links), without reading the events."""
        links = self.query_page("event_links", None, "subject_id", subject_id, limit, cursor)
        return [int(link["seq"]) for link in links.items], links.next_cursor

    def in_order(self, limit: int, cursor: str | None) -> tuple[list[Event], str | None]:
        """Events in sequence order: seqs are gap-free, so they are fetched by key, never scanned."""
        start = int(open_cursor(cursor, IN_ORDER)) if cursor else 1
        newest = self.current_seq()
        last = min(newest, start + limit - 1)
        events = self.events_by_seq(list(range(start, last + 1))) if last >= start else []
        return events, (sign_cursor(str(last + 1), IN_ORDER) if last < newest else None)
