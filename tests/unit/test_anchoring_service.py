"""Anchoring on in-memory fakes: every event of every shard once, in order, through chain outages,
crashes and a chain that lost anchors."""

from __future__ import annotations

import pytest

from chalicelib.domain.anchoring import BatchStatus
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.ledger.merkle import from_hex, leaf_hash, verify_proof
from chalicelib.domain.ledger.shards import device_key, shard_of
from chalicelib.domain.stores import ChainError
from chalicelib.services import provenance
from chalicelib.services.anchoring import Proofs, anchor_pending
from tests.fakes.faults import Crash, Faults
from tests.fakes.ledger import FakeBatches, FakeBucket, FakeChain, FakeEvents


def _events(n: int, events: FakeEvents | None = None, shard_key: str | None = None) -> FakeEvents:
    events = events or FakeEvents()
    events.append([NewEvent("AccountRegistered", f"acc-{i}", "operator", "2026-11-01T00:00:00Z", {"i": i})
                   for i in range(n)], shard_key)
    return events


def _device_in(shard: int, shards: int) -> str:
    return next(f"dev-{i}" for i in range(1000) if shard_of(device_key(f"dev-{i}"), shards) == shard)


def test_events_are_anchored_in_batches_and_each_proof_checks_against_its_root() -> None:
    events, batches, chain, bucket = _events(3), FakeBatches(), FakeChain(), FakeBucket()
    assert anchor_pending(events, batches, chain, bucket, batch_size=2) == {"batches": 2, "events": 3, "rewound": 0}
    assert batches.anchored_through(0) == 3 and chain.next_seq(0) == 4
    assert anchor_pending(events, batches, chain, bucket, batch_size=2)["batches"] == 0
    proof = Proofs(events, batches, bucket).proof("ev-0-000000000002", 31337, "0xabc")
    assert verify_proof(from_hex(proof["leaf"]), [from_hex(p) for p in proof["proof"]], from_hex(proof["root"]))
    assert from_hex(proof["leaf"]) == leaf_hash(events.stored["ev-0-000000000002"].canonical_bytes())
    assert proof["first_seq"] == 1 and proof["event_count"] == 2 and proof["batch_id"] == 1 and proof["shard"] == 0
    # an event id of the unsharded sequence names shard 0
    assert Proofs(events, batches, bucket).proof("ev-000000000002", None, None)["event_id"] == "ev-0-000000000002"
    page = provenance.list_events(events, batches, 10, None)
    assert [e["anchor"]["batch_id"] for e in page.items] == [1, 1, 2]


def test_each_shard_is_anchored_as_its_own_batches_with_its_own_numbers() -> None:
    # GIVEN events in the registry shard and in the shards of two devices
    events, batches, chain, bucket = FakeEvents(shards=8), FakeBatches(), FakeChain(), FakeBucket()
    _events(3, events)
    for shard, count in ((3, 2), (5, 4)):
        _events(count, events, device_key(_device_in(shard, 8)))

    # WHEN one run anchors them
    done = anchor_pending(events, batches, chain, bucket, batch_size=1000)

    # THEN each shard is a batch of its own, numbered from 1, in its own file, and each proof names its shard
    assert (done["batches"], done["events"]) == (3, 9)
    assert {s: chain.next_seq(s) for s in (0, 3, 5)} == {0: 4, 3: 3, 5: 5}
    assert sorted(bucket.objects) == ["batches/0/000000000001.jsonl", "batches/3/000000000001.jsonl",
                                      "batches/5/000000000001.jsonl"]
    proof = Proofs(events, batches, bucket).proof("ev-5-000000000004", None, None)
    assert (proof["shard"], proof["seq"], proof["first_seq"], proof["event_count"]) == (5, 4, 1, 4)
    assert verify_proof(from_hex(proof["leaf"]), [from_hex(p) for p in proof["proof"]], from_hex(proof["root"]))
    assert [e["seq"] for e in provenance.list_events(events, batches, 10, None, shard=5).items] == [1, 2, 3, 4]


