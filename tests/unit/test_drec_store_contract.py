"""The in-memory D-REC store and the DynamoDB one agree on the conditions of an issuing step (moto, in process)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.domain.certificates import Issuance, PoolableReading, ReadingPooled
from chalicelib.domain.index_keys import shard_of
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
    assert [d["serial"] for d in store.pending_links()] == in_shard_order(["S-1", "S-2"])
    store.link_drecs(store.pending_links())
    assert store.pending_links() == [] and store.serials_of("dev-1") == ["S-1", "S-2"]
    assert [(p, n) for p, _, n in store.pool_totals()] == [(POOL, 1)]


def in_shard_order(serials: list[str]) -> list[str]:
    """The order a write-sharded D-REC index returns these serials in: by shard, then serial."""
    return sorted(serials, key=lambda s: (shard_of(s), s))


def spenders(store: Any, reading_id: str) -> set[str] | None:
    """The serials the reading item holds (None: no such item), as the reading store reads them."""
    if isinstance(store, FakeDrecs):
        return store.spenders.get(reading_id, set()) if reading_id in store.readings else None
    found = store.batch_get("readings", [{"id": reading_id}])
    return set(found[0].get("drec_serials") or ()) if found else None


def test_linking_adds_each_drec_to_the_readings_it_spends_once_and_creates_no_reading(store: Any) -> None:
    # GIVEN a reading split over two D-RECs of one step, and a D-REC naming a reading that is not stored
    drec = {"serial": "S-1", "owner_account_id": "acc-a", "status": "active", "period_start": "2026-10-14",
            "contributions": [{"device_id": "dev-1", "reading_id": "rdg-1", "energy_wh": 1000}]}
    second = {**drec, "serial": "S-2", "contributions": [{"device_id": "dev-1", "reading_id": "rdg-1",
                                                          "energy_wh": 500},
                                                         {"device_id": "dev-1", "reading_id": "rdg-gone",
                                                          "energy_wh": 500}]}
    store.issue(Issuance(pool_id=POOL, from_version=0, state={"v": 1},
                         totals={"owner_account_id": "acc-a", "remainder_wh": 0, "accepted_wh": 1500,
                                 "issued_count": 2},
                         readings=(ReadingPooled("rdg-1", 0, 1500, True),), drecs=(drec, second), events=()))
    assert spenders(store, "rdg-1") == set()  # linked after the step, not in it
    # WHEN they are linked, and linked again (the sweep after a crash)
    store.link_drecs(store.pending_links())
    store.link_drecs([drec, second])
    # THEN the reading names both D-RECs once, and no reading item was made for the missing one
    assert spenders(store, "rdg-1") == {"S-1", "S-2"}
    assert spenders(store, "rdg-gone") is None and store.pending_links() == []


def test_listings_agree_on_filters_vintages_and_pages(store: Any) -> None:
    # GIVEN three D-RECs issued from one reading (two owners, two countries, two vintages), linked
    version, pooled = 0, 0
    for n, owner, country, vintage in ((1, "acc-a", "KE", "2026-10"), (2, "acc-b", "NG", "2026-10"),
                                       (3, "acc-a", "KE", "2026-11")):
        serial = f"DREC-KE-SHS-202610-ABCD2345-{n:08d}"
        drec = {"serial": serial, "owner_account_id": owner, "status": "active", "country": country,
                "device_type": "solar_home_system", "offtaker_type": "household", "vintage": vintage,
                "period_start": f"{vintage}-14T05:00:00Z", "device_ids": ["dev-1"],
                "contributions": [{"device_id": "dev-1", "reading_id": "rdg-1", "energy_wh": 500}]}
        store.issue(Issuance(pool_id=POOL, from_version=version, state={"v": version + 1},
                             totals={"owner_account_id": owner, "remainder_wh": 0, "accepted_wh": pooled + 500,
                                     "issued_count": n},
                             readings=(ReadingPooled("rdg-1", pooled, pooled + 500, pooled + 500 >= 1500),),
                             drecs=(drec,), events=()))
        version, pooled = version + 1, pooled + 500
    store.link_drecs(store.pending_links())

    def listed(limit: int = 50, cursor: str | None = None, **filters: Any) -> tuple[list[int], str | None]:
        vintage = (filters.pop("vintage_from", None), filters.pop("vintage_to", None))
        full = {k: filters.get(k) for k in ("owner_account_id", "status", "country", "device_type",
                                            "offtaker_type", "device_id")}
        page = store.list_drecs(limit, cursor, full, vintage)
        return [int(d["serial"][-8:]) for d in page.items], page.next_cursor

    # WHEN they are listed THEN both stores answer the same D-RECs: in serial order by owner or device,
    # shard after shard by a write-sharded index (status, country, types)
    assert listed()[0] == [int(s[-8:]) for s in in_shard_order([f"DREC-KE-SHS-202610-ABCD2345-{n:08d}"
                                                                  for n in (1, 2, 3)])]
    assert listed(owner_account_id="acc-a")[0] == [1, 3]
    assert listed(owner_account_id="acc-a", status="active")[0] == [1, 3]
    assert listed(country="NG")[0] == [2]
    assert listed(device_id="dev-1")[0] == [1, 2, 3]
    assert listed(owner_account_id="acc-a", vintage_from="2026-11")[0] == [3]
    first, cursor = listed(limit=1, owner_account_id="acc-a")
    assert first == [1] and cursor is not None and listed(limit=1, cursor=cursor, owner_account_id="acc-a")[0] == [3]


class CountingClient:
    """The store's DynamoDB client, adding up the raw items each query reads."""

    def __init__(self, client: Any) -> None:
        self.client, self.read = client, 0

    def query(self, **request: Any) -> Any:
        response = self.client.query(**request)
        self.read += int(response["ScannedCount"])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)


