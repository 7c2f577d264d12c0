"""Reading D-RECs (services/certificates.py) on the in-memory D-REC store: filters, paging, one D-REC."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.domain.errors import BadInput, NotFound
from chalicelib.services import certificates
from tests.fakes.certificates import FakeDrecs

PREFIX = "DREC-KE-SHS-202610-ABCD2345-"


def _store() -> FakeDrecs:
    """Five D-RECs: 1–3 of acc-a (3 redeemed), 4 of acc-b in Nigeria, 5 of acc-a of November; device links."""
    store = FakeDrecs()
    for n, owner, country, vintage, status in ((1, "acc-a", "KE", "2026-10", "active"),
                                               (2, "acc-a", "KE", "2026-10", "active"),
                                               (3, "acc-a", "KE", "2026-10", "redeemed"),
                                               (4, "acc-b", "NG", "2026-10", "active"),
                                               (5, "acc-a", "KE", "2026-11", "active")):
        serial = f"{PREFIX}{n:08d}"
        store.drecs[serial] = {
            "serial": serial, "owner_account_id": owner, "status": status, "country": country,
            "device_type": "solar_home_system", "offtaker_type": "household", "vintage": vintage,
            "energy_wh": 1000, "period_start": f"{vintage}-14T05:00:00Z", "period_end": f"{vintage}-14T13:00:00Z",
            "device_ids": [f"dev-{n % 2}"], "hourly_wh": {"05": 1000},
            "contributions": [{"device_id": f"dev-{n % 2}", "reading_id": f"rdg-{n}", "energy_wh": 1000,
                               "signer": None, "signature": None, "source_id": "src-1"}]}
        store.links.setdefault(f"dev-{n % 2}", []).append(serial)
    return store


def _serials(page: Any) -> list[int]:
    return [int(d["serial"][-8:]) for d in page.items]


def test_filters_select_by_owner_status_country_device_and_vintage() -> None:
    store = _store()
    # listings by a fleet-wide value (status, country) come shard after shard (write-sharded index keys)
    assert sorted(_serials(certificates.list_drecs(store, 50, None, {}))) == [1, 2, 4, 5]  # active by default
    assert _serials(certificates.list_drecs(store, 50, None, {"owner_account_id": "acc-a"})) == [1, 2, 3, 5]
    assert _serials(certificates.list_drecs(store, 50, None, {"status": "redeemed"})) == [3]
    assert _serials(certificates.list_drecs(store, 50, None, {"country": "NG"})) == [4]
    assert _serials(certificates.list_drecs(store, 50, None, {"device_id": "dev-1"})) == [1, 3, 5]
    assert _serials(certificates.list_drecs(store, 50, None, {"owner_account_id": "acc-a",
                                                                "vintage_from": "2026-11"})) == [5]
    assert _serials(certificates.list_drecs(store, 50, None, {"owner_account_id": "acc-a",
                                                                "vintage_to": "2026-10"})) == [1, 2, 3]


def test_pages_follow_the_cursor_to_the_end() -> None:
    store = _store()
    first = certificates.list_drecs(store, 2, None, {"owner_account_id": "acc-a"})
    second = certificates.list_drecs(store, 2, first.next_cursor, {"owner_account_id": "acc-a"})
    assert (_serials(first), _serials(second), second.next_cursor) == ([1, 2], [3, 5], None)


@pytest.mark.parametrize("query", [{"status": "burnt"}, {"vintage_from": "2026-1"}, {"vintage_to": "October"}])
def test_bad_filters_are_refused_naming_the_field(query: dict[str, str]) -> None:
    with pytest.raises(BadInput) as refused:
        certificates.list_drecs(_store(), 50, None, query)
    assert refused.value.field == next(iter(query))


def test_one_drec_shows_its_contributions_and_events_and_an_unknown_serial_is_404() -> None:
    store = _store()
    view = certificates.detail(certificates.get_drec(store, f"{PREFIX}00000002"), [{"event_id": "ev-1"}])
    assert view["contributions"] == [{"device_id": "dev-0", "reading_id": "rdg-2", "energy_wh": 1000,
                                      "period_start": None, "period_end": None, "source_id": "src-1",
                                      "signer": None, "signature": None}]
    assert view["events"] == [{"event_id": "ev-1"}] and view["hourly_wh"] == {"05": 1000}
    with pytest.raises(NotFound):
        certificates.get_drec(store, f"{PREFIX}00000099")
