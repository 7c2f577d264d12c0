"""Anchoring the event sequence on the chain, one Merkle root per batch.

Each run takes the events after the watermark in sequence order (at most
`batch_size`), hashes each canonical event document into a leaf, publishes the
batch's documents as JSON lines to the ledger bucket, and prepares a batch record
BEFORE sending the transaction. A crash after sending finds the prepared record
next time, sees on chain that its root is already anchored, and only records it;
a gap or replay is refused by the contract itself. Failures leave events pending
and back off exponentially.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from ..domain.anchoring import Anchor, Batch, BatchStatus
from ..domain.errors import NotFound
from ..domain.ledger.events import Event, seq_of
from ..domain.ledger.merkle import MerkleTree, from_hex, leaf_hash, to_hex
from ..domain.stores import ChainError
from ..domain.time import iso, now_utc
from ..telemetry import log_by_correlation
from .ports.ledger import Batches, Chain, Events, Files

MAX_BACKOFF_S = 300
TREES_KEPT = 16


def batch_object_key(first_seq: int) -> str:
    return f"batches/{first_seq:012d}.jsonl"


def batch_file(events: list[Event]) -> bytes:
    return b"".join(e.canonical_bytes() + b"\n" for e in events)


def anchor_pending(events: Events, batches: Batches, chain: Chain, bucket: Files,
                   batch_size: int = 1000, max_batches: int = 10) -> dict[str, int]:
    """Anchor what is pending, batch after batch; returns counts of what was done."""
    done = {"batches": 0, "events": 0}
    backoff = batches.backoff()
    if backoff and backoff.retry_at > iso(now_utc()):
        return done
    try:
        for _ in range(max_batches):
            anchored = _anchor_next(events, batches, chain, bucket, batch_size)
            if not anchored:
                break
            done["batches"] += 1
            done["events"] += anchored
    except ChainError as error:
        failures = backoff.failures + 1 if backoff else 1
        delay = min(2 ** failures, MAX_BACKOFF_S)
        batches.note_failure(iso(now_utc() + timedelta(seconds=delay)), failures, str(error)[:500])
        raise
    if backoff:
        batches.clear_backoff()
    return done


def _anchor_next(events: Events, batches: Batches, chain: Chain, bucket: Files,
                 batch_size: int) -> int:
    first = batches.anchored_through() + 1
    prepared = batches.batch(first)
    batch: list[Event] | None = None
    if prepared is None:
        last = min(events.current_seq(), first + batch_size - 1)
        if last < first:
            return 0
        batch = events.events_by_seq(list(range(first, last + 1)))
        if len(batch) != last - first + 1:
            return 0  # an event of this range is not readable yet: next run
        data = batch_file(batch)
        tree = MerkleTree([leaf_hash(e.canonical_bytes()) for e in batch])
        bucket.put(batch_object_key(first), data, "application/x-ndjson")
        prepared = Batch(first_seq=first, count=len(batch), root=to_hex(tree.root),
                         data_sha256=hashlib.sha256(data).hexdigest(), object=batch_object_key(first),
                         status=BatchStatus.PREPARED, prepared_at=iso(now_utc()))
        batches.save_prepared(prepared)
    root = from_hex(prepared.root)
    receipt = chain.find_anchor(root) if chain.next_seq() > first else None
    if receipt is None:
        receipt = chain.anchor_batch(root, first, prepared.count, bytes.fromhex(prepared.data_sha256))
    batches.record_anchored(first, prepared.count, Anchor(receipt.batch_id, prepared.root, receipt.tx_hash,
                                                          receipt.block_number))
    if batch is None:  # prepared by an earlier run: read its events for the log
        batch = events.events_by_seq(list(range(first, first + prepared.count)))
    _log_anchored(batch, prepared, receipt.tx_hash)
    return prepared.count


def _log_anchored(batch: list[Event], prepared: Batch, tx_hash: str) -> None:
    """One line per request whose readings' events this batch anchored (events of no request: one line)."""
    lines: dict[str | None, dict[str, Any]] = {}
    for event in batch:
        for correlation_id in event.correlation_ids or (None,):
            line = lines.setdefault(correlation_id, {"first_seq": prepared.first_seq, "count": prepared.count,
                                                     "root": prepared.root, "tx_hash": tx_hash, "event_ids": []})
            line["event_ids"].append(event.event_id)
    log_by_correlation("events anchored", lines)


class Proofs:
    """Merkle proofs of anchored events, rebuilt from the published batch files."""

    def __init__(self, events: Events, batches: Batches, bucket: Files) -> None:
        self.events = events
        self.batches = batches
        self.bucket = bucket
        # Recent batches' trees (a proof request usually follows others of the same batch); bounded,
        # since a long-lived process would otherwise keep every tree it ever built.
        self._trees: OrderedDict[int, MerkleTree] = OrderedDict()

    def anchor_of(self, seq: int) -> dict[str, Any] | None:
        batch = self.batches.covering(seq)
        return batch.anchor.to_dict() if batch and batch.status is BatchStatus.ANCHORED and batch.anchor else None

    def proof(self, event_id: str, chain_id: int | None, contract_address: str | None) -> dict[str, Any]:
        seq = seq_of(event_id)
        event = self.events.event(seq) if seq else None
        if event is None:
            raise NotFound(f"no event {event_id!r}", field="event_id")
        batch = self.batches.covering(event.seq)
        if not batch or batch.status is not BatchStatus.ANCHORED or batch.anchor is None:
            raise NotFound(f"event {event_id} is not anchored yet; batches are anchored every few seconds",
                           field="event_id")
        tree = self._tree(batch)
        index = event.seq - batch.first_seq
        leaf = leaf_hash(event.canonical_bytes())
        anchor = batch.anchor
        return {"event_id": event_id, "seq": event.seq, "leaf": to_hex(leaf),
                "proof": [to_hex(p) for p in tree.proof(index)], "root": anchor.root,
                "batch_id": anchor.batch_id, "tx_hash": anchor.tx_hash,
                "block_number": anchor.block_number, "first_seq": batch.first_seq,
                "event_count": batch.count, "batch_object": batch.object,
                "batch_sha256": batch.data_sha256, "chain_id": chain_id, "contract_address": contract_address}

    def _tree(self, batch: Batch) -> MerkleTree:
        first = batch.first_seq
        if first in self._trees:
            self._trees.move_to_end(first)
        else:
            data = self.bucket.get(batch.object) or b""
            # Each line is an event's canonical document, exactly the bytes its leaf hashes.
            leaves = [leaf_hash(line) for line in data.split(b"\n") if line]
            self._trees[first] = MerkleTree(leaves)
            while len(self._trees) > TREES_KEPT:
                self._trees.popitem(last=False)
        return self._trees[first]
