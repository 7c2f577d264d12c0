"""In-memory ledger: the event outbox (gap-free seqs, links per subject), batches, a bucket and a chain."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from chalicelib.config import event_shards
from chalicelib.domain.anchoring import Anchor, Backoff, Batch, BatchStatus
from chalicelib.domain.ledger.events import Event, NewEvent, event_id_for, parse_event_id
from chalicelib.domain.ledger.shards import shard_of
from chalicelib.domain.stores import ChainError, TransactionRefused


class FakeEvents:
    def __init__(self, shards: int | None = None) -> None:
        self.shards = event_shards() if shards is None else shards
        self.stored: dict[str, Event] = {}
        self.counters: dict[int, int] = {}
        self.links: dict[str, list[str]] = {}

    def append(self, events: Sequence[NewEvent], shard_key: str | None = None) -> list[Event]:
        """What the outbox does inside the caller's transaction: the shard's next numbers, and a link per subject."""
        shard = shard_of(shard_key, self.shards)
        seq0 = self.current_seq(shard)
        out = [Event(seq0 + i + 1, e.type, e.subject_id, e.source_id, e.occurred_at, e.body, e.related_ids,
                     e.correlation_ids, shard)
               for i, e in enumerate(events)]
        for event in out:
            self.stored[event.event_id] = event
            self.counters[shard] = event.seq
            for subject in dict.fromkeys((event.subject_id, *event.related_ids)):
                self.link(subject, event)
        return out

    def link(self, subject: str, event: Event) -> None:
        """Links sort by position (time, shard, seq), as `event_links` does."""
        ids = self.links.setdefault(subject, [])
        if event.event_id not in ids:
            ids.append(event.event_id)
            ids.sort(key=lambda i: self.stored[i].position)

    def current_seq(self, shard: int) -> int:
        return self.counters.get(shard, 0)

    def current_seqs(self) -> list[int]:
        return [self.current_seq(s) for s in range(self.shards)]

    def event(self, event_id: str) -> Event | None:
        key = parse_event_id(event_id)
        return self.stored.get(event_id_for(*key)) if key else None

    def events_by_id(self, event_ids: Sequence[str]) -> list[Event]:
        return [e for e in (self.event(i) for i in dict.fromkeys(event_ids)) if e is not None]

    def events_by_seq(self, shard: int, seqs: list[int]) -> list[Event]:
        return self.events_by_id([event_id_for(shard, s) for s in sorted(seqs)])

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None, shard: int = 0) -> tuple[list[Event], str | None]:
        if subject_id:
            found = self.of_subject(subject_id)
        else:
            found = self.events_by_seq(shard, list(range(1, self.current_seq(shard) + 1)))
        found = [e for e in found if event_type is None or e.type == event_type]
        start = int(cursor) if cursor else 0
        return found[start:start + limit], str(start + limit) if start + limit < len(found) else None

    def of_type(self, event_type: str) -> list[Event]:
        return [e for e in self.stored.values() if e.type == event_type]

    def of_subject(self, subject_id: str) -> list[Event]:
        return self.events_by_id(self.links.get(subject_id, []))

    def in_shard(self, shard: int) -> list[Event]:
        return self.events_by_seq(shard, list(range(1, self.current_seq(shard) + 1)))


class FakeBucket:
    """An S3 bucket of objects in a dict."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put(self, key: str, data: bytes | str, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = data.encode() if isinstance(data, str) else data

    def get(self, key: str) -> bytes | None:
        return self.objects.get(key)


class FakeBatches:
    """Batches and the anchoring watermarks per shard, with the adapter's conditions."""

    def __init__(self) -> None:
        self.batches: dict[tuple[int, int], Batch] = {}
        self.watermarks: dict[int, int] = {}
        self.failure: Backoff | None = None

    def anchored_through(self, shard: int) -> int:
        return self.watermarks.get(shard, 0)

    def anchored_throughs(self, shards: int) -> list[int]:
        return [self.anchored_through(s) for s in range(shards)]

    def batch(self, shard: int, first_seq: int) -> Batch | None:
        return self.batches.get((shard, first_seq))

    def save_prepared(self, batch: Batch) -> None:
        if (batch.shard, batch.first_seq) in self.batches:
            raise ValueError("a batch already starts there")  # the adapter's conditional put fails too
        self.batches[(batch.shard, batch.first_seq)] = batch

    def record_anchored(self, shard: int, first_seq: int, count: int, anchor: Anchor) -> None:
        if self.anchored_through(shard) != first_seq - 1:
            raise TransactionRefused([None, "ConditionalCheckFailed"])
        self.batches[(shard, first_seq)] = dataclasses.replace(self.batches[(shard, first_seq)],
                                                               status=BatchStatus.ANCHORED, anchor=anchor)
        self.watermarks[shard] = first_seq + count - 1

    def rewind(self, shard: int, old: int, new: int) -> None:
        if self.anchored_through(shard) != old:
            raise TransactionRefused(["ConditionalCheckFailed"])
        self.watermarks[shard] = new

    def covering(self, shard: int, seq: int) -> Batch | None:
        before = [b for (s, first), b in self.batches.items() if s == shard and first <= seq]
        last = max(before, key=lambda b: b.first_seq, default=None)
        return last if last and last.covers(seq) else None

    def note_failure(self, retry_at: str, failures: int, error: str) -> None:
        self.failure = Backoff(retry_at, failures, error)

    def backoff(self) -> Backoff | None:
        return self.failure

    def clear_backoff(self) -> None:
        self.failure = None


@dataclasses.dataclass(frozen=True)
class FakeReceipt:
    batch_id: int
    tx_hash: str
    block_number: int


class FakeChain:
    """The ledger contract's rule: a shard's batch must start at its next sequence number; roots are found by value."""

    def __init__(self) -> None:
        self.roots: dict[bytes, FakeReceipt] = {}
        self.ranges: dict[bytes, tuple[int, int]] = {}  # root -> (shard, first seq)
        self.next: dict[int, int] = {}
        self.down = False

    def next_seq(self, shard: int) -> int:
        self._reachable()
        return self.next.get(shard, 1)

    def next_seqs(self, shards: int) -> list[int]:
        self._reachable()
        return [self.next.get(s, 1) for s in range(shards)]

    def find_anchor(self, root: bytes) -> FakeReceipt | None:
        self._reachable()
        return self.roots.get(root)

    def anchor_batch(self, shard: int, root: bytes, first_seq: int, event_count: int,
                     data_hash: bytes) -> FakeReceipt:
        self._reachable()
        expected = self.next.get(shard, 1)
        if first_seq != expected:
            raise ChainError(f"DrecLedgerSequenceMismatch(shard={shard}, expected={expected}, given={first_seq})")
        if root in self.roots:
            raise ChainError("DrecLedgerRootAlreadyAnchored")
        receipt = FakeReceipt(len(self.roots) + 1, f"0x{len(self.roots) + 1:064x}", 100 + len(self.roots))
        self.roots[root] = receipt
        self.ranges[root] = (shard, first_seq)
        self.next[shard] = first_seq + event_count
        return receipt

    def forget_after(self, shard: int, through: int) -> None:
        """As a chain restarted from an older state dump: the shard's anchors after `through` are lost."""
        self.next[shard] = through + 1
        for root in [r for r, (s, first) in self.ranges.items() if s == shard and first > through]:
            del self.roots[root]
            del self.ranges[root]

    def _reachable(self) -> None:
        if self.down:
            raise ChainError("the chain is unreachable")
