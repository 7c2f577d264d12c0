"""Benchmark of the digital twin and the reading judge.

Run: `python -m tests.bench.bench_twin` (add `--quick` for a smaller run).

1. Throughput on one core: hourly readings of many devices for one day,
   judged in one batch, beside the per-reading pvlib `Location` path.
2. Honest and inflated readings built from the measured weather bundled
   with pvlib (TMY3 Greensboro and Sand Point, TMY2 Miami): the share of
   honest readings rejected and of inflated ones caught, hourly and daily,
   beside the flat capacity × yield × 1.2 rule.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from pvlib import iotools, irradiance, location, pvsystem, solarposition, temperature

from chalicelib.domain.twin.climatology import monthly_ghi
from chalicelib.domain.twin.judging import DeviceHistory, ReadingToJudge, judge
from chalicelib.domain.twin.physics import DeviceTwin, TwinArrays, clear_sky_energy
from chalicelib.domain.twin.site import site_constants

PVLIB_DATA = Path(pvlib.__file__).parent / "data"
FLAT_RULE_MARGIN = 1.2
FLAT_RULE_DEFAULT_YIELD_KWH_PER_KWP = 1600.0
#: A good honest system: few losses, DC-metered (no inverter) — the hardest case for a ceiling.
HONEST_LOSSES = 0.08
INFLATIONS = (1.5, 2.0, 3.0)
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Site:
    name: str
    latitude: float
    longitude: float
    altitude_m: float
    weather: pd.DataFrame  # ghi, dni, dhi [W m-2], temp_air [°C], wind_speed [m s-1]
    period_start: pd.DatetimeIndex  # UTC start of each hourly row
    utc_offset_h: float


def load_sites() -> list[Site]:
    """The three measured weather files bundled with pvlib, with each hour's UTC period start."""
    sites = []
    for name, filename in (
        ("Greensboro TMY3", "723170TYA.CSV"),
        ("Sand Point TMY3", "703165TY.csv"),
    ):
        data, meta = iotools.read_tmy3(
            str(PVLIB_DATA / filename), coerce_year=2021, map_variables=True
        )
        # TMY3 labels each hour at its end, in local standard time.
        labels = pd.DatetimeIndex(data.index).tz_convert("UTC")
        sites.append(
            Site(
                name, meta["latitude"], meta["longitude"], meta["altitude"],
                data[["ghi", "dni", "dhi", "temp_air", "wind_speed"]].reset_index(drop=True),
                labels - pd.Timedelta(hours=1), float(meta["TZ"]),
            )
        )  # fmt: skip
    data, meta = iotools.read_tmy2(str(PVLIB_DATA / "12839.tm2"))
    # pvlib labels TMY2 hour h (ending at h:00 local standard time) as (h - 1):00: the hour's start.
    local = pd.to_datetime(
        {
            "year": 2021,
            "month": data["month"].astype(int),
            "day": data["day"].astype(int),
        }
    ) + pd.to_timedelta(data["hour"].astype(int) - 1, unit="h")
    starts = pd.DatetimeIndex(local) - pd.Timedelta(hours=float(meta["TZ"]))
    weather = pd.DataFrame(
        {
            "ghi": data["GHI"].to_numpy(float),
            "dni": data["DNI"].to_numpy(float),
            "dhi": data["DHI"].to_numpy(float),
            "temp_air": data["DryBulb"].to_numpy(float)
            / 10.0,  # TMY2 stores tenths of °C
            "wind_speed": data["Wspd"].to_numpy(float) / 10.0,  # and tenths of m/s
        }
    )
    sites.append(
        Site(
            "Miami TMY2", meta["latitude"], meta["longitude"], meta["altitude"], weather,
            starts.tz_localize("UTC"), float(meta["TZ"]),
        )
    )  # fmt: skip
    return sites