def test_a_run_is_bounded_and_serves_the_shards_round_robin_most_pending_first() -> None:
    events, batches, chain, bucket = FakeEvents(shards=8), FakeBatches(), FakeChain(), FakeBucket()
    for shard, count in ((0, 6), (2, 2), (4, 1)):
        _events(count, events, device_key(_device_in(shard, 8)) if shard else None)
    done = anchor_pending(events, batches, chain, bucket, batch_size=2, max_batches=3)
    # one batch of each pending shard before a second batch of any
    assert done["batches"] == 3 and {s: batches.anchored_through(s) for s in (0, 2, 4)} == {0: 2, 2: 2, 4: 1}
    anchor_pending(events, batches, chain, bucket, batch_size=2, max_batches=3)
    assert batches.anchored_through(0) == 6


def test_a_chain_outage_backs_off_and_the_backlog_is_anchored_once_it_returns() -> None:
    events, batches, chain, bucket = _events(2), FakeBatches(), FakeChain(), FakeBucket()
    chain.down = True
    with pytest.raises(ChainError):
        anchor_pending(events, batches, chain, bucket)
    backoff = batches.backoff()
    assert backoff is not None and backoff.failures == 1 and batches.anchored_through(0) == 0
    # while backing off, nothing is tried
    chain.down = False
    assert anchor_pending(events, batches, chain, bucket)["batches"] == 0
    batches.clear_backoff()
    assert anchor_pending(events, batches, chain, bucket) == {"batches": 1, "events": 2, "rewound": 0}
    assert batches.backoff() is None and chain.next_seq(0) == 3


def test_a_crash_between_sending_and_recording_is_healed_without_sending_twice() -> None:
    events, batches, chain, bucket = _events(2), FakeBatches(), FakeChain(), FakeBucket()
    with pytest.raises(Crash):
        anchor_pending(events, Faults(batches).always("record_anchored"), chain, bucket)
    prepared = batches.batch(0, 1)
    assert prepared is not None and prepared.status is BatchStatus.PREPARED and len(chain.roots) == 1
    assert anchor_pending(events, batches, chain, bucket) == {"batches": 1, "events": 2, "rewound": 0}
    assert len(chain.roots) == 1 and batches.anchored_through(0) == 2


def test_a_chain_that_lost_anchors_is_anchored_again_from_the_stored_batches_with_the_same_roots() -> None:
    # GIVEN events 1..35 of shard 0 anchored in batches of 7 (as the e2e chaos test saw it), and 5 more
    events, batches, chain, bucket = _events(35), FakeBatches(), FakeChain(), FakeBucket()
    anchor_pending(events, batches, chain, bucket, batch_size=7, max_batches=100)
    roots = {first: batches.batch(0, first).root for first in range(1, 36, 7)}  # type: ignore[union-attr]
    _events(5, events)
    # WHEN the chain restarts from an older state: it holds 1..14 of shard 0 only and expects 15
    chain.forget_after(0, 14)
    with pytest.raises(ChainError, match="expected=15, given=36"):  # what anchoring did before it healed
        chain.anchor_batch(0, b"\x01" * 32, 36, 5, b"\x00" * 32)

    # THEN the next run puts the watermark back, anchors 15..35 again with the same roots, then 36..40
    done = anchor_pending(events, batches, chain, bucket, batch_size=7, max_batches=100)
    assert done == {"batches": 4, "events": 26, "rewound": 1}
    assert batches.anchored_through(0) == 40 and chain.next_seq(0) == 41
    assert all(from_hex(roots[first]) in chain.roots for first in roots)
    proof = Proofs(events, batches, bucket).proof("ev-0-000000000020", None, None)
    assert proof["root"] == roots[15] and from_hex(proof["root"]) in chain.roots


def test_a_chain_behind_the_store_where_no_batch_of_the_store_starts_is_refused_not_rewound() -> None:
    events, batches, chain, bucket = _events(10), FakeBatches(), FakeChain(), FakeBucket()
    anchor_pending(events, batches, chain, bucket, batch_size=5)
    chain.forget_after(0, 2)  # not a boundary of ours: another ledger's history
    with pytest.raises(ChainError, match="no batch of the store starts at 3"):
        anchor_pending(events, batches, chain, bucket, batch_size=5)
    assert batches.anchored_through(0) == 10
