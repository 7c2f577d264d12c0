"""In-memory ledger: the event outbox (gap-free seqs, links per subject), batches, a bucket and a chain."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from chalicelib.domain.anchoring import Anchor, Backoff, Batch, BatchStatus
from chalicelib.domain.ledger.events import Event, NewEvent
from chalicelib.domain.stores import ChainError, TransactionRefused


class FakeEvents:
    def __init__(self) -> None:
        self.stored: dict[int, Event] = {}
        self.links: dict[str, list[int]] = {}

    def append(self, events: Sequence[NewEvent]) -> list[Event]:
        """What the outbox does inside the caller's transaction: the next numbers, and a link per subject."""
        seq0 = self.current_seq()
        out = [Event(seq0 + i + 1, e.type, e.subject_id, e.source_id, e.occurred_at, e.body, e.related_ids,
                     e.correlation_ids)
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

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None) -> tuple[list[Event], str | None]:
        found = self.of_subject(subject_id) if subject_id else list(self.stored.values())
        found = [e for e in found if event_type is None or e.type == event_type]
        start = int(cursor) if cursor else 0
        return found[start:start + limit], str(start + limit) if start + limit < len(found) else None

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


class FakeBatches:
    """Batches and the anchoring watermark, with the adapter's conditions."""

    def __init__(self) -> None:
        self.batches: dict[int, Batch] = {}
        self.watermark = 0
        self.failure: Backoff | None = None

    def anchored_through(self) -> int:
        return self.watermark

    def batch(self, first_seq: int) -> Batch | None:
        return self.batches.get(first_seq)

    def save_prepared(self, batch: Batch) -> None:
        if batch.first_seq in self.batches:
            raise ValueError("a batch already starts there")  # the adapter's conditional put fails too
        self.batches[batch.first_seq] = batch

    def record_anchored(self, first_seq: int, count: int, anchor: Anchor) -> None:
        if self.watermark != first_seq - 1:
            raise TransactionRefused([None, "ConditionalCheckFailed"])
        self.batches[first_seq] = dataclasses.replace(self.batches[first_seq], status=BatchStatus.ANCHORED,
                                                      anchor=anchor)
        self.watermark = first_seq + count - 1

    def covering(self, seq: int) -> Batch | None:
        before = [b for first, b in self.batches.items() if first <= seq]
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
    """The ledger contract's rule: a batch must start at the next sequence number; roots are found by value."""

    def __init__(self) -> None:
        self.roots: dict[bytes, FakeReceipt] = {}
        self.next = 1
        self.down = False

    def next_seq(self) -> int:
        self._reachable()
        return self.next

    def find_anchor(self, root: bytes) -> FakeReceipt | None:
        self._reachable()
        return self.roots.get(root)

    def anchor_batch(self, root: bytes, first_seq: int, event_count: int, data_hash: bytes) -> FakeReceipt:
        self._reachable()
        if first_seq != self.next:
            raise ChainError(f"LedgerGap({self.next}, {first_seq})")
        receipt = FakeReceipt(len(self.roots) + 1, f"0x{len(self.roots) + 1:064x}", 100 + len(self.roots))
        self.roots[root] = receipt
        self.next += event_count
        return receipt

    def _reachable(self) -> None:
        if self.down:
            raise ChainError("the chain is unreachable")
