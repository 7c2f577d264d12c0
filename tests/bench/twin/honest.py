"""Honest devices: a PV model that is not the twin's, on measured weather, with neighbours.

The twin uses Ineichen clear sky, isotropic transposition, SAPM cell temperature, PVWatts DC and
flat losses. Honest devices here use Perez transposition of the measured GHI/DNI/DHI (with
dni_extra and air mass), the physical IAM (Marion's integral for diffuse light), Faiman cell
temperature from measured air temperature and wind, per-device soiling (1-6 %) and module
mismatch (1-3 %), a DC/AC ratio of 1.1-1.35 clipped by the PVWatts inverter, ±1 % Gaussian meter
noise, integer Wh, and a clock skew of −5..+5 min.

Neighbours (frozen clouds): each sits 2-25 km from the station in a random direction; the
clouds move at 5-15 m/s, so neighbour j sees the station's clear-sky index k_t = GHI / GHI_clear
(and diffuse fraction DHI / GHI) shifted by τ_j = d_j / v (up to ~80 min, either sign), times its
own clear sky. On 1-min data the shift is a whole number of minutes; on hourly data, linear
interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pvlib import atmosphere, iam, inverter, irradiance, location, pvsystem, solarposition, temperature

from .data import Station

GAMMA_PDC_PER_K = -0.0037
INVERTER_NOMINAL_EFFICIENCY = 0.96
METER_NOISE_SIGMA = 0.01
KM_PER_DEGREE = 111.2
#: Clear-sky GHI [W m-2] below which the station's clear-sky index is undefined (night, dawn, dusk): there the
#: nearest defined value stands in, so a lag across sunrise carries the morning's sky, not the night's zero.
KT_FLOOR_W_M2 = 20.0
KT_MAX = 1.6


@dataclass(frozen=True)
class HonestDevice:
    index: int
    capacity_w: float
    latitude: float
    longitude: float
    tilt_deg: float
    azimuth_deg: float
    declared: bool  # the twin knows the orientation; otherwise it registered tilt/azimuth None
    soiling: float
    mismatch: float
    dc_ac_ratio: float
    skew_min: float  # device clock minus true time [min]
    distance_km: float  # from the station; 0 for the station's own device
    lag_min: float  # cloud lag behind the station [min]


def fleet_devices(station: Station, size: int, rng: np.random.Generator) -> list[HonestDevice]:
    """Device 0 stands at the station; devices 1.. are its neighbours under frozen clouds."""
    devices = []
    for i in range(size):
        distance = 0.0 if i == 0 else float(rng.uniform(2.0, 25.0))
        bearing = float(rng.uniform(0.0, 2 * np.pi))
        speed = float(rng.uniform(5.0, 15.0))
        lag = 0.0 if i == 0 else float(rng.choice([-1.0, 1.0])) * distance * 1000.0 / speed / 60.0
        azimuth = float(rng.uniform(90.0, 270.0))
        if station.latitude < 0:
            azimuth = (azimuth + 180.0) % 360.0
        devices.append(
            HonestDevice(
                index=i,
                capacity_w=float(round(rng.uniform(50.0, 500.0))),
                latitude=station.latitude + distance * np.cos(bearing) / KM_PER_DEGREE,
                longitude=station.longitude
                + distance * np.sin(bearing) / (KM_PER_DEGREE * np.cos(np.radians(station.latitude))),
                tilt_deg=float(rng.uniform(0.0, 35.0)),
                azimuth_deg=azimuth,
                declared=i % 2 == 0,
                soiling=float(rng.uniform(0.01, 0.06)),
                mismatch=float(rng.uniform(0.01, 0.03)),
                dc_ac_ratio=float(rng.uniform(1.1, 1.35)),
                skew_min=float(rng.uniform(-5.0, 5.0)),
                distance_km=distance,
                lag_min=lag,
            )
        )
    return devices


def _seconds(index: pd.DatetimeIndex) -> np.ndarray:
    return index.as_unit("s").asi8.astype(float)


def _middle(station: Station) -> pd.DatetimeIndex:
    return station.start + pd.Timedelta(seconds=30 * station.step_min)


def _shift(values: np.ndarray, minutes_s: np.ndarray, by_min: float, step_min: int) -> np.ndarray:
    """values(t − by) on the same grid: whole rows on 1-min data, linear interpolation otherwise."""
    if step_min == 1:
        rows = np.clip(np.arange(len(values)) - round(by_min), 0, len(values) - 1)
        return values[rows]
    return np.interp(minutes_s - by_min * 60.0, minutes_s, values)


def _nearest_defined(values: np.ndarray, defined: np.ndarray) -> np.ndarray:
    """`values` where `defined`, else the value at the nearest defined row."""
    rows = np.flatnonzero(defined)
    if not len(rows):
        return values
    at = np.clip(np.searchsorted(rows, np.arange(len(values))), 1, len(rows) - 1) if len(rows) > 1 else None
    if at is None:
        return np.full(len(values), values[rows[0]])
    before, after = rows[at - 1], rows[at]
    index = np.arange(len(values))
    nearest = np.where(np.abs(index - before) <= np.abs(after - index), before, after)
    return np.where(defined, values, values[nearest])


def device_weather(station: Station, device: HonestDevice, clear_station: pd.DataFrame) -> pd.DataFrame:
    """GHI/DNI/DHI the device sees: the station's own for device 0, frozen clouds for neighbours."""
    w = station.weather
    if device.distance_km == 0.0:
        return w
    seconds = _seconds(_middle(station))
    clear = clear_station["ghi"].to_numpy()
    lit = clear >= KT_FLOOR_W_M2
    kt = _nearest_defined(np.clip(w["ghi"].to_numpy() / np.maximum(clear, KT_FLOOR_W_M2), 0, KT_MAX), lit)
    shares = np.clip(w["dhi"].to_numpy() / np.maximum(w["ghi"].to_numpy(), 1e-9), 0.0, 1.0)
    diffuse = _nearest_defined(shares, lit & (w["ghi"].to_numpy() > 5.0))
    kt = _shift(kt, seconds, device.lag_min, station.step_min)
    diffuse = _shift(diffuse, seconds, device.lag_min, station.step_min)
    site = location.Location(device.latitude, device.longitude, altitude=station.altitude_m)
    sun = site.get_solarposition(_middle(station))
    own_clear = site.get_clearsky(_middle(station), solar_position=sun)["ghi"].to_numpy()
    ghi = kt * own_clear
    dhi = diffuse * ghi
    cos_z = np.cos(np.radians(sun["apparent_zenith"].to_numpy()))
    dni = np.where(cos_z > 0.05, (ghi - dhi) / np.maximum(cos_z, 0.05), 0.0)
    return pd.DataFrame(
        {"ghi": ghi, "dni": np.clip(dni, 0.0, 1100.0), "dhi": dhi,
         "temp_air": w["temp_air"].to_numpy(), "wind_speed": w["wind_speed"].to_numpy()}
    )  # fmt: skip


