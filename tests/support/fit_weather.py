"""Measured weather bundled with pvlib 0.16 (TMY3 Greensboro and Sand Point, TMY2 Miami) and a simple honest
PV model, for the judge's unit tests. These are the files the twin's constants were fitted on (the fit set):
`make bench-twin` reports on other files (tests/bench/twin/data.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pvlib
from pvlib import iotools, irradiance, pvsystem, solarposition, temperature

from chalicelib.domain.twin.judging import ReadingToJudge
from chalicelib.domain.twin.physics import DeviceTwin
from chalicelib.domain.twin.site import site_constants

PVLIB_DATA = Path(pvlib.__file__).parent / "data"
#: A good honest system: few losses, DC-metered (no inverter) — the hardest case for a ceiling.
HONEST_LOSSES = 0.08


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