def honest_hourly_wh(
    site: Site, capacity_w: float, tilt_deg: float, azimuth_deg: float
) -> np.ndarray:
    """Energy [Wh] a device would really have metered each hour: Perez POA, SAPM cell, PVWatts."""
    middle = site.period_start + pd.Timedelta(minutes=30)
    sun = solarposition.get_solarposition(
        middle, site.latitude, site.longitude, site.altitude_m
    )
    weather = site.weather
    poa = irradiance.get_total_irradiance(
        tilt_deg, azimuth_deg, sun["apparent_zenith"].to_numpy(), sun["azimuth"].to_numpy(),
        weather["dni"].to_numpy(), weather["ghi"].to_numpy(), weather["dhi"].to_numpy(),
        dni_extra=irradiance.get_extra_radiation(middle).to_numpy(),
        airmass=pvlib.atmosphere.get_relative_airmass(sun["apparent_zenith"].to_numpy()),
        model="perez", albedo=0.2,
    )["poa_global"]  # fmt: skip
    poa = np.nan_to_num(np.asarray(poa, dtype=float))
    cell = temperature.sapm_cell(
        poa,
        weather["temp_air"].to_numpy(),
        weather["wind_speed"].to_numpy(),
        -3.56,
        -0.075,
        3.0,
    )
    dc = pvsystem.pvwatts_dc(poa, cell, capacity_w, -0.004)
    return np.round(np.maximum(dc, 0.0) * (1.0 - HONEST_LOSSES))


def twin_for(
    site: Site, device_id: str, tilt: float | None, azimuth: float | None
) -> DeviceTwin:
    constants = site_constants(site.latitude, site.longitude)
    return DeviceTwin(
        device_id=device_id,
        capacity_w=1000.0,
        latitude=site.latitude,
        longitude=site.longitude,
        commissioning_date=dt.date(2020, 1, 1),
        linke_turbidity=constants.linke_turbidity,
        tilt_deg=tilt,
        azimuth_deg=azimuth,
        altitude_m=constants.altitude_m,
    )


def hourly_readings(
    site: Site, twin: DeviceTwin, energy_wh: np.ndarray
) -> list[ReadingToJudge]:
    starts = site.period_start.to_pydatetime()
    return [
        ReadingToJudge(
            f"{twin.device_id}-h{i}",
            twin.device_id,
            start,
            start + dt.timedelta(hours=1),
            int(e),
        )
        for i, (start, e) in enumerate(zip(starts, energy_wh, strict=True))
    ]


def daily_readings(
    site: Site, twin: DeviceTwin, energy_wh: np.ndarray
) -> list[ReadingToJudge]:
    """Local-standard-time days: 24 consecutive hours from local midnight."""
    first_midnight = int(
        np.argmax((site.period_start.hour + site.utc_offset_h) % 24 == 0)
    )
    readings = []
    for day, first in enumerate(range(first_midnight, len(energy_wh) - 23, 24)):
        start = site.period_start[first].to_pydatetime()
        readings.append(
            ReadingToJudge(
                f"{twin.device_id}-d{day}",
                twin.device_id,
                start,
                start + dt.timedelta(days=1),
                int(energy_wh[first : first + 24].sum()),
            )
        )
    return readings


def flat_rule_rejects(
    readings: list[ReadingToJudge], capacity_w: float, yield_kwh_per_kwp: float
) -> np.ndarray:
    """The flat rule: reject above capacity × yearly yield / 8760 h × hours × 1.2."""
    hours = np.array(
        [(r.period_end - r.period_start).total_seconds() / 3600.0 for r in readings]
    )
    energy = np.array([r.energy_wh for r in readings], dtype=float)
    return energy > capacity_w * yield_kwh_per_kwp / 8760.0 * hours * FLAT_RULE_MARGIN


def site_yield_kwh_per_kwp(site: Site) -> float:
    """Yearly yield from climatological GHI with a performance ratio of 0.8 [kWh/kWp]."""
    ghi_mean_w_m2, _ = monthly_ghi(site.latitude, site.longitude)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return float(np.sum(ghi_mean_w_m2 * 24.0 / 1000.0 * days) * 0.8)


def _share(mask: np.ndarray) -> str:
    return f"{100.0 * float(np.mean(mask)):6.2f} %" if len(mask) else "   n/a"


def _statuses(readings: list[ReadingToJudge], twin: DeviceTwin) -> np.ndarray:
    return np.array(
        [v.status for v in judge(readings, {twin.device_id: twin}, {}, NOW)]
    )


