"""Issuance on in-memory fakes: 1000 Wh per D-REC, exactly once under replays, races and crashes."""

from __future__ import annotations

import pytest

from chalicelib.domain.certificates import DrecStatus, PoolableReading
from chalicelib.domain.issuance.keys import PoolingConfig
from chalicelib.services import issuance, stats
from chalicelib.services.issuance import Issuer
from chalicelib.services.maintenance import finish_links
from tests.fakes.certificates import FakeDevices, FakeDrecs
from tests.fakes.faults import Crash, Faults

OWNER = "acc-dev"


def _device(device_type: str = "solar_home_system") -> dict[str, object]:
    return {"country": "KE", "device_type": device_type, "offtaker_type": "household", "grid_connected": False}


def _fleet(energy_wh: list[int], device_type: str = "solar_home_system") -> tuple[FakeDevices, FakeDrecs, list[str]]:
    """GIVEN one accepted reading per device, of energy_wh[i] Wh each, all of one owner and month."""
    drecs = FakeDrecs()
    devices = FakeDevices({f"dev-{i}": _device(device_type) for i in range(len(energy_wh))})
    ids = []
    for i, wh in enumerate(energy_wh):
        drecs.accept(PoolableReading(id=f"rdg-{i}", device_id=f"dev-{i}", owner_account_id=OWNER,
                                     period_start="2026-10-14T05:00:00Z", period_end="2026-10-14T13:00:00Z",
                                     source_id="src-1", judged_energy_wh=wh))
        ids.append(f"rdg-{i}")
    return devices, drecs, ids


def test_three_readings_of_400_wh_make_one_drec_with_200_wh_left() -> None:
    devices, drecs, ids = _fleet([400, 400, 400])
    assert Issuer(devices, drecs, PoolingConfig()).issue(ids) == {"drecs": 1, "readings": 3}
    (drec,) = drecs.drecs.values()
    assert drec["serial"].startswith("DREC-KE-SHS-202610-") and drec["serial"].endswith("-00000001")
    assert sum(c["energy_wh"] for c in drec["contributions"]) == 1000 == drec["energy_wh"]
    assert drec["status"] == DrecStatus.ACTIVE.value and drec["vintage"] == "2026-10"
    ((_, accepted_wh, issued),) = drecs.pool_totals()
    assert (accepted_wh, issued) == (1200, 1)
    assert [e.type for e in drecs.events.stored.values()] == ["DrecIssued"]
    # the third reading was split: 200 Wh issued, 200 Wh waiting in the pool, and it is done
    assert drecs.poolable(ids) == []
    assert drecs.serials_of("dev-2") == [drec["serial"]]
    assert stats.registry_stats(drecs)["issuance_by_month"] == [{"month": "2026-10", "count": 1}]


def test_replaying_a_batch_changes_nothing() -> None:
    devices, drecs, ids = _fleet([777] * 4)
    issuer = Issuer(devices, drecs, PoolingConfig())
    issuer.issue(ids)
    before = (dict(drecs.drecs), dict(drecs.events.stored))
    assert issuer.issue(ids + ids) == {"drecs": 0, "readings": 0}
    assert (drecs.drecs, drecs.events.stored) == before and len(drecs.drecs) == 3


def test_a_big_reading_spans_many_transactions_without_loss() -> None:
    devices, drecs, ids = _fleet([40_500], "mini_grid")
    faulty = Faults(drecs)
    Issuer(devices, faulty, PoolingConfig()).issue(ids)
    assert [int(s[-8:]) for s in sorted(drecs.drecs)] == list(range(1, 41))
    assert faulty.calls["issue"] == 3  # 15 D-RECs a transaction
    assert drecs.pool_totals()[0][1:] == (40_500, 40)


def test_a_pool_moved_by_another_handler_is_read_again_and_nothing_is_issued_twice() -> None:
    devices, drecs, ids = _fleet([600, 600])
    rival = Issuer(devices, drecs, PoolingConfig())
    # GIVEN another handler issuing the same readings just before this one commits
    racing = Faults(drecs).before("issue", 1, lambda: rival.issue(ids))
    Issuer(devices, racing, PoolingConfig()).issue(ids)
    assert len(drecs.drecs) == 1 and drecs.pool_totals()[0][1:] == (1200, 1)


def test_links_lost_in_a_crash_are_written_by_the_sweep() -> None:
    devices, drecs, ids = _fleet([40_000], "mini_grid")
    # GIVEN the handler dies right after the first issuing transaction, before writing links
    with pytest.raises(Crash):
        Issuer(devices, Faults(drecs).always("link_drecs"), PoolingConfig()).issue(ids)
    assert len(drecs.drecs) == 15 and drecs.serials_of("dev-0") == []
    # WHEN the sweep runs THEN the device finds its D-RECs
    assert finish_links(drecs) == 15 and len(drecs.serials_of("dev-0")) == 15
    assert finish_links(drecs) == 0


def test_issued_events_carry_what_a_verifier_needs() -> None:
    devices, drecs, ids = _fleet([1000])
    Issuer(devices, drecs, PoolingConfig()).issue(ids)
    (event,) = drecs.events.stored.values()
    assert event.body["contributions"] == [["dev-0", "rdg-0", 1000, None, None]]
    assert event.related_ids == (OWNER,) and issuance.DRECS_PER_COMMIT == 15


def test_an_issuer_that_read_its_readings_before_a_rival_pooled_them_reads_again() -> None:
    # GIVEN readings of two pools (two device types), read by issuer A; right after A reads the first
    # pool, issuer B (a duplicate delivery) pools every reading
    drecs = FakeDrecs()
    devices = FakeDevices({"dev-0": _device(), "dev-1": _device(), "dev-2": _device("mini_grid")})
    ids = [f"rdg-{i}" for i in range(3)]
    for i, reading_id in enumerate(ids):
        drecs.accept(PoolableReading(id=reading_id, device_id=f"dev-{i}", owner_account_id=OWNER,
                                     period_start="2026-10-14T05:00:00Z", period_end="2026-10-14T13:00:00Z",
                                     source_id="src-1", judged_energy_wh=999))
    rival = Issuer(devices, drecs, PoolingConfig())
    racing = Faults(drecs).after("pool", 1, lambda: rival.issue(ids))
    # WHEN A goes on: its first pool moved on under it, and its second pool already holds a reading
    # A read as unpooled
    Issuer(devices, racing, PoolingConfig()).issue(ids)
    # THEN A reads again instead of failing, and every Wh is pooled once
    totals = drecs.pool_totals()
    assert sorted((accepted, issued) for _, accepted, issued in totals) == [(999, 0), (1998, 1)]
    assert len(drecs.drecs) == 1 and drecs.poolable(ids) == []
