"""A fleet of neighbours on the running stack (issue 13, "Done when"): honest devices near each other are
accepted, one inflating a day ×1.5 is flagged with its neighbours' figures, one inflating ×1.3 for a week goes
under review, its later readings are held, and the operator's clear sends them back to be judged again.

13 devices within ~10 km of Nairobi, different capacity, tilt and azimuth, one week of hourly daylight
readings each, sent hour by hour for the whole fleet in one request: the twin's clear-sky energy of the
hour × one cloud factor per hour shared by the fleet (the same clouds pass over all of them) × (1 ± 2 %)
per device and hour. A reading judged before enough of its neighbours waits for them (awaiting_peers),
at most DREC_PEER_WAIT_S: set here to cover the time the pipeline takes over the whole push.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chalicelib.domain.registry import Device
from chalicelib.domain.twin.physics import clear_sky_energy
from chalicelib.services.twins import twin_of
from tests.conftest import device_body
from tests.e2e.conftest import RunningStack, started_stack, wait_for

DAYS = 7
FIRST_DAY = date(2026, 11, 2)
HOURS_UTC = range(5, 14)  # 08:00-17:00 in Nairobi: the sun well up
INFLATED_DAY = 3  # device A reports this day ×1.5
A, B = 0, 1  # device B reports the whole week ×1.3
PEER_WAIT_S = 300
# (capacity [W], tilt [deg], azimuth [deg], north [km], east [km]) of each device; all within ~10 km.
FLEET = [(300, 10, 0, 0.0, 0.0), (250, 15, 180, 1.5, -2.0), (100, 5, 90, -3.0, 1.0), (150, 12, 270, 2.5, 3.5),
         (400, 20, 0, -4.5, -3.0), (200, 8, 180, 3.8, 0.5), (120, 10, 45, -1.2, 4.4), (350, 18, 315, 0.8, -4.6),
         (180, 6, 135, -2.7, -1.1), (260, 14, 225, 4.6, -0.3), (90, 10, 0, -0.6, 2.2), (320, 16, 180, 1.9, 1.7),
         (140, 9, 270, -3.9, 3.0)]
KM_PER_DEG = 111.0


@pytest.fixture
def fleet_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """A stack of the test's own, its validator waiting at most PEER_WAIT_S for neighbours."""
    with started_stack(tmp_path, DREC_PEER_WAIT_S=str(PEER_WAIT_S)) as running:
        yield running


