"""The judge: each rule by name with a readable reason, honest weather passes, batches equal singles."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import BadInput
from chalicelib.domain.twin.judging import (
    METER_NOISE_WH,
    Judgement,
    ReadingToJudge,
    judge,
)
from chalicelib.domain.twin.payments import derived_energy_for_payment
from chalicelib.domain.twin.persistence import DeviceHistory, update_history
from chalicelib.domain.twin.physics import DeviceTwin
from chalicelib.domain.twin.site import site_constants
from tests.support.fit_weather import (
    daily_readings,
    honest_hourly_wh,
    hourly_readings,
    load_sites,
    twin_for,
)

UTC = dt.UTC
NOW = dt.datetime(2026, 1, 1, tzinfo=UTC)
CONSTANTS = site_constants(36.1, -79.9)
TWIN = DeviceTwin(
    device_id="dev-1",
    capacity_w=1000.0,
    latitude=36.1,
    longitude=-79.9,
    commissioning_date=dt.date(2024, 1, 1),
    linke_turbidity=CONSTANTS.linke_turbidity,
    altitude_m=CONSTANTS.altitude_m,
)
# Greensboro solar noon is about 17:20 UTC; local midnight about 05:20 UTC.
NOON_HOUR = dt.datetime(2025, 6, 21, 17, tzinfo=UTC)
CLEAR_DAY = dt.datetime(2025, 6, 21, 5, tzinfo=UTC)


def judge_one(
    start: dt.datetime,
    end: dt.datetime,
    energy_wh: int,
    twin: DeviceTwin = TWIN,
    history: DeviceHistory | None = None,
) -> Judgement:
    reading = ReadingToJudge("r-1", twin.device_id, start, end, energy_wh)
    histories = {twin.device_id: history} if history else {}
    return judge([reading], {twin.device_id: twin}, histories, NOW)[0]


def clear_day_wh() -> float:
    return judge_one(CLEAR_DAY, CLEAR_DAY + dt.timedelta(days=1), 1).clear_sky_wh


def test_a_typical_day_is_accepted_with_its_numbers() -> None:
    verdict = judge_one(CLEAR_DAY, CLEAR_DAY + dt.timedelta(days=1), 4500)

    assert (verdict.status, verdict.rule) == ("accepted", "ok")
    assert (
        verdict.expected_wh - 2 * verdict.sigma_wh
        < 4500
        < verdict.expected_wh + 2 * verdict.sigma_wh
    )
    assert verdict.clear_sky_wh < verdict.ceiling_wh
    assert "4500 Wh is within the expected" in verdict.reason


@pytest.mark.parametrize(
    ("start", "end", "energy_wh", "rule", "words"),
    [
        (NOON_HOUR, NOON_HOUR, 10, "bad_period", "is not after period_start"),
        (
            NOON_HOUR,
            NOON_HOUR - dt.timedelta(hours=1),
            10,
            "bad_period",
            "is not after period_start",
        ),
        (
            CLEAR_DAY,
            CLEAR_DAY + dt.timedelta(days=32),
            10,
            "period_too_long",
            "32.0 days",
        ),
        (
            NOW,
            NOW + dt.timedelta(hours=1),
            10,
            "in_future",
            "after the validation time 2026-01-01T00:00:00Z",
        ),
        (
            dt.datetime(2023, 12, 30, tzinfo=UTC),
            dt.datetime(2023, 12, 31, tzinfo=UTC),
            10,
            "before_commissioning",
            "commissioning date 2024-01-01",
        ),
        (
            NOON_HOUR,
            NOON_HOUR + dt.timedelta(hours=1),
            -1,
            "negative_energy",
            "energy_wh -1 is negative",
        ),
        (
            CLEAR_DAY,
            CLEAR_DAY + dt.timedelta(minutes=30),
            40,
            "night",
            "40 Wh were reported",
        ),
        (
            NOON_HOUR,
            NOON_HOUR + dt.timedelta(hours=1),
            1500,
            "above_capacity",
            "1.5× the nameplate 1000 W",
        ),
        (
            CLEAR_DAY,
            CLEAR_DAY + dt.timedelta(days=1),
            15000,
            "above_ceiling",
            "exceeds the physical ceiling",
        ),
        (
            CLEAR_DAY,
            CLEAR_DAY + dt.timedelta(days=1),
            8000,
            "beyond_2_sigma_high",
            "above the expected",
        ),
        (
            CLEAR_DAY,
            CLEAR_DAY + dt.timedelta(days=1),
            300,
            "below_expected",
            "below the expected",
        ),
    ],
)
def test_each_rule_fires_by_name_with_a_reason(
    start: dt.datetime, end: dt.datetime, energy_wh: int, rule: str, words: str
) -> None:
    verdict = judge_one(start, end, energy_wh)

    assert verdict.rule == rule
    assert verdict.status == ("flagged" if rule.startswith("beyond") else
                              "accepted" if rule.startswith("below") else "rejected")
    assert words in verdict.reason
    assert verdict.reason.endswith(".")


def test_three_times_clear_sky_is_rejected_at_noon_and_in_the_morning() -> None:
    oriented = replace(TWIN, tilt_deg=36.0, azimuth_deg=180.0)
    morning = dt.datetime(2025, 6, 21, 12, tzinfo=UTC)  # about 07:40 solar time
    hour = dt.timedelta(hours=1)
    clear_noon_wh = judge_one(NOON_HOUR, NOON_HOUR + hour, 1).clear_sky_wh
    clear_morning_wh = judge_one(morning, morning + hour, 1, oriented).clear_sky_wh

    noon = judge_one(NOON_HOUR, NOON_HOUR + hour, round(3 * clear_noon_wh))
    early = judge_one(morning, morning + hour, round(3 * clear_morning_wh), oriented)

    assert (noon.status, noon.rule) == ("rejected", "above_capacity")
    assert (early.status, early.rule) == ("rejected", "above_ceiling")
    assert early.ceiling_wh < 3 * clear_morning_wh < oriented.capacity_w


def test_midnight_reading_is_rejected_as_night_but_meter_noise_passes() -> None:
    midnight = dt.datetime(2025, 6, 21, 4, 30, tzinfo=UTC)

    loud = judge_one(midnight, midnight + dt.timedelta(hours=1), METER_NOISE_WH + 1)
    quiet = judge_one(midnight, midnight + dt.timedelta(hours=1), METER_NOISE_WH)

    assert (loud.status, loud.rule) == ("rejected", "night")
    assert "UTC rather than local time" in loud.reason
    assert (quiet.status, quiet.rule, quiet.ceiling_wh) == (
        "accepted",
        "ok",
        METER_NOISE_WH,
    )


def test_w_versus_kw_slips_are_caught_with_a_hint() -> None:
    kilowatts_as_watts = replace(TWIN, capacity_w=1.0)

    capacity_slip = judge_one(
        NOON_HOUR, NOON_HOUR + dt.timedelta(hours=1), 700, kilowatts_as_watts
    )
    kwh_slip = judge_one(CLEAR_DAY, CLEAR_DAY + dt.timedelta(days=1), 5)

    assert (capacity_slip.status, capacity_slip.rule) == ("rejected", "above_capacity")
    assert "unit slip" in capacity_slip.reason
    assert (kwh_slip.status, kwh_slip.rule) == ("accepted", "below_expected")
    assert "kWh instead of Wh" in kwh_slip.reason


def test_honest_days_and_hours_on_measured_weather_are_never_rejected() -> None:
    site = load_sites()[0]  # Greensboro TMY3
    twin = twin_for(site, "honest", 36.0, 180.0)
    hourly_wh = honest_hourly_wh(site, twin.capacity_w, 36.0, 180.0)
    readings = (
        daily_readings(site, twin, hourly_wh)
        + hourly_readings(site, twin, hourly_wh)[3000:4500]
    )

    verdicts = judge(
        readings, {twin.device_id: twin}, {}, dt.datetime(2030, 1, 1, tzinfo=UTC)
    )

    assert len(readings) == 365 + 1500
    assert [v.reason for v in verdicts if v.status == "rejected"] == []


def test_a_batch_equals_judging_one_by_one() -> None:
    other = replace(
        TWIN,
        device_id="dev-2",
        latitude=-1.3,
        longitude=36.8,
        tilt_deg=10.0,
        azimuth_deg=0.0,
    )
    twins = {TWIN.device_id: TWIN, other.device_id: other}
    histories = {
        "dev-2": DeviceHistory(accepted_count=50, mean_ratio=0.6, sigma_ratio=0.2)
    }
    rng = np.random.default_rng(3)
    readings = []
    for i in range(40):
        start = dt.datetime(2025, 3, 1, tzinfo=UTC) + dt.timedelta(
            hours=int(rng.integers(0, 24 * 300))
        )
        length = dt.timedelta(hours=[1, 1, 24, 24 * 7, 0][i % 5])
        device = ["dev-1", "dev-2"][i % 2]
        readings.append(
            ReadingToJudge(
                f"r{i}", device, start, start + length, int(rng.integers(-5, 9000))
            )
        )

    together = judge(readings, twins, histories, NOW)
    alone = [judge([r], twins, histories, NOW)[0] for r in readings]

    assert together == alone
    assert len({v.rule for v in together}) >= 4


def test_device_history_moves_the_expectation() -> None:
    day_end = CLEAR_DAY + dt.timedelta(days=1)
    shaded = DeviceHistory(accepted_count=200, mean_ratio=0.3, sigma_ratio=0.05)

    fresh = judge_one(CLEAR_DAY, day_end, 1500)
    known_shaded = judge_one(CLEAR_DAY, day_end, 1500, history=shaded)

    assert (fresh.status, fresh.rule) == ("accepted", "below_expected")
    assert known_shaded.rule == "ok"
    assert known_shaded.expected_wh < fresh.expected_wh


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5000), st.floats(10.0, 5000.0)),
        min_size=1,
        max_size=30,
    )
)
def test_update_history_keeps_the_running_mean_and_sigma(
    pairs: list[tuple[int, float]],
) -> None:
    history = DeviceHistory()
    for energy_wh, clear_sky_wh in pairs:
        history = update_history(history, energy_wh, clear_sky_wh)

    ratios = np.array([e / c for e, c in pairs])
    assert history.accepted_count == len(pairs)
    assert history.mean_ratio == pytest.approx(
        float(ratios.mean()), rel=1e-9, abs=1e-12
    )
    assert history.sigma_ratio == pytest.approx(float(ratios.std()), rel=1e-6, abs=1e-9)


def test_night_readings_leave_the_history_alone() -> None:
    history = DeviceHistory(accepted_count=3, mean_ratio=0.5, sigma_ratio=0.1)

    assert update_history(history, 0, 0.0) == history


def test_payment_energy_is_capped_by_expectation_and_battery() -> None:
    week_start = dt.datetime(2025, 6, 1, tzinfo=UTC)
    week_end = week_start + dt.timedelta(days=7)
    with_battery = replace(TWIN, battery_wh=300.0)

    free = derived_energy_for_payment(TWIN, week_start, week_end)
    capped = derived_energy_for_payment(with_battery, week_start, week_end)
    expected_week = sum(
        judge_one(
            week_start + dt.timedelta(days=d), week_start + dt.timedelta(days=d + 1), 1
        ).expected_wh
        for d in range(7)
    )

    assert isinstance(free, int)
    assert 0 < free <= expected_week * 1.001
    assert capped == 2100  # 300 Wh a day for 7 days


def test_payment_for_a_night_window_derives_nothing_and_bad_windows_are_refused() -> (
    None
):
    night = dt.datetime(2025, 6, 21, 3, tzinfo=UTC)

    assert derived_energy_for_payment(TWIN, night, night + dt.timedelta(hours=2)) == 0
    with pytest.raises(BadInput):
        derived_energy_for_payment(TWIN, night, night)
