"""Reading the event sequence as the public sees it."""

from __future__ import annotations

from typing import Any

from ..adapters.dynamo import Page
from ..adapters.event_store import DynamoEvents
from ..domain.errors import BadInput, NotFound
from ..domain.events import EVENT_TYPES, Event, seq_of


def event_view(event: Event) -> dict[str, Any]:
    return {**event.document(), "leaf": leaf_hex(event), "anchor": event.anchor}


def leaf_hex(event: Event) -> str | None:
    try:
        from ..domain.merkle import leaf_hash
    except ImportError:  # the ledger module arrives with the chain adapter
        return None
    return "0x" + leaf_hash(event.canonical_bytes()).hex()


def list_events(store: DynamoEvents, limit: int, cursor: str | None, subject_id: str | None = None,
                event_type: str | None = None) -> Page:
    if event_type and event_type not in EVENT_TYPES:
        raise BadInput(f"type must be one of {', '.join(EVENT_TYPES)}", field="type")
    events, next_cursor = store.list_events(limit, cursor, subject_id, event_type)
    return Page([event_view(e) for e in events], next_cursor)


def get_event(store: DynamoEvents, event_id: str) -> dict[str, Any]:
    seq = seq_of(event_id)
    event = store.event(seq) if seq else None
    if not event:
        raise NotFound(f"no event {event_id!r}", field="event_id")
    return event_view(event)
