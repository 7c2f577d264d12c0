"""The move engine, transfers and redemptions on in-memory fakes: exactly once, all or nothing, in milliseconds."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from chalicelib.domain.certificates import DrecSelection
from chalicelib.domain.errors import BadInput, Conflict, Forbidden, NotFound, RuleBroken
from chalicelib.domain.model import Principal
from chalicelib.domain.moves import MoveKind, RedeemDrecs, TransferDrecs
from chalicelib.domain.registry import Account
from chalicelib.services import holdings, moves, redemptions, transfers
from tests.fakes.faults import Crash, Faults
from tests.fakes.ledger import FakeBucket, FakeEvents
from tests.fakes.trading import FakeTrades

OPERATOR = Principal("operator", "operator")
DEV, BUYER, RIVAL = "acc-dev", "acc-buyer", "acc-rival"
PUBLIC = "https://registry.example"


class Accounts:
    """The registry as access rules read it: accounts by id."""

    def __init__(self, *ids: str) -> None:
        self.accounts = {i: Account(i, i, "developer", "KE", "2026-10-01T00:00:00Z", "src-1") for i in ids}

    def principal_for_key_hash(self, key_hash: str) -> tuple[str, str] | None:
        return None

    def account(self, account_id: str) -> Account | None:
        return self.accounts.get(account_id)


def _serial(n: int) -> str:
    return f"DREC-KE-MGR-202610-ABCD-{n:08d}"


def _drec(n: int, owner: str = DEV) -> dict[str, Any]:
    return {"serial": _serial(n), "owner_account_id": owner, "status": "active", "owner_status": f"{owner}#active",
            "period_start": "2026-10-14T05:00:00Z", "period_end": "2026-10-14T13:00:00Z", "vintage": "2026-10",
            "country": "KE", "device_type": "mini_grid", "offtaker_type": "household", "device_ids": ["dev-1"],
            "avoided_co2_kg": 0.5, "hourly_wh": {"2026-10-14T05": 1000},
            "contributions": [{"device_id": "dev-1", "reading_id": "rdg-1", "energy_wh": 1000}]}


def _market(n: int = 8) -> tuple[Accounts, FakeTrades]:
    """GIVEN a developer holding n D-RECs, a buyer and a rival holding none."""
    return Accounts(DEV, BUYER, RIVAL), FakeTrades({_serial(i): _drec(i) for i in range(1, n + 1)}, FakeEvents())


def _transfer(serials: list[str] | None = None, quantity: int | None = None, to: str = BUYER,
              selection: DrecSelection | None = None) -> TransferDrecs:
    request = {"from_account_id": DEV, "to_account_id": to, "serials": serials, "quantity": quantity}
    return TransferDrecs(DEV, to, tuple(serials) if serials else None, quantity, selection, request)


def _held(store: FakeTrades, account: str) -> tuple[int, int]:
    view = holdings.holdings(Accounts(account), store, account)
    return view["active"], view["redeemed"]


def test_the_oldest_matching_drecs_move_and_both_accounts_list_the_transfer() -> None:
    registry, store = _market()
    moved = transfers.transfer(registry, store, OPERATOR, _transfer(quantity=6, selection=DrecSelection(
        country="KE", vintage="2026-10")))
    assert moved["status"] == "completed" and moved["serials"] == [_serial(i) for i in range(1, 7)]
    assert _held(store, BUYER) == (6, 0) and _held(store, DEV) == (2, 0)
    for account in (DEV, BUYER):
        assert [t["transfer_id"] for t in transfers.list_transfers(store, account, 10, None)[0]] == [
            moved["transfer_id"]]
    (event,) = store.events.of_type("DrecTransferred")
    assert event.body["quantity"] == 6 and event.body["device_ids"] == ["dev-1"]
    assert [e.type for e in store.events.of_subject(_serial(1))] == ["DrecTransferred"]


@pytest.mark.parametrize(("command", "error", "field"), [
    (_transfer(serials=[_serial(1), _serial(99)]), NotFound, "serials"),
    (_transfer(quantity=9), RuleBroken, "quantity"),
    (_transfer(serials=[_serial(1)], quantity=1), BadInput, "serials"),
    (_transfer(), BadInput, "serials"),
    (_transfer(serials=[_serial(1), _serial(1)]), BadInput, "serials"),
    (_transfer(quantity=1, to=DEV), RuleBroken, "to_account_id"),
    (_transfer(quantity=1, to="acc-nobody"), NotFound, "to_account_id"),
])
def test_a_bad_transfer_is_refused_and_moves_nothing(command: TransferDrecs, error: type, field: str) -> None:
    registry, store = _market(3)
    with pytest.raises(error) as raised:
        transfers.transfer(registry, store, OPERATOR, command)
    assert raised.value.field == field  # type: ignore[attr-defined]
    assert _held(store, DEV) == (3, 0) and store.events.of_type("DrecTransferred") == []


def test_only_the_account_or_its_source_may_move_its_drecs() -> None:
    registry, store = _market(1)
    with pytest.raises(Forbidden):
        transfers.transfer(registry, store, Principal("account", BUYER), _transfer(quantity=1))
    assert _held(store, DEV) == (1, 0)


def test_a_retry_with_the_key_resumes_a_crashed_transfer_and_moves_nothing_twice(
        monkeypatch: pytest.MonkeyPatch) -> None:
    registry, store = _market()
    monkeypatch.setattr(moves, "CHUNK", 3)
    command = _transfer(quantity=7)
    # GIVEN a transfer whose process dies before its third apply chunk
    with pytest.raises(Crash):
        transfers.transfer(registry, Faults(store).before("apply", 3), OPERATOR, command, "order-42")
    assert _held(store, BUYER) == (6, 0)
    # WHEN it is retried with the same key, twice THEN it completes once and answers the same
    first = transfers.transfer(registry, store, OPERATOR, command, "order-42")
    assert first == transfers.transfer(registry, store, OPERATOR, command, "order-42")
    assert first["quantity"] == 7 and _held(store, BUYER) == (7, 0) and _held(store, DEV) == (1, 0)
    assert len(store.events.of_type("DrecTransferred")) == 1
    # AND the key used for another request is refused
    with pytest.raises(RuleBroken) as raised:
        transfers.transfer(registry, store, OPERATOR, _transfer(quantity=1), "order-42")
    assert raised.value.field == "Idempotency-Key"


def test_two_equal_orders_without_a_key_are_two_moves() -> None:
    registry, store = _market(3)
    first = transfers.transfer(registry, store, OPERATOR, _transfer(quantity=1))
    second = transfers.transfer(registry, store, OPERATOR, _transfer(quantity=1))
    assert first["transfer_id"] != second["transfer_id"] and _held(store, BUYER) == (2, 0)


def test_the_sweep_finishes_an_abandoned_transfer() -> None:
    registry, store = _market(2)
    with pytest.raises(Crash):
        transfers.transfer(registry, Faults(store).always("apply"), OPERATOR, _transfer(quantity=2))
    assert moves.resume_stale(store, transfers.transfer_run(store), older_than_s=-60) == {"completed": 1, "failed": 0}
    assert _held(store, BUYER) == (2, 0)
    assert moves.resume_stale(store, transfers.transfer_run(store), older_than_s=-60) == {"completed": 0, "failed": 0}


def test_a_drec_taken_part_way_undoes_the_whole_transfer(monkeypatch: pytest.MonkeyPatch) -> None:
    registry, store = _market()
    monkeypatch.setattr(moves, "CHUNK", 3)

    def rival_takes_the_seventh() -> None:
        transfers.transfer(registry, store, OPERATOR, _transfer(serials=[_serial(7)], to=RIVAL))

    # WHEN a transfer of all eight meets the D-REC a rival took between its first and second chunk
    with pytest.raises(Conflict) as raised:
        transfers.transfer(registry, Faults(store).before("lock", 2, rival_takes_the_seventh), OPERATOR,
                           _transfer(serials=[_serial(i) for i in range(1, 9)]))
    # THEN the conflict names it, and nothing of the transfer moved or stays locked
    assert _serial(7) in str(raised.value)
    assert _held(store, BUYER) == (0, 0) and _held(store, DEV) == (7, 0)
    assert not [d for d in store.drecs_by_serial.values() if "locked_by" in d]
    (failed,) = [t for t in transfers.list_transfers(store, DEV, 10, None)[0] if t["status"] != "completed"]
    assert failed["status"] == "failed" and failed["failure"]["serial"] == _serial(7)


def test_a_redemption_retires_drecs_for_ever_with_a_ledger_that_hashes_to_its_statement() -> None:
    registry, store = _market(3)
    bucket = FakeBucket()
    transfers.transfer(registry, store, OPERATOR, _transfer(quantity=3))
    command = RedeemDrecs(BUYER, "Acme Ltd", "Scope 2", _date("2026-10-01"), _date("2026-10-31"),
                          serials=(_serial(1), _serial(2)), request={"beneficiary": "Acme Ltd"})
    statement = redemptions.redeem(registry, store, bucket, OPERATOR, command, PUBLIC, "claim-7")
    again = redemptions.redeem(registry, store, bucket, OPERATOR, command, PUBLIC, "claim-7")
    assert again["redemption_id"] == statement["redemption_id"] and again["ledger_url"] != statement["ledger_url"]
    for link in (statement["ledger_url"], again["ledger_url"]):
        data = redemptions.ledger_csv(store, bucket, statement["redemption_id"], link.split("token=")[1])
        assert hashlib.sha256(data).hexdigest() == statement["ledger_sha256"]
    with pytest.raises(Forbidden):
        redemptions.ledger_csv(store, bucket, statement["redemption_id"], "not-the-token")
    assert _held(store, BUYER) == (1, 2) and len(store.events.of_type("DrecRedeemed")) == 1
    assert store.drecs_by_serial[_serial(1)]["redemption_id"] == statement["redemption_id"]
    with pytest.raises(Conflict, match="already redeemed"):
        transfers.transfer(registry, store, OPERATOR, TransferDrecs(BUYER, DEV, (_serial(1),)))


def _date(text: str) -> Any:
    from datetime import date

    return date.fromisoformat(text)


def test_events_relate_every_serial_only_when_the_transaction_has_room() -> None:
    accounts = ("acc-a", "acc-b")
    assert moves.related(accounts, ["dev-1", "s1"], 2) == (("acc-a", "acc-b", "dev-1", "s1"), ())
    serials = [f"s{i}" for i in range(200)]
    assert moves.related(accounts, serials, 2) == (accounts, tuple(serials))
    assert MoveKind.TRANSFERS.value == "transfers"