def accuracy(sites: list[Site]) -> None:
    print(
        "\n(2) Honest vs inflated readings on measured weather (1 kW devices, no history)"
    )
    factors = "".join(f" {'x' + format(f, 'g'):>7}" for f in INFLATIONS)
    header = f"{'site / device':42} {'period':6} {'n':>5} {'honest rej':>10} {'flagged':>8} |"
    header += (
        f" caught{factors} | flat1600 honest{factors} | flat-site honest {'Y site':>6}"
    )
    print(header)
    print("-" * len(header))
    keys = [(p, f) for p in ("hourly", "daily") for f in (1.0, *INFLATIONS)]
    ours: dict[tuple[str, float], list[np.ndarray]] = {key: [] for key in keys}
    flat: dict[tuple[str, float], list[np.ndarray]] = {key: [] for key in keys}
    for site in sites:
        yield_site = site_yield_kwh_per_kwp(site)
        tilt = round(abs(site.latitude))
        devices = (
            (
                "known (latitude tilt, S)",
                twin_for(site, "known", tilt, 180.0),
                tilt,
                180.0,
            ),
            (
                "unknown (really 15° SE)",
                twin_for(site, "unknown", None, None),
                15.0,
                135.0,
            ),
        )
        for label, twin, true_tilt, true_azimuth in devices:
            hourly_wh = honest_hourly_wh(site, twin.capacity_w, true_tilt, true_azimuth)
            for period, build in (
                ("hourly", hourly_readings),
                ("daily", daily_readings),
            ):
                honest = [r for r in build(site, twin, hourly_wh) if r.energy_wh > 0]
                cells = []
                flat_cells = []
                for factor in (1.0, *INFLATIONS):
                    readings = [
                        replace(r, energy_wh=round(r.energy_wh * factor))
                        for r in honest
                    ]
                    statuses = _statuses(readings, twin)
                    flat_rejects = flat_rule_rejects(
                        readings, twin.capacity_w, FLAT_RULE_DEFAULT_YIELD_KWH_PER_KWP
                    )
                    ours[period, factor].append(statuses)
                    flat[period, factor].append(flat_rejects)
                    cells.append(_share(statuses == "rejected"))
                    flat_cells.append(_share(flat_rejects))
                    if factor == 1.0:
                        flagged = _share(statuses == "flagged")
                flat_site = _share(
                    flat_rule_rejects(honest, twin.capacity_w, yield_site)
                )
                print(
                    f"{site.name + ' / ' + label:42} {period:6} {len(honest):5d} {cells[0]:>10} "
                    f"{flagged:>8} |       {''.join(f' {c.strip():>7}' for c in cells[1:])} | "
                    f"{flat_cells[0]:>15}{''.join(f' {c.strip():>7}' for c in flat_cells[1:])} | "
                    f"{flat_site:>16} {yield_site:6.0f}"
                )
    print("\nAll sites and devices together:")
    print(
        f"{'period':6} {'factor':>6} {'n':>6} {'rejected':>9} {'rejected or flagged':>20} {'flat1600 rejected':>18}"
    )
    for period, factor in keys:
        statuses = np.concatenate(ours[period, factor])
        rejected = statuses == "rejected"
        print(
            f"{period:6} {'honest' if factor == 1.0 else 'x' + format(factor, 'g'):>6} {len(statuses):6d} "
            f"{_share(rejected):>9} {_share(rejected | (statuses == 'flagged')):>20} "
            f"{_share(np.concatenate(flat[period, factor])):>18}"
        )
    print(
        "targets: honest rejected < 0.5 % hourly and 0 % daily.\n"
        "honest model: Perez POA from measured GHI/DNI/DHI, SAPM cell temperature from measured "
        f"air and wind, PVWatts DC with {HONEST_LOSSES:.0%} losses (DC-metered, the hardest case); "
        "hours and days with 0 Wh are left out; days are local-standard-time days. 'caught' = "
        "rejected. Flat rule: reject above capacity × Y / 8760 × hours × 1.2 with Y = 1,600 "
        "kWh/kWp ('flat1600'), or with Y from the site's MERRA-2 climatology × PR 0.8 ('flat-site')."
    )