def test_a_filter_that_matches_little_reads_a_bounded_page_and_pages_on_to_every_match_once(store: Any) -> None:
    # GIVEN 5,000 active D-RECs of 2026-10, and three of 2027-01 scattered among them
    later = {17, 2500, 4990}
    records = [{"serial": f"DREC-KE-SHS-202610-ABCD2345-{n:08d}", "owner_account_id": "acc-a", "status": "active",
                "country": "KE", "device_type": "solar_home_system", "offtaker_type": "household",
                "vintage": "2027-01" if n in later else "2026-10", "period_start": "2026-10-14T05:00:00Z",
                "device_ids": ["dev-1"], "contributions": []} for n in range(5000)]
    if isinstance(store, FakeDrecs):
        store.drecs.update({r["serial"]: r for r in records})
    else:
        store.batch_put("drecs", records)
        store.client = CountingClient(store.client)
    filters = {"owner_account_id": None, "status": "active", "country": None, "device_type": None,
               "offtaker_type": None, "device_id": None}

    # WHEN a vintage no D-REC has is asked for
    page = store.list_drecs(50, None, filters, ("9999-01", None))
    # THEN the answer is an empty page that says where to go on, after reading at most the budget
    assert page.items == [] and page.next_cursor is not None
    if isinstance(getattr(store, "client", None), CountingClient):
        assert 0 < store.client.read <= 1000

    # WHEN a client pages on through the 2027-01 ones THEN it meets each match exactly once
    seen, cursor, requests = [], None, 0
    while True:
        page = store.list_drecs(2, cursor, filters, ("2027-01", None))
        seen += [int(d["serial"][-8:]) for d in page.items]
        requests, cursor = requests + 1, page.next_cursor
        if cursor is None:
            break
    assert seen == [int(s[-8:]) for s in in_shard_order([f"DREC-KE-SHS-202610-ABCD2345-{n:08d}" for n in later])]
    assert requests <= 5000 // 1000 + 3
