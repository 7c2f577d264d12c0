"""The digital twin: what a small PV device could have produced in a period.

Everything is computed offline with pvlib 0.16 and vectorised over many
readings at once: each reading's period is cut into integration steps, the
steps of a whole batch are laid end to end in flat arrays, and per-reading
energies are summed back with `numpy.bincount`.

Physics per step (time at the step's midpoint):

- solar position: Spencer (1971) declination and equation of time,
  analytical zenith and azimuth (`pvlib.solarposition.*_analytical`);
  within ~0.5 % of SPA on daily totals;
- clear-sky irradiance: Ineichen & Perez (2002) with the monthly Linke
  turbidity of Remund et al. (2003) bundled in pvlib, interpolated to the
  day of year; Kasten & Young (1989) air mass; pressure from altitude;
- plane of array: beam · cos(AOI) + isotropic sky diffuse + ground
  reflection (albedo 0.2);
- cell temperature: SAPM (King et al. 2004), open-rack glass/polymer;
- DC power: PVWatts (Dobos 2014), γ = −0.4 %/K; AC with PVWatts system
  losses and inverter efficiency; degradation 0.5 %/yr of age
  (Jordan & Kurtz 2013 median for crystalline silicon).

Two energies come out per reading: the *clear-sky* energy (typical losses,
the device's orientation or an assumed one) that expectations scale, and an
*upper bound* (cleaner air, cold module, no losses, no degradation, and a
sun-tracking plane when the orientation is unknown) that ceilings scale.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pvlib import (
    atmosphere,
    clearsky,
    irradiance,
    pvsystem,
    solarposition,
    temperature,
)

from .site import assumed_orientation, turbidity_for_day

#: Integration step by period length: 5 min keeps hourly errors ~0.05 %,
#: 15 min keeps daily errors ~0.3 %, hourly steps bound memory for month-long periods.
SHORT_PERIOD_S = 3 * 3600
MEDIUM_PERIOD_S = 2 * 86400
STEP_SHORT_S = 300
STEP_MEDIUM_S = 900
STEP_LONG_S = 3600
#: A step counts as daylit while the sun's upper limb shows through refraction (90.83°),
#: plus a guard: at high latitudes the sun grazes the horizon for many minutes.
DAYLIGHT_ZENITH_DEG = 91.0
#: Beam irradiance [W m-2] the bound allows whenever the sun is up: in clean polar air
#: measured DNI exceeds 200 W m-2 at elevations below 1° (TMY3 Sand Point, Alaska), far
#: above Ineichen, and a steep panel facing the rising sun turns it into power.
LOW_SUN_BOUND_DNI_W_M2 = 250.0
#: Periods at least this long [s] bound an unknown orientation by the plane facing the noon sun.
WHOLE_DAY_S = 20 * 3600
#: Steps evaluated at once; ≈40 float64 temporaries each keeps a chunk near 150 MB.
MAX_STEPS_PER_CHUNK = 500_000

ALBEDO = 0.2
GAMMA_PDC_PER_K = -0.004
#: PVWatts default system losses (soiling, wiring, mismatch, …) [fraction].
SYSTEM_LOSSES = 0.1408
INVERTER_EFFICIENCY = 0.96
DEGRADATION_PER_YEAR = 0.005
#: Typical and cold operating conditions [°C], [m s-1]: the bound must hold on cold, windy days.
TYPICAL_AIR_C, TYPICAL_WIND_MS = 20.0, 1.0
COLD_AIR_C, COLD_WIND_MS = 0.0, 4.0
#: Air cleaner than climatology for the bound: monthly Linke turbidity varies ±25 % year to year.
CLEAN_AIR_TURBIDITY_FACTOR = 0.75
MIN_LINKE_TURBIDITY = 1.5
#: SAPM open-rack glass/polymer coefficients (a, b, ΔT).
SAPM_OPEN_RACK = (-3.56, -0.075, 3.0)

_EPOCH = np.datetime64("1970-01-01T00:00:00", "s")


@dataclass(frozen=True)
class DeviceTwin:
    """A device as the physics sees it. Angles in degrees, azimuth clockwise from north."""

    device_id: str
    capacity_w: float
    latitude: float
    longitude: float
    commissioning_date: dt.date
    linke_turbidity: tuple[float, ...]  # 12 monthly values, January first
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    altitude_m: float = 0.0
    battery_wh: float | None = None

    @property
    def orientation_known(self) -> bool:
        return self.tilt_deg is not None and self.azimuth_deg is not None


@dataclass(frozen=True)
class TwinArrays:
    """Per-reading device parameters as arrays (length N), ready for `clear_sky_energy`."""

    capacity_w: np.ndarray
    latitude: np.ndarray
    longitude: np.ndarray
    altitude_m: np.ndarray
    linke_turbidity: np.ndarray  # (N, 12)
    tilt_deg: np.ndarray
    azimuth_deg: np.ndarray
    orientation_known: np.ndarray
    commissioning_s: (
        np.ndarray
    )  # UTC midnight of the commissioning date [s since epoch]

    @classmethod
    def from_twins(cls, twins: Sequence[DeviceTwin]) -> TwinArrays:
        tilts, azimuths = [], []
        for twin in twins:
            default_tilt, default_azimuth = assumed_orientation(twin.latitude)
            known = twin.orientation_known
            tilts.append(twin.tilt_deg if known else default_tilt)
            azimuths.append(twin.azimuth_deg if known else default_azimuth)
        return cls(
            capacity_w=np.array([t.capacity_w for t in twins], dtype=float),
            latitude=np.array([t.latitude for t in twins], dtype=float),
            longitude=np.array([t.longitude for t in twins], dtype=float),
            altitude_m=np.array([t.altitude_m for t in twins], dtype=float),
            linke_turbidity=np.array(
                [t.linke_turbidity for t in twins], dtype=float
            ).reshape(-1, 12),
            tilt_deg=np.array(tilts, dtype=float),
            azimuth_deg=np.array(azimuths, dtype=float),
            orientation_known=np.array(
                [t.orientation_known for t in twins], dtype=bool
            ),
            commissioning_s=to_epoch_seconds([t.commissioning_date for t in twins]),
        )

    def take(self, index: np.ndarray) -> TwinArrays:
        """The rows at `index`: build arrays once per device, then gather them per reading."""
        return TwinArrays(
            **{name: getattr(self, name)[index] for name in self.__dataclass_fields__}
        )


@dataclass(frozen=True)
class ClearSkyEnergy:
    """Per-reading results of `clear_sky_energy` (arrays of length N)."""

    clear_sky_wh: (
        np.ndarray
    )  # expected AC energy under clear sky, typical losses and age [Wh]
    upper_bound_wh: (
        np.ndarray
    )  # clean air, cold module, no losses; tracker if orientation unknown [Wh]
    daylight_fraction: (
        np.ndarray
    )  # share of the period with the sun above the horizon [0-1]
    night: np.ndarray  # True when the sun never rises inside the period
    # Expected AC energy if the clear-sky global irradiance came as isotropic diffuse light (an overcast
    # sky's shape): orientation barely matters then, so neighbours compare on it under cloud [Wh].
    diffuse_wh: np.ndarray | None = None


def to_epoch_seconds(
    values: Sequence[dt.datetime | dt.date] | np.ndarray,
) -> np.ndarray:
    """UTC seconds since 1970 as float64; naive datetimes are taken as UTC."""
    if isinstance(values, np.ndarray) and np.issubdtype(values.dtype, np.datetime64):
        return (values.astype("datetime64[s]") - _EPOCH).astype(np.int64).astype(float)
    out = np.empty(len(values), dtype=float)
    for i, value in enumerate(values):
        if not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        out[i] = value.timestamp()
    return out


def step_seconds(duration_s: np.ndarray) -> np.ndarray:
    """Integration step [s] chosen by period length [s]."""
    return np.where(
        duration_s <= SHORT_PERIOD_S,
        STEP_SHORT_S,
        np.where(duration_s <= MEDIUM_PERIOD_S, STEP_MEDIUM_S, STEP_LONG_S),
    ).astype(float)


def clear_sky_energy(
    twins: Sequence[DeviceTwin] | TwinArrays,
    period_start: Sequence[dt.datetime] | np.ndarray,
    period_end: Sequence[dt.datetime] | np.ndarray,
    step_minutes: float | None = None,
) -> ClearSkyEnergy:
    """Clear-sky energy [Wh] of N readings at once, `twins[i]` producing reading i.

    Periods are UTC (datetimes or datetime64 arrays). Periods with end ≤ start
    give zeros. `step_minutes` forces one step length; by default 5 min up to
    3 h, 15 min up to 2 days, 60 min beyond.
    """
    arrays = twins if isinstance(twins, TwinArrays) else TwinArrays.from_twins(twins)
    start_s = to_epoch_seconds(period_start)
    end_s = to_epoch_seconds(period_end)
    duration_s = np.maximum(end_s - start_s, 0.0)
    if step_minutes is None:
        step_s = step_seconds(duration_s)
    else:
        step_s = np.full(len(start_s), step_minutes * 60.0)
    n_steps = np.ceil(duration_s / step_s).astype(np.int64)

    count = len(start_s)
    clear_wh = np.zeros(count)
    bound_wh = np.zeros(count)
    diffuse_wh = np.zeros(count)
    daylight_s = np.zeros(count)
    first = 0
    while first < count:
        cumulative = np.cumsum(n_steps[first:])
        last = first + max(
            1, int(np.searchsorted(cumulative, MAX_STEPS_PER_CHUNK, side="right"))
        )
        rows = slice(first, last)
        c, b, d, f = _integrate_chunk(
            arrays.take(np.arange(first, last)),
            start_s[rows],
            end_s[rows],
            step_s[rows],
            n_steps[rows],
        )
        clear_wh[rows], bound_wh[rows], daylight_s[rows], diffuse_wh[rows] = c, b, d, f
        first = last

    with np.errstate(invalid="ignore", divide="ignore"):
        fraction = np.where(
            duration_s > 0, daylight_s / np.where(duration_s > 0, duration_s, 1.0), 0.0
        )
    return ClearSkyEnergy(
        clear_sky_wh=clear_wh,
        upper_bound_wh=bound_wh,
        daylight_fraction=fraction,
        night=daylight_s <= 0.0,
        diffuse_wh=diffuse_wh,
    )


def _integrate_chunk(
    arrays: TwinArrays,
    start_s: np.ndarray,
    end_s: np.ndarray,
    step_s: np.ndarray,
    n_steps: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    count = len(start_s)
    total = int(n_steps.sum())
    if total == 0:
        return np.zeros(count), np.zeros(count), np.zeros(count), np.zeros(count)
    reading = np.repeat(np.arange(count), n_steps)
    offsets = np.cumsum(n_steps) - n_steps
    index_in_period = np.arange(total) - np.repeat(offsets, n_steps)
    t0 = start_s[reading] + index_in_period * step_s[reading]
    t1 = np.minimum(t0 + step_s[reading], end_s[reading])
    mid = 0.5 * (t0 + t1)
    hours = (t1 - t0) / 3600.0

    # Solar geometry for every step; everything after it runs on daylit steps only.
    instant = _EPOCH + mid.astype(np.int64).astype("timedelta64[s]")
    year_start = instant.astype("datetime64[Y]").astype("datetime64[s]")
    day_of_year = (instant - year_start).astype(np.int64) / 86400.0 + 1.0
    hour_utc = (mid % 86400.0) / 3600.0
    declination = solarposition.declination_spencer71(day_of_year)
    equation_of_time_min = solarposition.equation_of_time_spencer71(day_of_year)
    latitude = np.radians(arrays.latitude[reading])
    hour_angle = np.radians(
        (hour_utc - 12.0) * 15.0
        + arrays.longitude[reading]
        + equation_of_time_min / 4.0
    )
    zenith = solarposition.solar_zenith_analytical(latitude, hour_angle, declination)
    day = zenith < np.radians(DAYLIGHT_ZENITH_DEG)
    daylight_s = np.bincount(
        reading, weights=np.where(day, hours * 3600.0, 0.0), minlength=count
    )

    reading, hours, day_of_year = reading[day], hours[day], day_of_year[day]
    latitude, hour_angle, declination, zenith = (
        latitude[day],
        hour_angle[day],
        declination[day],
        zenith[day],
    )
    azimuth = solarposition.solar_azimuth_analytical(
        latitude, hour_angle, declination, zenith
    )
    zenith_deg, azimuth_deg = np.degrees(zenith), np.degrees(azimuth)

    turbidity = turbidity_for_day(arrays.linke_turbidity[reading], day_of_year)
    altitude = arrays.altitude_m[reading]
    airmass = atmosphere.get_absolute_airmass(
        atmosphere.get_relative_airmass(zenith_deg), atmosphere.alt2pres(altitude)
    )
    dni_extra = irradiance.get_extra_radiation(day_of_year)
    with np.errstate(divide="ignore", invalid="ignore"):
        typical = _finite(
            clearsky.ineichen(zenith_deg, airmass, turbidity, altitude, dni_extra)
        )
        clean_turbidity = np.maximum(
            turbidity * CLEAN_AIR_TURBIDITY_FACTOR, MIN_LINKE_TURBIDITY
        )
        clean = _finite(
            clearsky.ineichen(zenith_deg, airmass, clean_turbidity, altitude, dni_extra)
        )
    clean["dni"] = np.maximum(clean["dni"], LOW_SUN_BOUND_DNI_W_M2)

    tilt = arrays.tilt_deg[reading]
    surface_azimuth = arrays.azimuth_deg[reading]
    poa_typical = _plane_of_array(
        tilt, surface_azimuth, zenith_deg, azimuth_deg, typical
    )
    # Unknown orientation: a plane facing the sun gathers the most any fixed plane could at each
    # instant; over a whole day the plane facing the noon sun comes within a few percent of the
    # best fixed plane, and a tracker bound there would let ×2 inflations through.
    known = arrays.orientation_known[reading]
    whole_days = (end_s - start_s)[reading] >= WHOLE_DAY_S
    noon_tilt = np.degrees(np.abs(latitude - declination))
    noon_azimuth = np.where(latitude >= declination, 180.0, 0.0)
    bound_tilt = np.where(known, tilt, np.where(whole_days, noon_tilt, zenith_deg))
    bound_azimuth = np.where(
        known, surface_azimuth, np.where(whole_days, noon_azimuth, azimuth_deg)
    )
    # A bright overcast sky can send the whole clear-sky global irradiance as diffuse light,
    # which reaches a plane whose back faces the sun (measured at Sand Point on summer mornings).
    all_diffuse = irradiance.isotropic(bound_tilt, clean["ghi"])
    poa_clean = np.maximum(
        _plane_of_array(bound_tilt, bound_azimuth, zenith_deg, azimuth_deg, clean),
        all_diffuse
        + irradiance.get_ground_diffuse(bound_tilt, clean["ghi"], albedo=ALBEDO),
    )

    capacity = arrays.capacity_w[reading]
    a, b, delta_t = SAPM_OPEN_RACK
    cell_typical = temperature.sapm_cell(
        poa_typical, TYPICAL_AIR_C, TYPICAL_WIND_MS, a, b, delta_t
    )
    cell_cold = temperature.sapm_cell(
        poa_clean, COLD_AIR_C, COLD_WIND_MS, a, b, delta_t
    )
    dc_typical = pvsystem.pvwatts_dc(
        poa_typical, cell_typical, capacity, GAMMA_PDC_PER_K
    )
    dc_bound = pvsystem.pvwatts_dc(poa_clean, cell_cold, capacity, GAMMA_PDC_PER_K)

    age_years = np.maximum(
        0.0, (mid[day] - arrays.commissioning_s[reading]) / (365.25 * 86400.0)
    )
    degradation = np.maximum(0.0, 1.0 - DEGRADATION_PER_YEAR * age_years)
    ac_typical = dc_typical * (1.0 - SYSTEM_LOSSES) * INVERTER_EFFICIENCY * degradation
    poa_diffuse = irradiance.isotropic(tilt, typical["ghi"]) + irradiance.get_ground_diffuse(
        tilt, typical["ghi"], albedo=ALBEDO)
    ac_diffuse = pvsystem.pvwatts_dc(poa_diffuse, cell_typical, capacity, GAMMA_PDC_PER_K) * (
        (1.0 - SYSTEM_LOSSES) * INVERTER_EFFICIENCY * degradation)

    clear_wh = np.bincount(
        reading, weights=np.maximum(ac_typical, 0.0) * hours, minlength=count
    )
    bound_wh = np.bincount(
        reading, weights=np.maximum(dc_bound, 0.0) * hours, minlength=count
    )
    diffuse_wh = np.bincount(
        reading, weights=np.maximum(ac_diffuse, 0.0) * hours, minlength=count
    )
    return clear_wh, bound_wh, daylight_s, diffuse_wh


def _finite(sky: dict[str, np.ndarray] | pd.DataFrame) -> dict[str, np.ndarray]:
    """Irradiance components with the NaN of a sun at or below the horizon read as 0."""
    return {
        name: np.nan_to_num(np.asarray(sky[name], dtype=float))
        for name in ("ghi", "dni", "dhi")
    }


def _plane_of_array(
    tilt_deg: np.ndarray,
    surface_azimuth_deg: np.ndarray,
    zenith_deg: np.ndarray,
    azimuth_deg: np.ndarray,
    sky: dict[str, np.ndarray] | pd.DataFrame,
) -> np.ndarray:
    """Plane-of-array irradiance [W m-2]: beam + isotropic sky diffuse + ground reflection."""
    angle = irradiance.aoi(tilt_deg, surface_azimuth_deg, zenith_deg, azimuth_deg)
    beam = sky["dni"] * np.maximum(np.cos(np.radians(angle)), 0.0)
    diffuse = irradiance.isotropic(tilt_deg, sky["dhi"])
    ground = irradiance.get_ground_diffuse(tilt_deg, sky["ghi"], albedo=ALBEDO)
    return beam + diffuse + ground