def throughput(devices: int, naive_samples: int) -> None:
    print(
        f"\n(1) Throughput: {devices:,} devices × 24 hourly readings (one day each), one batch, one core"
    )
    rng = np.random.default_rng(7)
    site_count = min(200, devices)
    latitudes = rng.uniform(-35.0, 55.0, site_count)
    longitudes = rng.uniform(-120.0, 140.0, site_count)
    constants = [
        site_constants(lat, lon) for lat, lon in zip(latitudes, longitudes, strict=True)
    ]
    twins = {}
    for i in range(devices):
        s = i % site_count
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
    day = dt.datetime(2026, 3, 20, tzinfo=dt.UTC)
    readings = [
        ReadingToJudge(
            f"{device_id}-{h}",
            device_id,
            day + dt.timedelta(hours=h),
            day + dt.timedelta(hours=h + 1),
            10 * h,
        )
        for device_id in twins
        for h in range(24)
    ]
    histories = {device_id: DeviceHistory(40, 0.7, 0.25) for device_id in twins}
    # The climatology cache fills on a device's first batch: time the steady state.
    judge(readings[::24], twins, histories, NOW)

    started = time.perf_counter()
    verdicts = judge(readings, twins, histories, NOW)
    judge_s = time.perf_counter() - started
    twin_list = [twins[r.device_id] for r in readings]
    arrays = TwinArrays.from_twins(twin_list)
    starts = np.array(
        [r.period_start.replace(tzinfo=None) for r in readings], dtype="datetime64[s]"
    )
    started = time.perf_counter()
    clear_sky_energy(arrays, starts, starts + np.timedelta64(3600, "s"))
    physics_s = time.perf_counter() - started

    sample = readings[:: max(1, len(readings) // naive_samples)][:naive_samples]
    started = time.perf_counter()
    for reading in sample:
        twin = twins[reading.device_id]
        site = location.Location(
            twin.latitude, twin.longitude, altitude=twin.altitude_m
        )
        times = pd.date_range(
            reading.period_start, reading.period_end, freq="5min", inclusive="left"
        )
        sky = site.get_clearsky(times, model="ineichen")
        sun = site.get_solarposition(times)
        poa = irradiance.get_total_irradiance(
            twin.tilt_deg or 20.0, twin.azimuth_deg or 180.0, sun["apparent_zenith"], sun["azimuth"],
            sky["dni"], sky["ghi"], sky["dhi"],
        )["poa_global"]  # fmt: skip
        cell = temperature.sapm_cell(poa, 20.0, 1.0, -3.56, -0.075, 3.0)
        float(pvsystem.pvwatts_dc(poa, cell, twin.capacity_w, -0.004).sum() / 12.0)
    naive_per_reading_s = (time.perf_counter() - started) / len(sample)

    count = len(readings)
    vectorised_rate = count / judge_s
    naive_rate = 1.0 / naive_per_reading_s
    statuses = pd.Series([v.status for v in verdicts]).value_counts().to_dict()
    print(f"{'path':58} {'readings/s':>12} {'time':>10}")
    print(
        f"{'judge() whole batch (physics, climatology, rules, reasons)':58} {vectorised_rate:12,.0f} {judge_s:9.2f}s"
    )
    print(
        f"{'clear_sky_energy() alone (5-min steps)':58} {count / physics_s:12,.0f} {physics_s:9.2f}s"
    )
    print(
        f"{f'naive per reading (Location, {len(sample)} timed, extrapolated)':58} "
        f"{naive_rate:12,.0f} {count * naive_per_reading_s:9.1f}s"
    )
    print(
        f"speed-up of judge() over the naive path: {vectorised_rate / naive_rate:,.0f}× "
        "(targets ≥ 20,000 readings/s and ≥ 100×)"
    )
    print(f"readings: {count:,}; statuses of the synthetic readings: {statuses}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--devices", type=int, default=10_000)
    parser.add_argument("--naive-samples", type=int, default=300)
    parser.add_argument(
        "--quick", action="store_true", help="1,000 devices, 100 naive samples"
    )
    args = parser.parse_args()
    if args.quick:
        args.devices, args.naive_samples = 1_000, 100
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    print(
        f"single core: process pinned to CPU {cpu} with sched_setaffinity (every thread shares that core)"
    )
    throughput(args.devices, args.naive_samples)
    accuracy(load_sites())


if __name__ == "__main__":
    main()
