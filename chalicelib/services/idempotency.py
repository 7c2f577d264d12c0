"""Idempotency of moves: a request with an `Idempotency-Key` stores a guard naming its record.

The same key finds the same record, so a retry resumes the move where it stopped and
answers as the first request did. Without the header every request is a new move: two
equal orders are two orders (a body is not an identity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from ..domain.errors import Conflict, RuleBroken
from ..domain.ledger.canonical import canonical_json
from ..domain.model import Principal
from ..domain.moves import Move, MoveKind
from ..domain.stores import TransactionRefused
from .ports.trading import Trades


def request_hash(principal: Principal, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"principal": principal.id, "body": dict(body)})).hexdigest()


def replay(store: Trades, kind: MoveKind, principal: Principal, idempotency_key: str | None,
           request_sha: str) -> Move | None:
    """The move this caller's `idempotency_key` already started (to resume, or to answer again), or None."""
    if idempotency_key is None:
        return None
    existing = store.idempotent_target(kind, principal.id, idempotency_key)
    if not existing:
        return None
    move = store.move(kind, existing)
    if move is None:
        raise Conflict("the Idempotency-Key names a request that was never stored; use a new key",
                       field="Idempotency-Key")
    _same_request(move, request_sha)
    return move


def _same_request(move: Move, request_sha: str) -> None:
    if move.request_sha256 != request_sha:
        raise RuleBroken(f"this Idempotency-Key was used for another request ({move.id}); send that "
                         "request again to get its answer, or use a new key for a new request",
                         field="Idempotency-Key")


def start_or_join(store: Trades, move: Move) -> Move:
    """Store a new move record; when a concurrent request with the same key won, its record."""
    try:
        store.start(move)
        return move
    except TransactionRefused as refused:
        key = move.idempotency_key
        winner = store.idempotent_target(move.kind, move.principal_id, key) if key else None
        found = store.move(move.kind, winner) if winner else None
        if found is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry it",
                           field="Idempotency-Key") from refused
        _same_request(found, move.request_sha256)
        return found
