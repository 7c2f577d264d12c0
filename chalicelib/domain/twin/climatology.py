"""How cloudy a month usually is at a place: mean and σ of the daily clear-sky index.

Source: the monthly distributions of daily mean GHI shipped by PyPI
`gsee-climate-data` 1.0.0 (NASA MERRA-2 reanalysis 2011-2015 on a 3° grid,
128-bin histograms per cell and month; Gelaro et al. 2017, Pfenninger &
Staffell 2016). The package's arrays are read once per process and reduced
to a mean and σ per cell and month. Dividing by the month's mean clear-sky
GHI at the cell centre (Ineichen, pvlib Linke turbidity) gives the daily
clear-sky index kc = GHI / GHI_clear, which scales any device's clear-sky
energy. MERRA-2 runs up to ~30 % sunny against ground stations, so the mean
is capped at `MAX_MEAN_CLEAR_SKY_INDEX`.

The daily index is bimodal (clear vs overcast); its σ is used only to flag,
never to reject.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from pvlib import atmosphere, clearsky, irradiance, solarposition

from .site import site_constants, turbidity_for_day

MAX_MEAN_CLEAR_SKY_INDEX = 0.9
MIN_SIGMA_CLEAR_SKY_INDEX = 0.05
#: Lag-1 autocorrelation of the daily clear-sky index (weather persists ~2 days):
#: the σ of an n-day mean shrinks as sqrt((1 + ρ) / ((1 - ρ) n)), not sqrt(1 / n).
DAILY_AUTOCORRELATION = 0.3
#: Below a day σ grows as daylight hours shrink, as (D / h)^¼ (hourly kc σ runs ~1.5× the daily σ),
#: up to this cap: the hourly clear-sky index rarely spreads wider.
SUBDAILY_SIGMA_EXPONENT = 0.25
MAX_SUBDAILY_SIGMA = 0.45
TYPICAL_DAYLIGHT_H = 12.0
GRID_STEP_DEG = 3.0


@dataclass(frozen=True)
class MonthlyClearSkyIndex:
    """Mean and σ of the daily clear-sky index [-] for months January..December, and the cell used."""

    mean: tuple[float, ...]
    sigma: tuple[float, ...]
    cell_latitude: float
    cell_longitude: float


_LOADING = threading.Lock()


def _cell_statistics() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-cell monthly mean and σ of daily mean GHI [W m-2], NaN where the package has no data.

    Loaded once per process: handlers running in threads (the local dispatcher) wait for the
    first load instead of each loading the package at the same time."""
    with _LOADING:
        return _load_cell_statistics()


@lru_cache(maxsize=1)
def _load_cell_statistics() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    import gsee_climate_data

    data = gsee_climate_data.load()
    values = data["xk"].astype(float)
    weights = np.nan_to_num(data["pk"].astype(float), nan=0.0)
    weights = np.where(np.isfinite(values), np.maximum(weights, 0.0), 0.0)
    values = np.nan_to_num(values, nan=0.0)
    total = weights.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (values * weights).sum(axis=-1) / total
        variance = (((values - mean[..., None]) ** 2) * weights).sum(axis=-1) / total
    missing = total <= 0
    mean[missing] = np.nan
    variance[missing] = np.nan
    return (
        np.asarray(data["lat"], float),
        np.asarray(data["lon"], float),
        mean,
        np.sqrt(variance),
    )


def _nearest_cell(latitude: float, longitude: float) -> tuple[int, int]:
    """The nearest grid cell holding data (ocean cells fall back to nearby land)."""
    lats, lons, mean, _ = _cell_statistics()
    has_data = np.all(np.isfinite(mean), axis=-1)
    lat_grid, lon_grid = np.meshgrid(lats, lons, indexing="ij")
    delta_lon = (lon_grid - longitude + 180.0) % 360.0 - 180.0
    distance = np.hypot(lat_grid - latitude, delta_lon * np.cos(np.radians(latitude)))
    distance = np.where(has_data, distance, np.inf)
    i, j = np.unravel_index(int(np.argmin(distance)), distance.shape)
    return int(i), int(j)


