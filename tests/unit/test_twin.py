"""Physics sanity of the digital twin and the climatology."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from chalicelib.domain.twin.climatology import monthly_clear_sky_ghi, monthly_clear_sky_index, period_sigma
from chalicelib.domain.twin.physics import DeviceTwin, TwinArrays, clear_sky_energy
from chalicelib.domain.twin.site import site_constants

UTC = dt.UTC


def make_twin(
    latitude: float = 36.1, longitude: float = -79.9, **changes: Any
) -> DeviceTwin:
    constants = site_constants(latitude, longitude)
    twin = DeviceTwin(
        device_id="dev-1",
        capacity_w=1000.0,
        latitude=latitude,
        longitude=longitude,
        commissioning_date=dt.date(2024, 1, 1),
        linke_turbidity=constants.linke_turbidity,
        altitude_m=constants.altitude_m,
    )
    return replace(twin, **changes)


def energy(
    twin: DeviceTwin, start: dt.datetime, hours: float
) -> tuple[float, float, float, bool]:
    result = clear_sky_energy([twin], [start], [start + dt.timedelta(hours=hours)])
    return (
        float(result.clear_sky_wh[0]),
        float(result.upper_bound_wh[0]),
        float(result.daylight_fraction[0]),
        bool(result.night[0]),
    )


def solar_noon_utc(longitude: float, day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, 12, tzinfo=UTC) - dt.timedelta(
        hours=longitude / 15.0
    )


def test_site_constants_hold_twelve_plausible_turbidities_and_the_altitude() -> None:
    constants = site_constants(36.1, -79.9)

    assert len(constants.linke_turbidity) == 12
    assert all(1.5 < value < 8.0 for value in constants.linke_turbidity)
    assert 150 < constants.altitude_m < 400  # Greensboro, NC stands at about 270 m


def test_noon_produces_and_midnight_is_night() -> None:
    twin = make_twin()
    noon = solar_noon_utc(twin.longitude, dt.date(2025, 6, 21)) - dt.timedelta(
        minutes=30
    )

    noon_wh, noon_bound_wh, noon_daylight, noon_night = energy(twin, noon, 1)
    midnight_wh, midnight_bound_wh, midnight_daylight, midnight_night = energy(
        twin, noon + dt.timedelta(hours=12), 1
    )

    assert 550 < noon_wh < 900  # 1 kW under clear June sky at noon, after ~17 % losses
    assert noon_bound_wh > noon_wh
    assert noon_daylight == 1.0 and not noon_night
    assert midnight_wh == 0.0 and midnight_bound_wh == 0.0
    assert midnight_daylight == 0.0 and midnight_night


def test_equator_beats_high_latitude_in_december() -> None:
    equator = make_twin(latitude=0.5, longitude=36.0)
    north = make_twin(latitude=60.0, longitude=10.0)
    day = dt.datetime(2025, 12, 21, tzinfo=UTC)

    equator_wh = energy(equator, day - dt.timedelta(hours=2), 24)[0]
    north_wh = energy(north, day, 24)[0]

    assert equator_wh > 3 * north_wh
    assert north_wh > 0


def test_summer_day_beats_winter_day_at_mid_latitude() -> None:
    twin = make_twin(latitude=45.0, longitude=0.0, tilt_deg=0.0, azimuth_deg=180.0)

    summer_wh = energy(twin, dt.datetime(2025, 6, 21, tzinfo=UTC), 24)[0]
    winter_wh = energy(twin, dt.datetime(2025, 12, 21, tzinfo=UTC), 24)[0]

    assert summer_wh > 2.5 * winter_wh


def test_energy_scales_with_capacity_so_a_kw_slip_is_a_factor_of_1000() -> None:
    start = dt.datetime(2025, 6, 21, 16, tzinfo=UTC)
    watts = make_twin(capacity_w=1000.0)
    slipped = make_twin(capacity_w=1.0)

    assert energy(watts, start, 1)[0] == pytest.approx(
        1000 * energy(slipped, start, 1)[0], rel=1e-9
    )


def test_orientation_matters_the_way_the_sun_moves() -> None:
    noon = solar_noon_utc(-79.9, dt.date(2025, 12, 21)) - dt.timedelta(minutes=30)
    morning = solar_noon_utc(-79.9, dt.date(2025, 6, 21)) - dt.timedelta(hours=4)
    south = make_twin(tilt_deg=40.0, azimuth_deg=180.0)
    flat = make_twin(tilt_deg=0.0, azimuth_deg=180.0)
    north = make_twin(tilt_deg=40.0, azimuth_deg=0.0)
    east = make_twin(tilt_deg=30.0, azimuth_deg=90.0)
    west = make_twin(tilt_deg=30.0, azimuth_deg=270.0)

    south_wh, flat_wh, north_wh = (energy(t, noon, 1)[0] for t in (south, flat, north))
    east_wh, west_wh = (energy(t, morning, 1)[0] for t in (east, west))

    assert south_wh > 1.3 * flat_wh > 1.3 * north_wh
    assert east_wh > 2 * west_wh


def test_upper_bound_with_unknown_orientation_covers_every_fixed_plane() -> None:
    unknown = make_twin()
    start = dt.datetime(2025, 6, 21, 12, tzinfo=UTC)
    bound_wh = energy(unknown, start, 1)[1]

    for tilt, azimuth in ((0, 180), (30, 90), (60, 120), (20, 180), (45, 250)):
        fixed = make_twin(tilt_deg=float(tilt), azimuth_deg=float(azimuth))
        assert energy(fixed, start, 1)[0] < bound_wh


def test_a_day_at_the_equator_is_half_daylight() -> None:
    twin = make_twin(latitude=0.0, longitude=0.0)

    daylight = energy(twin, dt.datetime(2025, 3, 20, tzinfo=UTC), 24)[2]

    assert daylight == pytest.approx(0.5, abs=0.02)


def test_older_devices_produce_less() -> None:
    start = dt.datetime(2025, 6, 21, tzinfo=UTC)
    new = make_twin(commissioning_date=dt.date(2025, 1, 1))
    old = make_twin(commissioning_date=dt.date(2015, 1, 1))

    ratio = energy(old, start, 24)[0] / energy(new, start, 24)[0]

    assert ratio == pytest.approx(1 - 0.005 * 10, abs=0.005)


def test_fifteen_minute_steps_stay_within_half_a_percent_of_five_minute_steps_over_a_day() -> (
    None
):
    twin = make_twin()
    start = [dt.datetime(2025, 4, 10, 4, tzinfo=UTC)]
    end = [start[0] + dt.timedelta(days=1)]

    fine = clear_sky_energy([twin], start, end, step_minutes=5).clear_sky_wh[0]
    coarse = clear_sky_energy([twin], start, end, step_minutes=15).clear_sky_wh[0]

    assert coarse == pytest.approx(fine, rel=0.005)


def test_a_mixed_batch_equals_each_reading_alone_and_arrays_equal_datetimes() -> None:
    twins = [
        make_twin(),
        make_twin(latitude=-1.3, longitude=36.8, tilt_deg=10.0, azimuth_deg=0.0),
    ]
    base = dt.datetime(2025, 1, 5, 3, 17, tzinfo=UTC)
    periods = [
        (
            base + dt.timedelta(hours=7 * i),
            dt.timedelta(minutes=[15, 60, 1440, 31 * 1440, 200][i % 5]),
        )
        for i in range(10)
    ]
    batch_twins = [twins[i % 2] for i in range(10)]
    starts = [p[0] for p in periods]
    ends = [p[0] + p[1] for p in periods]

    together = clear_sky_energy(batch_twins, starts, ends)
    alone = [
        clear_sky_energy([t], [s], [e])
        for t, s, e in zip(batch_twins, starts, ends, strict=True)
    ]
    as_arrays = clear_sky_energy(
        TwinArrays.from_twins(batch_twins),
        np.array([s.replace(tzinfo=None) for s in starts], dtype="datetime64[s]"),
        np.array([e.replace(tzinfo=None) for e in ends], dtype="datetime64[s]"),
    )

    for i, single in enumerate(alone):
        assert together.clear_sky_wh[i] == pytest.approx(
            single.clear_sky_wh[0], rel=1e-12
        )
        assert together.upper_bound_wh[i] == pytest.approx(
            single.upper_bound_wh[0], rel=1e-12
        )
    np.testing.assert_allclose(
        as_arrays.clear_sky_wh, together.clear_sky_wh, rtol=1e-12
    )
    assert (
        together.clear_sky_wh[3] > 20 * together.clear_sky_wh[2]
    )  # 31 days vs one day


def test_monthly_clear_sky_ghi_peaks_in_local_summer() -> None:
    north = site_constants(36.1, -79.9)
    south = site_constants(-25.0, 28.0)

    north_ghi = monthly_clear_sky_ghi(
        36.1, -79.9, north.linke_turbidity, north.altitude_m
    )
    south_ghi = monthly_clear_sky_ghi(
        -25.0, 28.0, south.linke_turbidity, south.altitude_m
    )

    assert int(np.argmax(north_ghi)) in (4, 5, 6)
    assert int(np.argmax(south_ghi)) in (10, 11, 0)
    assert 250 < north_ghi.max() < 400  # 24-h mean [W m-2]


def test_climatology_gives_a_clear_sky_index_below_one_with_spread() -> None:
    climate = monthly_clear_sky_index(36.1, -79.9)

    assert len(climate.mean) == len(climate.sigma) == 12
    assert all(0.3 < value <= 0.9 for value in climate.mean)
    assert all(0.1 < value < 0.5 for value in climate.sigma)
    assert (climate.cell_latitude, climate.cell_longitude) == (36.0, -81.0)


def test_ocean_places_fall_back_to_a_nearby_land_cell() -> None:
    climate = monthly_clear_sky_index(0.0, -150.0)

    assert all(0.0 < value <= 0.9 for value in climate.mean)


def test_sigma_grows_for_short_periods_and_shrinks_for_long_ones() -> None:
    sigma_daily = np.array([0.3, 0.3, 0.3])

    sigma = period_sigma(
        sigma_daily, np.array([1.0, 24.0, 24.0 * 30]), np.array([1.0, 0.5, 0.5])
    )

    assert sigma[0] > sigma[1] > sigma[2]
    assert sigma[1] == pytest.approx(0.3)
