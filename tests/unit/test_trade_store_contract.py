"""The in-memory trade store and the DynamoDB one agree on what the move engine relies on (moto, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.certificates import DrecSelection, DrecStatus
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.moves import DrecChange, MoveKind, MoveStatus, Transfer
from chalicelib.domain.stores import TransactionRefused
from tests.fakes.trading import FakeTrades

SERIALS = [f"DREC-KE-MGR-202610-ABCD-{n:08d}" for n in range(1, 4)]


def _drec(serial: str, owner: str = "acc-a") -> dict[str, Any]:
    return {"serial": serial, "owner_account_id": owner, "status": "active", "owner_status": f"{owner}#active",
            "period_start": "2026-10-14T05:00:00Z", "vintage": "2026-10", "country": "KE",
            "device_type": "mini_grid", "offtaker_type": "household", "device_ids": ["dev-1"]}


@pytest.fixture(params=["fake", "dynamo"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    drecs = {s: _drec(s) for s in SERIALS} | {"DREC-KE-MGR-202610-ABCD-00000009": _drec(
        "DREC-KE-MGR-202610-ABCD-00000009", "acc-other")}
    if request.param == "fake":
        yield FakeTrades(drecs)
        return
    aws = request.getfixturevalue("aws")
    aws.drecs.batch_put("drecs", list(drecs.values()))
    yield aws.trades


def _move(move_id: str = "trf-1", serials: list[str] = SERIALS, key: str | None = "k-1") -> Transfer:
    return Transfer(id=move_id, account_id="acc-a", from_account_id="acc-a", to_account_id="acc-b",
                    serials=tuple(serials), device_ids=("dev-1",), status=MoveStatus.LOCKING,
                    created_at="2026-11-01T00:00:00Z", principal_id="operator", request_sha256="h",
                    idempotency_key=key)


def test_a_move_is_stored_once_and_its_key_guards_it(store: Any) -> None:
    move = _move()
    store.start(move)
    assert store.move(MoveKind.TRANSFERS, "trf-1") == move
    assert store.idempotent_target(MoveKind.TRANSFERS, "operator", "k-1") == "trf-1"
    with pytest.raises(TransactionRefused):
        store.start(_move("trf-2"))  # the same key
    assert store.move(MoveKind.TRANSFERS, "trf-2") is None


def test_lock_apply_finish_hold_only_on_their_conditions(store: Any) -> None:
    move = _move()
    store.start(move)
    # a stale counter is refused, naming the record
    with pytest.raises(TransactionRefused) as stale:
        store.lock(move, SERIALS[:2], 1, False)
    assert stale.value.reasons[-1] and not any(stale.value.reasons[:-1])
    store.lock(move, SERIALS[:2], 0, False)
    # a D-REC held by someone else is refused, naming the D-REC
    with pytest.raises(TransactionRefused) as taken:
        store.lock(move, [SERIALS[2], "DREC-KE-MGR-202610-ABCD-00000009"], 2, True)
    assert taken.value.reasons[:2] == [None, "ConditionalCheckFailed"]
    store.lock(move, SERIALS[2:], 2, True)
    locked = store.move(MoveKind.TRANSFERS, "trf-1")
    assert (locked.status, locked.locked) == (MoveStatus.APPLYING, 3)
    assert [d.locked_by for d in store.drecs(SERIALS)] == ["trf-1"] * 3
    assert store.set_status(locked, MoveStatus.LOCKING, MoveStatus.RELEASING) is False
    with pytest.raises(TransactionRefused):
        store.finish(locked, "2026-11-01T00:01:00Z", "acc-b", NewEvent("DrecTransferred", "trf-1", "operator",
                                                                         "2026-11-01T00:01:00Z", {}))
    changes = [DrecChange(s, "acc-b", DrecStatus.ACTIVE, {"last_transfer_id": "trf-1"}) for s in SERIALS]
    store.apply(locked, changes, 0)
    with pytest.raises(TransactionRefused):
        store.apply(locked, changes, 0)  # a replay finds the counter moved
    event = store.finish(locked, "2026-11-01T00:01:00Z", "acc-b", NewEvent(
        "DrecTransferred", "trf-1", "operator", "2026-11-01T00:01:00Z", {"quantity": 3}))
    assert event.body == {"quantity": 3}
    # the event is recorded while every D-REC is still locked: nobody moves one on before it exists
    recorded = store.move(MoveKind.TRANSFERS, "trf-1")
    assert recorded.status is MoveStatus.UNLOCKING and recorded.completed_at == "2026-11-01T00:01:00Z"
    assert [(d.owner_account_id, d.locked_by) for d in store.drecs(SERIALS)] == [("acc-b", "trf-1")] * 3
    assert [m.id for m in store.unfinished(MoveKind.TRANSFERS, "2027")] == ["trf-1"]
    with pytest.raises(TransactionRefused):
        store.release(recorded, SERIALS, 3)  # unlocking is not releasing
    store.release(recorded, SERIALS, 3, MoveStatus.UNLOCKING)
    assert store.set_status(recorded, MoveStatus.UNLOCKING, MoveStatus.COMPLETED)
    done = store.move(MoveKind.TRANSFERS, "trf-1")
    assert done.status is MoveStatus.COMPLETED
    assert [(d.owner_account_id, d.locked_by) for d in store.drecs(SERIALS)] == [("acc-b", None)] * 3
    for account in ("acc-a", "acc-b"):
        assert [m.id for m in store.by_account(MoveKind.TRANSFERS, account, 10, None)[0]] == ["trf-1"]
    assert sorted(d.serial for d in store.active_holdings("acc-b", DrecSelection(vintage="2026-10"))) == SERIALS
    assert list(store.active_holdings("acc-b", DrecSelection(country="GB"))) == []
    assert list(store.unfinished(MoveKind.TRANSFERS, "2027")) == []


def test_release_undoes_only_this_moves_locks(store: Any) -> None:
    move = _move(key=None)
    store.start(move)
    store.lock(move, SERIALS[:2], 0, False)
    assert store.set_status(move, MoveStatus.LOCKING, MoveStatus.RELEASING, {"message": "m", "serial": "s"})
    releasing = store.move(MoveKind.TRANSFERS, "trf-1")
    assert releasing.failure == {"message": "m", "serial": "s"}
    assert [m.id for m in store.unfinished(MoveKind.TRANSFERS, "2027")] == ["trf-1"]
    store.release(releasing, SERIALS[:2], 2)
    assert [d.locked_by for d in store.drecs(SERIALS)] == [None] * 3
