"""Routes of the ledger: the event sequence, each event's Merkle proof, and the chain they are anchored on."""

from __future__ import annotations

from typing import Any

from chalice import Blueprint, Response

from .. import bootstrap
from ..config import event_shards
from ..domain.ledger.events import EVENT_TYPES
from ..services import provenance
from . import schemas
from .errors import json_response, page_body
from .openapi import PAGED, Param, one_of, route
from .request import PAGING, incoming, paging

ledger = Blueprint(__name__)


def events_page(c: Any, query: dict[str, str]) -> dict[str, Any]:
    """A page of events, filtered by subject and type, else of one shard (the route's answer, and the verifier's)."""
    shard = provenance.parse_shard(query.get("shard"), c.settings.event_shards)
    page = provenance.list_events(c.events, c.batches, *paging(query), subject_id=query.get("subject_id"),
                                  event_type=query.get("type"), shard=shard)
    return page_body(page)


def event_proof(c: Any, event_id: str) -> dict[str, Any]:
    """The Merkle proof of an anchored event against the ledger contract (the route's answer, and the verifier's)."""
    chain = provenance.ledger_info(c.chain, c.settings)
    return c.proofs.proof(event_id, chain["chain_id"], chain["contract_address"])


SHARD = Param("shard", {"type": "integer", "minimum": 0, "maximum": event_shards() - 1, "default": 0},
              "Without subject_id: the event shard to list, in sequence order (0 .. event_shards - 1 of "
              "GET /ledger; default 0, the registry shard), in ASCII digits. A subject's events span shards "
              "and ignore it.", example=0)


@route(ledger, "get", "/events", "List events: a subject's (every shard, by time), else one shard's in "
       "sequence order; " + PAGING,
       query=PAGED + ("subject_id", one_of("type", EVENT_TYPES), SHARD), items=schemas.EventOut)
def get_events() -> Response:
    return json_response(events_page(bootstrap.container(), incoming(ledger).query))


@route(ledger, "get", "/events/{event_id}", "One event", schemas.EventOut)
def get_event(event_id: str) -> Response:
    c = bootstrap.container()
    return json_response(provenance.get_event(c.events, c.batches, event_id))


@route(ledger, "get", "/events/{event_id}/proof", "Merkle proof of an anchored event", schemas.ProofOut)
def get_event_proof(event_id: str) -> Response:
    return json_response(event_proof(bootstrap.container(), event_id))


@route(ledger, "get", "/ledger", "The chain and ledger contract events are anchored on", schemas.LedgerOut)
def get_ledger() -> Response:
    c = bootstrap.container()
    return json_response(provenance.ledger_info(c.chain, c.settings))