def _register(stack: RunningStack) -> tuple[str, list[dict[str, Any]]]:
    source = stack.post("/sources", {"name": "Fleet aggregator", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Fleet Dev", "kind": "developer", "country": "KE"}, key=key).json()
    devices = []
    for capacity, tilt, azimuth, north, east in FLEET:
        body = device_body(account["account_id"], capacity_w=capacity, tilt_deg=tilt, azimuth_deg=azimuth,
                           latitude=round(-1.29 + north / KM_PER_DEG, 5), longitude=round(36.82 + east / KM_PER_DEG, 5),
                           device_type="rooftop_pv")
        created = stack.post("/devices", body, key=key)
        assert created.status_code == 201, created.text
        devices.append(created.json())
    return key, devices


def _hours() -> list[datetime]:
    return [datetime.combine(FIRST_DAY + timedelta(days=d), datetime.min.time(), UTC) + timedelta(hours=h)
            for d in range(DAYS) for h in HOURS_UTC]


def _readings(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(13)
    hours = _hours()
    clouds = rng.uniform(0.3, 1.0, len(hours))  # one per hour, shared by the fleet
    readings = []
    for i, record in enumerate(devices):
        twin = twin_of(Device(**{k: tuple(v) if k == "linke_turbidity" else v for k, v in record.items()
                                 if k in Device.__dataclass_fields__}))
        clear = clear_sky_energy([twin] * len(hours), hours, [h + timedelta(hours=1) for h in hours]).clear_sky_wh
        energy = clear * clouds * (1 + rng.uniform(-0.02, 0.02, len(hours)))
        for n, hour in enumerate(hours):
            factor = 1.3 if i == B else 1.5 if i == A and (hour.date() - FIRST_DAY).days == INFLATED_DAY else 1.0
            readings.append({"device_id": record["device_id"], "period_start": hour.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "period_end": (hour + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                             "energy_wh": max(1, round(float(energy[n]) * factor))})
    # Hour by hour for the whole fleet, as an aggregator sends what its devices reported
    return sorted(readings, key=lambda r: (r["period_start"], r["device_id"]))


def _all(stack: RunningStack, path: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = stack.get(path, limit=1000, **params, **({"cursor": cursor} if cursor else {})).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


PROGRESS: list[tuple[float, int, int]] = []  # (monotonic s, queued, awaiting_peers): shown when a wait times out


def _settled(stack: RunningStack) -> bool:
    """Nothing queued for the validator nor waiting for neighbours."""
    left = [len(_all(stack, "/readings", status=s)) for s in ("queued", "awaiting_peers")]
    PROGRESS.append((time.monotonic(), *left))
    return not any(left)


def _wait_settled(stack: RunningStack, what: str, timeout_s: float) -> None:
    PROGRESS.clear()
    try:
        wait_for(what, lambda: _settled(stack), timeout_s=timeout_s)
    finally:
        t0 = PROGRESS[0][0] if PROGRESS else 0.0
        print(f"{what}: (s, queued, awaiting_peers) " + " ".join(
            f"({t - t0:.0f},{q},{a})" for t, q, a in PROGRESS[::max(1, len(PROGRESS) // 12)] + PROGRESS[-1:]))


def _day(reading: dict[str, Any]) -> int:
    return (date.fromisoformat(reading["period_start"][:10]) - FIRST_DAY).days


def test_a_fleet_of_neighbours_catches_inflation_and_puts_a_steady_inflater_under_review(
        fleet_stack: RunningStack) -> None:
    stack = fleet_stack
    key, devices = _register(stack)
    readings = _readings(devices)
    # WHEN the fleet's week is pushed in one request
    pushed = stack.post("/readings", {"readings": readings}, key=key)
    assert pushed.status_code == 202 and not pushed.json()["errors"], pushed.text[:2000]
    # A reading whose period never gets DREC_PEER_MIN neighbours waits out PEER_WAIT_S, then the sweep
    # (every minute) sends it to be judged on climatology: wait longer than both.
    _wait_settled(stack, "every reading judged", float(os.environ.get("FLEET_WAIT_S", str(PEER_WAIT_S + 120))))
    views = {d["device_id"]: _all(stack, f"/devices/{d['device_id']}/readings") for d in devices}
    a_id, b_id = devices[A]["device_id"], devices[B]["device_id"]
    honest = [r for d, rs in views.items() if d not in (a_id, b_id) for r in rs]
    inflated = [r for r in views[a_id] if _day(r) == INFLATED_DAY]
    held = sorted((r for r in views[b_id] if r["rule"] == "device_under_review"), key=lambda r: r["period_start"])
    review_day = requests_get_json(stack, f"/devices/{b_id}", key).get("review", {}).get("days")
    print(f"\nfleet: {len(readings)} readings; honest {len(honest)}: "
          f"{sum(r['status'] == 'accepted' for r in honest)} accepted, "
          f"{sum(r['status'] == 'flagged' for r in honest)} flagged, {sum(r['status'] == 'rejected' for r in honest)} "
          f"rejected; A's ×1.5 day: {sum(r['status'] == 'flagged' for r in inflated)}/{len(inflated)} flagged "
          f"({sum(r['rule'] == 'above_peers' for r in inflated)} above_peers); B ×1.3: under review after "
          f"{review_day} days of {DAYS}, {len(held)} of its {len(views[b_id])} readings held")
    if inflated:
        noon = inflated[len(inflated) // 2]
        print(f"an inflated hour of A: {noon['status']} ({noon['rule']}): {noon['reason']}")
    # THEN the honest devices' readings are accepted, none rejected; at most 1 % flagged above their peers
    # (issue 13's bound for hourly neighbours is 2 %: readings are judged as their neighbours arrive, so
    # which neighbours an honest hour meets depends on timing, and now and then one lands above 3 spreads)
    assert {(r["status"], r["rule"]) for r in honest if r["status"] != "accepted"} <= {("flagged", "above_peers")}
    assert sum(r["status"] == "flagged" for r in honest) <= 0.01 * len(honest), [
        r["reason"] for r in honest if r["status"] == "flagged"]
    # AND A's inflated hours are flagged above its peers, the reason naming their count and median
    # (issue 13's target with 12 neighbours: ×1.5 hours caught ≥ 80 %; a low-sun hour may pass)
    caught = [r for r in inflated if r["status"] == "flagged" and r["rule"] == "above_peers"]
    assert len(inflated) == len(HOURS_UTC) and len(caught) >= 0.8 * len(inflated), inflated
    assert all(r["status"] in ("accepted", "flagged") for r in inflated), inflated
    for reading in caught:
        # Judged with at least DREC_PEER_MIN (5) of its 12 neighbours, whose count and median it names
        count = re.search(r"\b([5-9]|1[0-2])\s+(neighbou?rs|peers|devices)\b", reading["reason"])
        assert "median" in reading["reason"] and count, reading["reason"]
    # AND A's honest days pass
    assert all(r["status"] == "accepted" for r in views[a_id] if _day(r) != INFLATED_DAY)
    # AND B went under review within the week, with its event, and its later readings are held
    device_b = stack.get(f"/devices/{b_id}").json()
    assert device_b["status"] == "under_review" and "review" not in device_b  # figures for the owner's side only
    review = requests_get_json(stack, f"/devices/{b_id}", key)["review"]
    assert review["state"] == "open" and review["reason"], review
    opened = _all(stack, "/events", subject_id=b_id, type="DeviceReviewOpened")
    assert len(opened) == 1 and opened[0]["body"]["device_id"] == b_id
    assert held and review_day is not None
    assert all(r["status"] == "flagged" for r in held)
    # (Readings are judged as their neighbours come in, not in period order: the held ones are those judged
    # after the review opened, whatever their period.)
    assert review["days"] <= DAYS, review
    # WHEN the operator clears B THEN its held readings are judged again
    cleared = stack.post(f"/devices/{b_id}/review", {"decision": "clear", "note": "fleet e2e: inspected"})
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["held_readings"] == len(held) and cleared.json()["review_epoch"] == 1
    _wait_settled(stack, "the held readings judged again", 90)
    again = {r["reading_id"]: r for r in _all(stack, f"/devices/{b_id}/readings")}
    rejudged = [again[r["reading_id"]] for r in held]
    assert all(r["status"] in ("accepted", "flagged", "rejected") for r in rejudged)
    free = [r for r in rejudged if r["rule"] != "device_under_review"]
    print(f"B cleared: {len(held)} held readings judged again: "
          f"{sorted({(r['status'], r['rule']) for r in rejudged})}")
    assert free, "the validator held every reading again right after the clear"
    # A reading held once more means a new review opened after the clear (its CUSUM started afresh)
    if len(free) < len(rejudged):
        assert stack.get(f"/devices/{b_id}").json()["status"] == "under_review"
    events = [e["type"] for e in _all(stack, "/events", subject_id=b_id) if e["subject_id"] == b_id]
    assert events[:3] == ["DeviceRegistered", "DeviceReviewOpened", "DeviceReviewCleared"], events


def requests_get_json(stack: RunningStack, path: str, key: str) -> Any:
    import requests

    response = requests.get(stack.url + path, headers={"X-Api-Key": key}, timeout=60)
    assert response.status_code == 200, response.text
    return response.json()
