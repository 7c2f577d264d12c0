"""Found by test_exactly_once: a D-REC applied by a transfer that has not finished can be moved on
before that transfer's DrecTransferred event exists, so the outbox shows the recipient redeeming a
D-REC it does not yet hold (an auditor's ownership chain breaks)."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict, RuleBroken
from chalicelib.domain.ledger import events as ev
from chalicelib.domain.moves import TransferDrecs
from chalicelib.services import moves
from chalicelib.services.transfers import transfer, transfer_run
from tests.fakes.faults import Crash, Faults
from tests.fakes.ledger import FakeEvents
from tests.fakes.trading import FakeTrades
from tests.fakes.world import OPERATOR, World

SERIAL = "DREC-KE-SHS-202610-ABCD-00000001"


def test_a_drec_applied_by_an_unfinished_transfer_does_not_move_on_before_its_event() -> None:
    # GIVEN a D-REC of account A, and a transfer to B that dies right after applying it
    events = FakeEvents()
    world = World(events=events)  # type: ignore[arg-type]
    source, _ = world.source()
    a, b = (world.account(source, name=n)["account_id"] for n in ("A", "B"))
    trades = FakeTrades({SERIAL: {"serial": SERIAL, "owner_account_id": a, "status": "active",
                                  "owner_status": f"{a}#active", "period_start": "2026-10-14T05:00:00Z",
                                  "period_end": "2026-10-14T13:00:00Z", "vintage": "2026-10", "country": "KE",
                                  "device_type": "solar_home_system", "offtaker_type": "household",
                                  "device_ids": ["dev-1"], "energy_wh": 1000, "contributions": []}}, events)
    with pytest.raises(Crash):
        transfer(world.registry, Faults(trades).after("apply"), OPERATOR,
                 TransferDrecs(a, b, quantity=1, request={"q": 1}), None)

    # WHEN B moves one D-REC on before the sweep finishes the transfer
    try:
        transfer(world.registry, trades, OPERATOR, TransferDrecs(b, a, quantity=1, request={"q": 1}), None)
    except (Conflict, RuleBroken):
        pass  # refused until the transfer is finished (its D-REC is still locked): what we want
    moves.resume_stale(trades, transfer_run(trades), older_than_s=-60)

    # THEN the outbox records the transfer to B before any move by B
    order = [e.body["from_account_id"] for e in sorted(events.stored.values(), key=lambda e: e.seq)
             if e.type == ev.DREC_TRANSFERRED]
    assert order[0] == a, f"B moved the D-REC on before A's transfer to B was recorded: {order}"
