"""The validator with neighbours: honest fleets pass, an inflating device is flagged with its neighbours'
figures, readings wait for neighbours and then are judged, a device steadily high goes under review, a
device steadily low gets a maintenance note and nothing held."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np

from chalicelib.domain.model import Principal
from chalicelib.domain.readings import ReadingStatus
from chalicelib.domain.registry import DeviceStatus
from chalicelib.domain.twin.judging import HIGH_RULES, METER_NOISE_WH
from chalicelib.domain.twin.physics import clear_sky_energy
from chalicelib.services.twins import twin_of
from chalicelib.services.validation import PeerSettings, Validator
from tests.fakes.world import World

UTC = dt.UTC
FIRST_DAY = dt.datetime(2026, 3, 2, tzinfo=UTC)
HOURS = range(4, 16)  # daylight in Nairobi, UTC
FLEET = 13


def _sunlit(fleet: Fleet, reading_id: str) -> bool:
    """A reading with daylight enough to be compared with anyone (dawn hours are judged at once)."""
    return fleet.world.readings.items[reading_id].numbers.get("clear_sky_wh", 0.0) > METER_NOISE_WH


class Fleet:
    """13 devices within ~10 km of each other, different sizes and orientations, under the same clouds."""

    def __init__(self, wait_s: float = 0.0) -> None:
        self.world = World()
        self.source, _ = self.world.source()
        account = self.world.account(self.source)["account_id"]
        rng = np.random.default_rng(5)
        self.devices = [self.world.device(self.source, account, capacity_w=float(rng.choice([50, 100, 200])),
                                          latitude=-1.29 + rng.uniform(-0.05, 0.05),
                                          longitude=36.82 + rng.uniform(-0.05, 0.05),
                                          tilt_deg=float(rng.uniform(5, 25)), azimuth_deg=float(rng.uniform(0, 360)))
                        ["device_id"] for _ in range(FLEET)]
        # Broken cloud on mostly sunny days: every device sees the same share of its clear sky each hour.
        self.clouds = np.random.default_rng(11).uniform(0.7, 1.0, size=(40, 24))
        self.noise = np.random.default_rng(12)
        self.validator = Validator(self.world.registry, self.world.readings, self.world.accepted_queue,
                                   PeerSettings(minimum=5, radius_km=25.0, wait_s=wait_s, shards=2))

    def readings(self, device_id: str, day: int, factor: float = 1.0) -> list[dict[str, Any]]:
        twin = twin_of(self.world.registry.device(device_id))
        starts = [FIRST_DAY + dt.timedelta(days=day, hours=h) for h in HOURS]
        clear = clear_sky_energy([twin] * len(starts), starts, [s + dt.timedelta(hours=1) for s in starts])
        energy = clear.clear_sky_wh * self.clouds[day, list(HOURS)] * (1 + self.noise.normal(0, 0.02, len(starts)))
        return [{"device_id": device_id, "period_start": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "period_end": (s + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                 "energy_wh": round(float(e) * factor)} for s, e in zip(starts, energy, strict=True)]

    def report(self, device_id: str, day: int, factor: float = 1.0, now: dt.datetime | None = None) -> list[str]:
        result = self.world.intake().submit(self.source, list(enumerate(self.readings(device_id, day, factor))))
        ids = [r for _, r in result.accepted]
        self.validator.validate(ids, now=now or FIRST_DAY + dt.timedelta(days=day + 1))
        return ids

    def statuses(self, ids: list[str]) -> list[str]:
        return [self.world.readings.items[i].status.value for i in ids]


def test_an_honest_fleet_is_accepted_and_one_device_inflating_half_again_is_flagged_by_its_neighbours() -> None:
    fleet = Fleet()
    honest = [i for d in fleet.devices[1:] for i in fleet.report(d, 0)]
    inflated = fleet.report(fleet.devices[0], 0, factor=1.5)

    assert set(fleet.statuses(honest)) == {"accepted"}
    rules = [fleet.world.readings.items[i].rule for i in inflated]
    caught = [r for r in rules if r in HIGH_RULES]  # held by the neighbours, or beyond what the panel can make
    assert len(caught) >= 0.7 * len(inflated) and rules.count("above_peers") >= 0.5 * len(inflated), rules
    reading = next(r for r in map(fleet.world.readings.items.get, inflated) if r and r.rule == "above_peers")
    assert reading.status == ReadingStatus.FLAGGED
    assert "12 neighbours reporting the same period had a median of" in reading.reason
    assert reading.numbers["peer_count"] == 12 and reading.numbers["ratio"] > 1.3 * reading.numbers["peer_median"]


def test_a_reading_awaits_its_neighbours_then_is_judged_with_them() -> None:
    fleet = Fleet(wait_s=6 * 3600)
    for device_id in fleet.devices:  # day 0: every device reports, so the cell knows 13 reporters
        fleet.report(device_id, 0)
    day_1 = FIRST_DAY + dt.timedelta(days=2)
    early = [i for i in fleet.report(fleet.devices[0], 1, now=day_1) if _sunlit(fleet, i)]
    assert set(fleet.statuses(early)) == {"awaiting_peers"}
    assert fleet.world.readings.items[early[0]].stage is not None  # still the validator's: the sweep re-sends it
    for device_id in fleet.devices[1:7]:
        fleet.report(device_id, 1, now=day_1)
    fleet.validator.validate(early, now=day_1)
    judged = [fleet.world.readings.items[i] for i in early]
    assert {r.status.value for r in judged} == {"accepted"}
    assert all(r.numbers["peer_count"] == 6 for r in judged)
    # Its ratio went into the histogram once, when it first waited: the others saw it, it did not see itself.
    first = fleet.world.readings.items[early[0]]
    start = int(dt.datetime.fromisoformat(first.period_start.replace("Z", "+00:00")).timestamp())
    assert sum(sum(c.values()) for k, c in fleet.world.readings.peer_bins.items() if k[1] == start) == 7


def test_a_reading_that_waited_long_enough_is_judged_on_climatology() -> None:
    fleet = Fleet(wait_s=3600)
    for device_id in fleet.devices:
        fleet.report(device_id, 0)
    ids = [i for i in fleet.report(fleet.devices[0], 1, now=FIRST_DAY + dt.timedelta(days=2)) if _sunlit(fleet, i)]
    assert set(fleet.statuses(ids)) == {"awaiting_peers"}
    received = fleet.world.readings.items[ids[0]].received_at or ""
    fleet.validator.validate(ids, now=dt.datetime.fromisoformat(received.replace("Z", "+00:00"))
                             + dt.timedelta(hours=2))
    assert "awaiting_peers" not in fleet.statuses(ids)
    assert all(fleet.world.readings.items[i].numbers.get("peer_count", 0) == 0 for i in ids)


def test_a_device_steadily_above_its_neighbours_goes_under_review_within_a_week() -> None:
    fleet = Fleet()
    suspect = fleet.devices[0]
    opened_on = None
    for day in range(8):
        for device_id in fleet.devices[1:]:
            fleet.report(device_id, day)
        fleet.report(suspect, day, factor=1.3)
        if opened_on is None and fleet.world.registry.device(suspect).status == DeviceStatus.UNDER_REVIEW:
            opened_on = day
    assert opened_on is not None and opened_on <= 7
    device = fleet.world.registry.device(suspect)
    assert device.review and device.review["state"] == "open" and "neighbours" in device.review["reason"]
    (event,) = fleet.world.events.of_type("DeviceReviewOpened")
    assert event.subject_id == suspect and event.body["cusum"] >= 4
    held = fleet.report(suspect, 9, factor=1.3)
    rules = [fleet.world.readings.items[i].rule for i in held]
    # Judged first (what physics rules out is still rejected), then held.
    assert set(rules) <= {"device_under_review", "above_capacity", "above_ceiling"}, rules
    assert rules.count("device_under_review") >= len(rules) / 2
    assert {fleet.world.readings.items[i].status.value for i in held if rules[held.index(i)] == "device_under_review"
            } == {"flagged"}
    # The honest neighbours never went under review.
    assert all(fleet.world.registry.device(d).status == DeviceStatus.ACTIVE for d in fleet.devices[1:])


def test_a_device_steadily_low_gets_a_maintenance_note_and_nothing_is_held() -> None:
    fleet = Fleet()
    shaded = fleet.devices[0]
    ids = []
    for day in range(8):
        for device_id in fleet.devices[1:]:
            fleet.report(device_id, day)
        ids += fleet.report(shaded, day, factor=0.5)
    assert set(fleet.statuses(ids)) == {"accepted"}
    note = fleet.world.registry.device(shaded).maintenance
    assert note and "shading, soiling" in note["reason"] and note["ratio"] < 0.7
    assert fleet.world.registry.device(shaded).status == DeviceStatus.ACTIVE
    _ = Principal