def ac_power_w(station: Station, device: HonestDevice, weather: pd.DataFrame) -> np.ndarray:
    """AC power [W] at each row's middle (the row's mean irradiance)."""
    middle = _middle(station)
    sun = solarposition.get_solarposition(middle, device.latitude, device.longitude, station.altitude_m)
    zenith, azimuth = sun["apparent_zenith"].to_numpy(), sun["azimuth"].to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        parts = irradiance.get_total_irradiance(
            device.tilt_deg, device.azimuth_deg, zenith, azimuth,
            weather["dni"].to_numpy(), weather["ghi"].to_numpy(), weather["dhi"].to_numpy(),
            dni_extra=irradiance.get_extra_radiation(middle).to_numpy(),
            airmass=atmosphere.get_relative_airmass(zenith), model="perez", albedo=0.2,
        )  # fmt: skip
        angle = irradiance.aoi(device.tilt_deg, device.azimuth_deg, zenith, azimuth)
        beam_iam = np.nan_to_num(iam.physical(angle))
    diffuse_iam = iam.marion_diffuse("physical", device.tilt_deg)
    direct = np.nan_to_num(np.asarray(parts["poa_direct"], dtype=float))
    sky = np.nan_to_num(np.asarray(parts["poa_sky_diffuse"], dtype=float))
    ground = np.nan_to_num(np.asarray(parts["poa_ground_diffuse"], dtype=float))
    effective = (direct * beam_iam + sky * diffuse_iam["sky"] + ground * diffuse_iam["ground"]) * (1 - device.soiling)
    cell = temperature.faiman(direct + sky + ground, weather["temp_air"].to_numpy(), weather["wind_speed"].to_numpy())
    dc = pvsystem.pvwatts_dc(effective, cell, device.capacity_w, GAMMA_PDC_PER_K) * (1 - device.mismatch)
    ac_rating_w = device.capacity_w / device.dc_ac_ratio
    ac = inverter.pvwatts(np.maximum(dc, 0.0), ac_rating_w / INVERTER_NOMINAL_EFFICIENCY, INVERTER_NOMINAL_EFFICIENCY)
    return np.maximum(np.nan_to_num(np.asarray(ac, dtype=float)), 0.0)


