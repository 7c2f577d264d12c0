"""Start-up checks (infra.recovery): the event counter against the stored events and the chain."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain.errors import Conflict
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.ledger.shards import device_key
from infra.recovery import StoreInconsistent, check_shards, check_store, highest_stored_seq
from tests.conftest import PREFIX


def _event(n: int) -> NewEvent:
    return NewEvent(type="DeviceRegistered", subject_id=f"dev-{n}", source_id="test",
                    occurred_at="2026-01-01T00:00:00Z", body={"n": n})


def _append(store: Any, count: int) -> None:
    for n in range(count):
        store.commit([], [_event(n)], attempts=3)


def _set_counter(value: int) -> None:
    boto3.client("dynamodb").put_item(TableName=f"{PREFIX}-counters",
                                      Item={"name": {"S": "event_seq#0"}, "value": {"N": str(value)}})


@given(stored=st.integers(0, 5000), hint=st.integers(0, 6000))
def test_highest_stored_seq_finds_the_end_of_the_prefix_from_any_hint(stored: int, hint: int) -> None:
    reads: list[int] = []

    def exists(seq: int) -> bool:
        reads.append(seq)
        return 1 <= seq <= stored

    assert highest_stored_seq(exists, hint) == stored
    assert len(reads) <= 4 * max(stored, hint, 2).bit_length() + 2  # point reads, never a scan


def test_a_restored_counter_behind_the_events_wedges_writes_and_is_raised(aws: Any) -> None:
    # GIVEN five events, and a counter restored from an older cut that says two
    _append(aws.events, 5)
    _set_counter(2)
    with pytest.raises(Conflict):  # the wedge: every write takes a number already stored
        aws.events.commit([], [_event(99)], attempts=3)

    # WHEN the start-up check runs
    findings = check_store(boto3.client("dynamodb"), PREFIX, anchored_through=5)

    # THEN the counter is raised to the highest stored event, and writes work again
    assert (findings.counter, findings.highest_event) == (2, 5)
    assert "raised from 2 to 5" in findings.repairs[0]
    assert [e.seq for e in aws.events.commit([], [_event(6)])] == [6]


def test_a_counter_ahead_of_the_events_is_lowered_so_the_outbox_has_no_gap(aws: Any) -> None:
    _append(aws.events, 3)
    _set_counter(7)  # events 4..7 lost with the snapshot

    findings = check_store(boto3.client("dynamodb"), PREFIX, anchored_through=3)

    assert "lowered from 7 to 3" in findings.repairs[0]
    assert [e.seq for e in aws.events.commit([], [_event(4)])] == [4]
    events, _ = aws.events.in_order(0, 10, None)
    assert [e.seq for e in events] == [1, 2, 3, 4]


def test_a_consistent_store_is_left_alone(aws: Any) -> None:
    _append(aws.events, 4)
    findings = check_store(boto3.client("dynamodb"), PREFIX, anchored_through=2)
    assert (findings.counter, findings.highest_event, findings.repairs) == (4, 4, [])


def test_an_empty_store_with_no_chain_is_consistent(aws: Any) -> None:
    findings = check_store(boto3.client("dynamodb"), PREFIX, anchored_through=None)
    assert (findings.counter, findings.highest_event, findings.repairs) == (0, 0, [])


def test_a_chain_ahead_of_the_store_refuses_to_start_and_says_what_to_do(aws: Any) -> None:
    _append(aws.events, 3)
    _set_counter(9)

    with pytest.raises(StoreInconsistent) as refused:
        check_store(boto3.client("dynamodb"), PREFIX, anchored_through=6)

    message = str(refused.value)
    assert "anchored events 1..6" in message and "events 1..3 only" in message
    assert "make clean" in message and "Restore" in message
    # Nothing was repaired: the operator chooses
    counter = boto3.client("dynamodb").get_item(TableName=f"{PREFIX}-counters", Key={"name": {"S": "event_seq#0"}})
    assert counter["Item"]["value"]["N"] == "9"


def test_every_shard_is_checked_against_its_own_counter_and_the_chain(aws: Any) -> None:
    # GIVEN two events in a device's shard, whose counter was restored at 0, and the registry shard untouched
    shard = aws.events.shard_for(device_key("dev-7"))
    for n in range(2):
        aws.events.commit([], [_event(n)], shard_key=device_key("dev-7"))
    boto3.client("dynamodb").put_item(TableName=f"{PREFIX}-counters",
                                      Item={"name": {"S": f"event_seq#{shard}"}, "value": {"N": "0"}})
    # WHEN every shard is checked; THEN that shard's counter is raised, and no other shard is touched
    found = check_shards(boto3.client("dynamodb"), PREFIX, None, aws.events.shards)
    assert [(f.counter, f.highest_event) for f in found if f.repairs] == [(0, 2)]
    assert f"shard {shard}'s event counter raised from 0 to 2" in found[shard].repairs[0]
    # and a chain that anchored more of that shard than the store holds refuses to start
    anchored = [0] * aws.events.shards
    anchored[shard] = 5
    with pytest.raises(StoreInconsistent, match=f"of shard {shard}"):
        check_shards(boto3.client("dynamodb"), PREFIX, anchored, aws.events.shards)
