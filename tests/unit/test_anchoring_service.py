"""Anchoring on in-memory fakes: every event once, in order, through chain outages and crashes."""

from __future__ import annotations

import pytest

from chalicelib.domain.anchoring import BatchStatus
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.ledger.merkle import from_hex, leaf_hash, verify_proof
from chalicelib.domain.stores import ChainError
from chalicelib.services import provenance
from chalicelib.services.anchoring import Proofs, anchor_pending
from tests.fakes.faults import Crash, Faults
from tests.fakes.ledger import FakeBatches, FakeBucket, FakeChain, FakeEvents


def _events(n: int, events: FakeEvents | None = None) -> FakeEvents:
    events = events or FakeEvents()
    events.append([NewEvent("AccountRegistered", f"acc-{i}", "operator", "2026-11-01T00:00:00Z", {"i": i})
                   for i in range(n)])
    return events


def test_events_are_anchored_in_batches_and_each_proof_checks_against_its_root() -> None:
    events, batches, chain, bucket = _events(3), FakeBatches(), FakeChain(), FakeBucket()
    assert anchor_pending(events, batches, chain, bucket, batch_size=2) == {"batches": 2, "events": 3}
    assert batches.anchored_through() == 3 and chain.next_seq() == 4
    assert anchor_pending(events, batches, chain, bucket, batch_size=2) == {"batches": 0, "events": 0}
    proof = Proofs(events, batches, bucket).proof("ev-000000000002", 31337, "0xabc")
    assert verify_proof(from_hex(proof["leaf"]), [from_hex(p) for p in proof["proof"]], from_hex(proof["root"]))
    assert from_hex(proof["leaf"]) == leaf_hash(events.stored[2].canonical_bytes())
    assert proof["first_seq"] == 1 and proof["event_count"] == 2 and proof["batch_id"] == 1
    page = provenance.list_events(events, batches, 10, None)
    assert [e["anchor"]["batch_id"] for e in page.items] == [1, 1, 2]


def test_a_chain_outage_backs_off_and_the_backlog_is_anchored_once_it_returns() -> None:
    events, batches, chain, bucket = _events(2), FakeBatches(), FakeChain(), FakeBucket()
    chain.down = True
    with pytest.raises(ChainError):
        anchor_pending(events, batches, chain, bucket)
    backoff = batches.backoff()
    assert backoff is not None and backoff.failures == 1 and batches.anchored_through() == 0
    # while backing off, nothing is tried
    chain.down = False
    assert anchor_pending(events, batches, chain, bucket) == {"batches": 0, "events": 0}
    batches.clear_backoff()
    assert anchor_pending(events, batches, chain, bucket) == {"batches": 1, "events": 2}
    assert batches.backoff() is None and chain.next_seq() == 3


def test_a_crash_between_sending_and_recording_is_healed_without_sending_twice() -> None:
    events, batches, chain, bucket = _events(2), FakeBatches(), FakeChain(), FakeBucket()
    with pytest.raises(Crash):
        anchor_pending(events, Faults(batches).always("record_anchored"), chain, bucket)
    prepared = batches.batch(1)
    assert prepared is not None and prepared.status is BatchStatus.PREPARED and len(chain.roots) == 1
    assert anchor_pending(events, batches, chain, bucket) == {"batches": 1, "events": 2}
    assert len(chain.roots) == 1 and batches.anchored_through() == 2