@lru_cache(maxsize=4096)
def _cell_clear_sky_index(i: int, j: int) -> MonthlyClearSkyIndex:
    lats, lons, mean, sigma = _cell_statistics()
    latitude, longitude = float(lats[i]), float(lons[j])
    site = site_constants(latitude, longitude)
    clear = monthly_clear_sky_ghi(
        latitude, longitude, site.linke_turbidity, site.altitude_m
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        kc_mean = np.where(clear > 0, mean[i, j] / clear, MAX_MEAN_CLEAR_SKY_INDEX)
        kc_sigma = np.where(clear > 0, sigma[i, j] / clear, MIN_SIGMA_CLEAR_SKY_INDEX)
    kc_mean = np.clip(
        np.nan_to_num(kc_mean, nan=MAX_MEAN_CLEAR_SKY_INDEX),
        0.05,
        MAX_MEAN_CLEAR_SKY_INDEX,
    )
    kc_sigma = np.clip(np.nan_to_num(kc_sigma, nan=0.3), MIN_SIGMA_CLEAR_SKY_INDEX, 1.0)
    return MonthlyClearSkyIndex(
        mean=tuple(round(float(v), 4) for v in kc_mean),
        sigma=tuple(round(float(v), 4) for v in kc_sigma),
        cell_latitude=latitude,
        cell_longitude=longitude,
    )


def monthly_clear_sky_index(latitude: float, longitude: float) -> MonthlyClearSkyIndex:
    """Climatological mean and σ of the daily clear-sky index for each month at a place.

    The first call loads the package (~0.1 s); each new 3° cell then costs a
    few milliseconds and is cached for the life of the process.
    """
    return _grid_point_index(*_grid_point(latitude, longitude))


def clear_sky_index_table(
    latitudes: np.ndarray, longitudes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """`monthly_clear_sky_index` for many places at once: mean and σ arrays of shape (N, 12)."""
    lats, lons, _, _ = _cell_statistics()
    rows = np.clip(
        np.rint((np.asarray(latitudes) - lats[0]) / GRID_STEP_DEG), 0, len(lats) - 1
    )
    columns = np.rint((np.asarray(longitudes) - lons[0]) / GRID_STEP_DEG) % len(lons)
    keys = rows.astype(np.int64) * len(lons) + columns.astype(np.int64)
    unique, inverse = np.unique(keys, return_inverse=True)
    found = [_grid_point_index(int(k) // len(lons), int(k) % len(lons)) for k in unique]
    mean = np.array([f.mean for f in found], dtype=float).reshape(-1, 12)
    sigma = np.array([f.sigma for f in found], dtype=float).reshape(-1, 12)
    return mean[inverse], sigma[inverse]


def _grid_point(latitude: float, longitude: float) -> tuple[int, int]:
    lats, lons, _, _ = _cell_statistics()
    row = int(np.clip(round((latitude - lats[0]) / GRID_STEP_DEG), 0, len(lats) - 1))
    column = round((longitude - lons[0]) / GRID_STEP_DEG) % len(lons)
    return row, column


@lru_cache(maxsize=8192)
def _grid_point_index(row: int, column: int) -> MonthlyClearSkyIndex:
    lats, lons, _, _ = _cell_statistics()
    return _cell_clear_sky_index(*_nearest_cell(float(lats[row]), float(lons[column])))


def monthly_ghi(latitude: float, longitude: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and σ of daily mean GHI [W m-2] for each month at the nearest cell with data."""
    _, _, mean, sigma = _cell_statistics()
    cell = _grid_point_index(*_grid_point(latitude, longitude))
    i, j = _grid_point(cell.cell_latitude, cell.cell_longitude)
    return mean[i, j].copy(), sigma[i, j].copy()


def monthly_clear_sky_ghi(
    latitude: float,
    longitude: float,
    linke_turbidity: Sequence[float],
    altitude_m: float = 0.0,
) -> np.ndarray:
    """Mean daily clear-sky GHI [W m-2, 24-h mean] of each month (12 values), at 30-min steps over a year."""
    half_hours = np.arange(365 * 48)
    day_of_year = half_hours // 48 + 1.0
    hour_utc = (half_hours % 48) / 2.0 + 0.25
    declination = solarposition.declination_spencer71(day_of_year)
    equation_of_time_min = solarposition.equation_of_time_spencer71(day_of_year)
    hour_angle = np.radians(
        (hour_utc - 12.0) * 15.0 + longitude + equation_of_time_min / 4.0
    )
    zenith_deg = np.degrees(
        solarposition.solar_zenith_analytical(
            np.radians(latitude), hour_angle, declination
        )
    )
    turbidity = turbidity_for_day(
        np.tile(np.asarray(linke_turbidity, dtype=float), (len(day_of_year), 1)),
        day_of_year,
    )
    airmass = atmosphere.get_absolute_airmass(
        atmosphere.get_relative_airmass(zenith_deg), atmosphere.alt2pres(altitude_m)
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        sky = clearsky.ineichen(
            zenith_deg,
            airmass,
            turbidity,
            altitude_m,
            irradiance.get_extra_radiation(day_of_year),
        )
    ghi = np.where(zenith_deg < 90.0, np.nan_to_num(sky["ghi"]), 0.0)
    month = (np.datetime64("2021-01-01") + (day_of_year.astype(np.int64) - 1)).astype(
        "datetime64[M]"
    )
    month_index = (month - np.datetime64("2021-01", "M")).astype(np.int64)
    return np.bincount(month_index, weights=ghi, minlength=12) / np.bincount(
        month_index, minlength=12
    )


def period_sigma(
    sigma_daily: np.ndarray, duration_h: np.ndarray, daylight_fraction: np.ndarray
) -> np.ndarray:
    """σ of the clear-sky index over a period, from the daily σ [-], duration [h] and daylight share [0-1].

    Longer than a day: averaging over n days with AR(1) persistence ρ.
    Shorter: more variable as the daylit hours h shrink, σ_day · (D / h)^¼, capped.
    """
    sigma_daily = np.asarray(sigma_daily, dtype=float)
    days = np.asarray(duration_h, dtype=float) / 24.0
    persistence = (1.0 + DAILY_AUTOCORRELATION) / (1.0 - DAILY_AUTOCORRELATION)
    multi_day = sigma_daily * np.minimum(
        1.0, np.sqrt(persistence / np.maximum(days, 1e-9))
    )
    daylit_h = np.maximum(
        np.asarray(duration_h, float) * np.asarray(daylight_fraction, float), 0.25
    )
    growth = np.maximum(1.0, (TYPICAL_DAYLIGHT_H / daylit_h) ** SUBDAILY_SIGMA_EXPONENT)
    sub_day = np.maximum(
        sigma_daily, np.minimum(sigma_daily * growth, MAX_SUBDAILY_SIGMA)
    )
    return np.where(days >= 1.0, multi_day, sub_day)


def month_index(epoch_s: np.ndarray) -> np.ndarray:
    """Month 0..11 of UTC instants [s since epoch]."""
    return (
        np.asarray(epoch_s, dtype=float)
        .astype("datetime64[s]")
        .astype("datetime64[M]")
        .astype(np.int64)
        % 12
    )
