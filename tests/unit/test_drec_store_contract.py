"""The in-memory D-REC store and the DynamoDB one agree on the conditions of an issuing step (moto, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.certificates import Issuance, PoolableReading, ReadingPooled
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.stores import TransactionRefused
from tests.fakes.certificates import FakeDrecs

POOL = "acc-a|KE|solar_home_system|household|202610"
READING = PoolableReading(id="rdg-1", device_id="dev-1", owner_account_id="acc-a",
                          period_start="2026-10-14T05:00:00Z", period_end="2026-10-14T13:00:00Z",
                          source_id="src-1", judged_energy_wh=1500)


@pytest.fixture(params=["fake", "dynamo"])
def store(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "fake":
        fake = FakeDrecs()
        fake.accept(READING)
        yield fake
        return
    aws = request.getfixturevalue("aws")
    aws.drecs.batch_put("readings", [{"id": "rdg-1", "device_id": "dev-1", "owner_account_id": "acc-a",
                                      "period_start": READING.period_start, "period_end": READING.period_end,
                                      "source_id": "src-1", "judged_energy_wh": 1500, "status": "accepted",
                                      "pipeline": "pooling"}])
    yield aws.drecs


def _step(version: int, from_wh: int, to_wh: int, serial: str) -> Issuance:
    drec = {"serial": serial, "owner_account_id": "acc-a", "status": "active", "period_start": "2026-10-14",
            "contributions": [{"device_id": "dev-1", "reading_id": "rdg-1", "energy_wh": 1000}]}
    return Issuance(pool_id=POOL, from_version=version, state={"v": version + 1},
                    totals={"owner_account_id": "acc-a", "remainder_wh": 0, "accepted_wh": to_wh, "issued_count": 1},
                    readings=(ReadingPooled("rdg-1", from_wh, to_wh, to_wh >= 1500),), drecs=(drec,),
                    events=(NewEvent("DrecIssued", serial, "operator", "2026-11-01T00:00:00Z", {"serial": serial}),))


def test_an_issuing_step_holds_only_from_the_version_and_pooled_wh_it_read(store: Any) -> None:
    assert store.poolable(["rdg-1", "rdg-x"]) == [READING]
    (event,) = store.issue(_step(0, 0, 1000, "S-1"))
    assert event.body == {"serial": "S-1"} and store.pool(POOL) == ({"v": 1}, 1)
    assert store.poolable(["rdg-1"])[0].pooled_wh == 1000
    for stale in (_step(0, 1000, 1500, "S-2"),   # the pool moved on
                  _step(1, 0, 1000, "S-2"),      # the reading's pooled Wh moved on
                  _step(1, 1000, 1500, "S-1")):  # that D-REC exists
        with pytest.raises(TransactionRefused):
            store.issue(stale)
    assert store.pool(POOL) == ({"v": 1}, 1) and store.drec("S-2") is None
    assert store.drec("S-1").document["contributions"][0]["energy_wh"] == 1000
    store.issue(_step(1, 1000, 1500, "S-2"))
    assert store.poolable(["rdg-1"]) == []  # done: no longer pooling
    assert [d["serial"] for d in store.pending_links()] == ["S-1", "S-2"]
    store.link_drecs(store.pending_links())
    assert store.pending_links() == [] and store.serials_of("dev-1") == ["S-1", "S-2"]
    assert [(p, n) for p, _, n in store.pool_totals()] == [(POOL, 1)]
