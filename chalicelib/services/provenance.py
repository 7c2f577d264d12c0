"""Reading the event sequence as the public sees it."""

from __future__ import annotations

from typing import Any

from ..domain.anchoring import Batch, BatchStatus
from ..domain.errors import BadInput, NotFound
from ..domain.ledger.events import EVENT_TYPES, Event, parse_event_id
from ..domain.ledger.merkle import leaf_hash, to_hex
from ..domain.privacy import public_rpc_hint
from ..domain.stores import Page
from .ports.ledger import Batches, Events


class Anchors:
    """The anchor of each event's batch, looked up once per batch."""

    def __init__(self, batches: Batches) -> None:
        self.batches = batches
        self.seen: list[Batch] = []

    def of(self, shard: int, seq: int) -> dict[str, Any] | None:
        for seen in self.seen:
            if seen.shard == shard and seen.covers(seq):
                return seen.anchor.to_dict() if seen.anchor else None
        batch = self.batches.covering(shard, seq)
        if batch and batch.status is BatchStatus.ANCHORED:
            self.seen.append(batch)
            return batch.anchor.to_dict() if batch.anchor else None
        return None


def event_view(event: Event, anchors: Anchors) -> dict[str, Any]:
    return {**event.document(), "leaf": to_hex(leaf_hash(event.canonical_bytes())),
            "anchor": anchors.of(event.shard, event.seq)}


def parse_shard(raw: str | None, shards: int) -> int:
    """The `shard` of a listing: 0 (the registry shard) unless given, as one of 0 .. shards - 1."""
    if raw is None:
        return 0
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5) or int(raw) >= shards:
        raise BadInput(f"shard must be an integer from 0 to {shards - 1} (the event shards of this registry)",
                       field="shard")
    return int(raw)


def list_events(store: Events, batches: Batches, limit: int, cursor: str | None,
                subject_id: str | None = None, event_type: str | None = None, shard: int = 0) -> Page:
    """A subject's events (every shard, by time), else one shard's: of a type, or all, in sequence order."""
    if event_type and event_type not in EVENT_TYPES:
        raise BadInput(f"type must be one of {', '.join(EVENT_TYPES)}", field="type")
    events, next_cursor = store.list_events(limit, cursor, subject_id, event_type, shard)
    anchors = Anchors(batches)
    return Page([event_view(e, anchors) for e in events], next_cursor)


def get_event(store: Events, batches: Batches, event_id: str) -> dict[str, Any]:
    event = store.event(event_id) if parse_event_id(event_id) else None
    if not event:
        raise NotFound(f"no event {event_id!r}", field="event_id")
    return event_view(event, Anchors(batches))


def ledger_info(chain: Any, settings: Any) -> dict[str, Any]:
    if chain is None:
        return {"chain_id": None, "contract_address": None, "rpc_hint": None,
                "event_shards": settings.event_shards,
                "note": "no chain configured (DREC_CHAIN_RPC, DREC_LEDGER_ADDRESS)"}
    # The configured RPC URL may carry a provider key (user info, path, query): never publish it as is.
    hint = public_rpc_hint(settings.chain_rpc, settings.chain_rpc_public)
    return {"chain_id": chain.chain_id, "contract_address": chain.contract_address, "rpc_hint": hint,
            "event_shards": settings.event_shards}
