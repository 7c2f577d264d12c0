"""The in-memory batch store and the DynamoDB one agree on the watermarks and on which batch covers a seq, per shard."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.anchoring import Anchor, Batch, BatchStatus
from chalicelib.domain.stores import TransactionRefused
from tests.fakes.ledger import FakeBatches


@pytest.fixture(params=["fake", "dynamo"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    yield FakeBatches() if request.param == "fake" else request.getfixturevalue("aws").batches


def _batch(first: int, count: int, shard: int = 0) -> Batch:
    return Batch(shard=shard, first_seq=first, count=count, root="0x" + "ab" * 32, data_sha256="cd" * 32,
                 object=f"batches/{shard}/{first:012d}.jsonl", status=BatchStatus.PREPARED,
                 prepared_at="2026-11-01T00:00:00Z")


def test_the_watermark_moves_only_from_where_it_was(store: Any) -> None:
    store.save_prepared(_batch(1, 2))
    assert store.batch(0, 1) == _batch(1, 2) and store.covering(0, 2) == _batch(1, 2)
    assert store.covering(0, 3) is None
    store.save_prepared(_batch(3, 1))
    with pytest.raises(TransactionRefused):
        store.record_anchored(0, 3, 1, Anchor(2, "0x", "0x2", 2))  # batch 1 is not anchored yet
    anchor = Anchor(1, "0x" + "ab" * 32, "0x1", 7)
    store.record_anchored(0, 1, 2, anchor)
    assert store.anchored_through(0) == 2
    assert store.covering(0, 1).status is BatchStatus.ANCHORED and store.covering(0, 1).anchor == anchor
    store.note_failure("2026-11-01T00:05:00Z", 2, "down")
    assert store.backoff().failures == 2
    store.clear_backoff()
    assert store.backoff() is None


def test_each_shard_has_its_own_batches_and_watermark(store: Any) -> None:
    store.save_prepared(_batch(1, 2, shard=3))
    assert store.batch(0, 1) is None and store.covering(0, 1) is None and store.covering(3, 2) == _batch(1, 2, 3)
    store.save_prepared(_batch(1, 5, shard=0))  # the same first seq in another shard is another batch
    store.record_anchored(3, 1, 2, Anchor(1, "0x" + "ab" * 32, "0x1", 7))
    assert (store.anchored_through(3), store.anchored_through(0)) == (2, 0)
    assert store.anchored_throughs(4) == [0, 0, 0, 2]  # every watermark in one read agrees


def test_the_watermark_is_put_back_only_from_where_it_was(store: Any) -> None:
    store.save_prepared(_batch(1, 4, shard=2))
    store.record_anchored(2, 1, 4, Anchor(1, "0x" + "ab" * 32, "0x1", 7))
    with pytest.raises(TransactionRefused):
        store.rewind(2, 3, 0)  # not where it is
    store.rewind(2, 4, 0)
    assert store.anchored_through(2) == 0
    store.record_anchored(2, 1, 4, Anchor(5, "0x" + "ab" * 32, "0x9", 9))  # anchored again
    assert store.anchored_through(2) == 4 and store.covering(2, 3).anchor.tx_hash == "0x9"
