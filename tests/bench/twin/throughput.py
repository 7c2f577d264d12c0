"""Throughput of judge() on one core, peer histograms on for every reading, beside careful pvlib."""

from __future__ import annotations

import datetime as dt
import time

import numpy as np
import pandas as pd
from pvlib import irradiance, location, pvsystem, temperature

from chalicelib.domain.twin.judging import ReadingToJudge, judge
from chalicelib.domain.twin.peers import PeerHistogram
from chalicelib.domain.twin.persistence import DeviceHistory
from chalicelib.domain.twin.physics import DeviceTwin, TwinArrays, clear_sky_energy
from chalicelib.domain.twin.site import assumed_orientation, site_constants

from .evaluate import NOW

#: Devices per neighbourhood in the synthetic fleet: each reading is judged against the other 12.
FLEET = 13


def _twins(devices: int, rng: np.random.Generator) -> dict[str, DeviceTwin]:
    site_count = min(200, max(1, devices // FLEET))
    latitudes = rng.uniform(-35.0, 55.0, site_count)
    longitudes = rng.uniform(-120.0, 140.0, site_count)
    constants = [site_constants(a, o) for a, o in zip(latitudes, longitudes, strict=True)]
    twins = {}
    for i in range(devices):
        s = (i // FLEET) % site_count
        known = i % 2 == 0
        twins[f"dev{i:05d}"] = DeviceTwin(
            device_id=f"dev{i:05d}",
            capacity_w=float(rng.choice([50, 100, 200, 500, 1000, 5000])),
            latitude=float(latitudes[s]),
            longitude=float(longitudes[s]),
            commissioning_date=dt.date(2022, 1, 1),
            linke_turbidity=constants[s].linke_turbidity,
            tilt_deg=float(rng.uniform(0, 40)) if known else None,
            azimuth_deg=float(rng.uniform(90, 270)) if known else None,
            altitude_m=constants[s].altitude_m,
        )
    return twins


def careful_pvlib_day(twin: DeviceTwin, day: pd.Timestamp) -> pd.Series:
    """What a careful pvlib user writes for one device-day: hourly clear-sky AC energy [Wh].

    One Location with the turbidity looked up once (at registration) and passed in, one index of
    the day's 5-min steps, solar position once and handed to get_clearsky, vectorised transposition,
    SAPM cell temperature, PVWatts, then hourly sums with resample.
    """
    site = location.Location(twin.latitude, twin.longitude, altitude=twin.altitude_m)
    starts = pd.date_range(day, day + pd.Timedelta(days=1), freq="5min", inclusive="left")
    times = starts + pd.Timedelta(seconds=150)  # each step's middle
    turbidity = np.asarray(twin.linke_turbidity)[times.month - 1]
    sun = site.get_solarposition(times)
    sky = site.get_clearsky(times, model="ineichen", solar_position=sun, linke_turbidity=turbidity)
    tilt, azimuth = (
        (twin.tilt_deg, twin.azimuth_deg) if twin.orientation_known else assumed_orientation(twin.latitude)
    )
    poa = irradiance.get_total_irradiance(
        tilt, azimuth, sun["apparent_zenith"], sun["azimuth"], sky["dni"], sky["ghi"], sky["dhi"]
    )["poa_global"].fillna(0.0)
    cell = temperature.sapm_cell(poa, 20.0, 1.0, -3.56, -0.075, 3.0)
    ac = pvsystem.pvwatts_dc(poa, cell, twin.capacity_w, -0.004) * (1 - 0.1408) * 0.96
    return (ac.clip(lower=0.0).set_axis(starts) * (5 / 60)).resample("h").sum()


def throughput(devices: int, naive_devices: int) -> None:
    print(
        f"\n(1) Throughput: {devices:,} devices × 24 hourly readings (one day each), one batch, one core, "
        f"each reading judged with a peer histogram of its {FLEET - 1} neighbours"
    )
    rng = np.random.default_rng(7)
    twins = _twins(devices, rng)
    day = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)
    ids = list(twins)
    # Plausible readings, so every daylight reading reaches the neighbour check: k = 0.2-0.9 of clear sky.
    periods = [(d, day + dt.timedelta(hours=h)) for d in ids for h in range(24)]
    starts = np.array([p[1].replace(tzinfo=None) for p in periods], dtype="datetime64[s]")
    clear = clear_sky_energy([twins[d] for d, _ in periods], starts, starts + np.timedelta64(3600, "s")).clear_sky_wh
    ratio = rng.uniform(0.2, 0.9, len(periods))
    readings = [
        ReadingToJudge(f"{d}-{i % 24}", d, start, start + dt.timedelta(hours=1), round(float(k * c)))
        for i, ((d, start), k, c) in enumerate(zip(periods, ratio, clear, strict=True))
    ]
    # One histogram per neighbourhood-hour (the registry keeps one aggregate per cell-hour).
    histograms = {}
    for first in range(0, len(ids), FLEET):
        for h in range(24):
            k = rng.uniform(0.2, 0.9, FLEET - 1)
            diffuse = k * rng.uniform(1.2, 1.8, FLEET - 1)  # an all-diffuse sky gives a plane less than clear sky
            histograms[first, h] = PeerHistogram.from_ratios(k.tolist(), diffuse.tolist())
    peers = {r.reading_id: histograms[(i // 24) // FLEET * FLEET, i % 24] for i, r in enumerate(readings)}
    histories = {d: DeviceHistory() for d in twins}
    judge(readings[::24], twins, histories, NOW, peers=peers)  # the climatology cache fills once

    started = time.perf_counter()
    verdicts = judge(readings, twins, histories, NOW, peers=peers)
    judge_s = time.perf_counter() - started
    arrays = TwinArrays.from_twins([twins[r.device_id] for r in readings])
    started = time.perf_counter()
    clear_sky_energy(arrays, starts, starts + np.timedelta64(3600, "s"))
    physics_s = time.perf_counter() - started

    sample = ids[:: max(1, len(ids) // naive_devices)][:naive_devices]
    started = time.perf_counter()
    for device_id in sample:
        careful_pvlib_day(twins[device_id], pd.Timestamp(day))
    careful_per_reading_s = (time.perf_counter() - started) / (24 * len(sample))

    count = len(readings)
    rate, careful_rate = count / judge_s, 1.0 / careful_per_reading_s
    statuses = pd.Series([v.status for v in verdicts]).value_counts().to_dict()
    referenced = pd.Series([v.reference for v in verdicts]).value_counts().to_dict()
    print(f"{'path':70} {'readings/s':>12} {'time':>10}")
    print(f"{'judge() whole batch (physics, climatology, peers, rules, reasons)':70} {rate:12,.0f} {judge_s:9.2f}s")
    print(f"{'clear_sky_energy() alone (5-min steps)':70} {count / physics_s:12,.0f} {physics_s:9.2f}s")
    print(
        f"{f'careful pvlib, one device-day per call ({len(sample)} device-days timed, extrapolated)':70} "
        f"{careful_rate:12,.0f} {count * careful_per_reading_s:9.1f}s"
    )
    print(f"careful pvlib per device-day (24 readings): {24e3 * careful_per_reading_s:.1f} ms")
    verdict = "PASS" if rate >= 20_000 else "MISS"
    print(
        f"speed-up of judge() over careful pvlib: {rate / careful_rate:,.1f}× (careful pvlib computes the "
        f"clear-sky energy only: no ceiling, climatology, peers or reasons); target ≥ 20,000 readings/s: "
        f"{verdict} ({rate:,.0f})"
    )
    print(f"readings: {count:,} (k = 0.2-0.9 of clear sky; 0 Wh at night); statuses: {statuses}")
    print(f"reference used: {referenced}")
