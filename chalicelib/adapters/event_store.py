"""Reading the event outbox: by subject, by type, in a shard's sequence order."""

from __future__ import annotations

from collections.abc import Sequence

from ..domain.ledger.events import Event, event_id_for, parse_event_id
from .dynamo import DynamoBase, event_from_item, open_cursor, sign_cursor, type_shard

IN_ORDER = "events in sequence order"


class DynamoEvents(DynamoBase):
    def event(self, event_id: str) -> Event | None:
        found = parse_event_id(event_id)
        item = self.get("events", id=event_id_for(*found)) if found else None
        return event_from_item(item) if item else None

    def events_by_id(self, event_ids: Sequence[str]) -> list[Event]:
        """The stored events of `event_ids`, in the order asked (unknown ids are left out)."""
        keys = {e: event_id_for(*k) for e in dict.fromkeys(event_ids) if (k := parse_event_id(e))}
        found = {e.event_id: e for e in map(event_from_item, self.batch_get("events", [{"id": i}
                                                                                        for i in keys.values()]))}
        return [found[keys[e]] for e in dict.fromkeys(event_ids) if e in keys and keys[e] in found]

    def events_by_seq(self, shard: int, seqs: list[int]) -> list[Event]:
        found = self.events_by_id([event_id_for(shard, s) for s in seqs])
        return sorted(found, key=lambda e: e.seq)

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None, shard: int = 0) -> tuple[list[Event], str | None]:
        """A subject's events (every shard, by position), else one shard's: of a type, or all in order."""
        if subject_id:
            ids, next_cursor = self.subject_event_ids(subject_id, limit, cursor)
            events = self.events_by_id(ids)
            if event_type:
                events = [e for e in events if e.type == event_type]
            return events, next_cursor
        if event_type:
            page = self.query_page("events", "by_type", "type_shard", type_shard(event_type, shard), limit, cursor)
            return [event_from_item(i) for i in page.items], page.next_cursor
        return self.in_order(shard, limit, cursor)

    def subject_event_ids(self, subject_id: str, limit: int, cursor: str | None) -> tuple[list[str], str | None]:
        """The ids of a page of the subject's events (its links, by position), without reading the events."""
        links = self.query_page("event_links", None, "subject_id", subject_id, limit, cursor)
        return [str(link["event_id"]) for link in links.items], links.next_cursor

    def in_order(self, shard: int, limit: int, cursor: str | None) -> tuple[list[Event], str | None]:
        """A shard's events in sequence order: seqs are gap-free, so they are fetched by key, never scanned."""
        scope = f"{IN_ORDER} of shard {shard}"
        start = int(open_cursor(cursor, scope)) if cursor else 1
        newest = self.current_seq(shard)
        last = min(newest, start + limit - 1)
        events = self.events_by_seq(shard, list(range(start, last + 1))) if last >= start else []
        return events, (sign_cursor(str(last + 1), scope) if last < newest else None)