@dataclass(frozen=True)
class Metered:
    """What a device reports: integer Wh per UTC hour and per local-standard-time day (0 = not sent)."""

    hour_start: pd.DatetimeIndex
    hourly_wh: np.ndarray
    day_start: pd.DatetimeIndex
    daily_wh: np.ndarray


def hour_grid(station: Station) -> pd.DatetimeIndex:
    first = station.start[0].ceil("h")
    last = (station.start[-1] + pd.Timedelta(minutes=station.step_min)).floor("h")
    return pd.date_range(first, last, freq="h", inclusive="left")


def day_grid(station: Station) -> pd.DatetimeIndex:
    """UTC starts of the whole local-standard-time days inside the hour grid."""
    hours = hour_grid(station)
    offset = pd.Timedelta(hours=station.utc_offset_h)
    first = (hours[0] + offset).ceil("D") - offset
    last = (hours[-1] + pd.Timedelta(hours=1) + offset).floor("D") - offset
    return pd.date_range(first, last, freq="D", inclusive="left")


def metered(station: Station, device: HonestDevice, power_w: np.ndarray, rng: np.random.Generator) -> Metered:
    """The device's clock runs `skew_min` ahead: its hour [H, H+1) is true [H − skew, H + 1 − skew)."""
    hours = hour_grid(station)
    if station.step_min == 1:
        minute = ((_seconds(station.start) - _seconds(hours[:1])[0]) // 60).astype(np.int64)
        shifted = _shift(power_w, np.zeros(0), device.skew_min, 1)
        inside = (minute >= 0) & (minute < len(hours) * 60)
        true_wh = np.bincount(minute[inside] // 60, weights=shifted[inside] / 60.0, minlength=len(hours))
    else:
        seconds = _seconds(_middle(station))
        wanted = _seconds(hours + pd.Timedelta(minutes=30)) - device.skew_min * 60.0
        true_wh = np.interp(wanted, seconds, power_w, left=0.0, right=0.0)
    days = day_grid(station)
    first = int((days[0] - hours[0]) / pd.Timedelta(hours=1))
    daily_true = true_wh[first : first + 24 * len(days)].reshape(len(days), 24).sum(axis=1)

    def meter(values: np.ndarray) -> np.ndarray:
        noisy = values * (1.0 + rng.normal(0.0, METER_NOISE_SIGMA, len(values)))
        return np.maximum(np.round(noisy), 0).astype(np.int64)

    return Metered(hours, meter(true_wh), days, meter(daily_true))


def fleet_readings(station: Station, devices: list[HonestDevice], rng: np.random.Generator) -> list[Metered]:
    site = location.Location(station.latitude, station.longitude, altitude=station.altitude_m)
    clear = site.get_clearsky(_middle(station))
    out = []
    for device in devices:
        power = ac_power_w(station, device, device_weather(station, device, clear))
        out.append(metered(station, device, power, rng))
    return out
