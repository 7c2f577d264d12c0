"""Judge honest and inflated readings of a fleet, lone and with its 12 neighbours as peers."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from chalicelib.domain.twin.climatology import monthly_ghi
from chalicelib.domain.twin.judging import HIGH_RULES, ReadingToJudge, judge
from chalicelib.domain.twin.peers import PeerHistogram
from chalicelib.domain.twin.persistence import DeviceHistory, fold, review_due
from chalicelib.domain.twin.physics import DeviceTwin, clear_sky_energy
from chalicelib.domain.twin.site import site_constants

from .data import Station
from .honest import HonestDevice, Metered

INFLATIONS = (1.3, 1.5, 2.0, 3.0)
PERSISTENT_INFLATION = 1.3
FLAT_RULE_MARGIN = 1.2
NOW = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
MODES = ("lone", "fleet")
PERIODS = ("hourly", "daily")


def twins_for(station: Station, devices: list[HonestDevice]) -> dict[str, DeviceTwin]:
    commissioned = (station.start[0] - pd.Timedelta(days=2)).date()
    twins = {}
    for d in devices:
        constants = site_constants(d.latitude, d.longitude)
        twins[f"d{d.index:02d}"] = DeviceTwin(
            device_id=f"d{d.index:02d}",
            capacity_w=d.capacity_w,
            latitude=d.latitude,
            longitude=d.longitude,
            commissioning_date=commissioned,
            linke_turbidity=constants.linke_turbidity,
            tilt_deg=d.tilt_deg if d.declared else None,
            azimuth_deg=d.azimuth_deg if d.declared else None,
            altitude_m=constants.altitude_m,
        )
    return twins


def site_yield_kwh_per_kwp(latitude: float, longitude: float) -> float:
    """Yearly yield from climatological GHI with a performance ratio of 0.8 [kWh/kWp]."""
    ghi_mean_w_m2, _ = monthly_ghi(latitude, longitude)
    days = np.array([31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])
    return float(np.sum(ghi_mean_w_m2 * 24.0 / 1000.0 * days) * 0.8)


@dataclass
class Slots:
    """One period kind (hourly or daily) of a fleet: readings on a common grid of slots."""

    starts: pd.DatetimeIndex
    hours: float
    wh: np.ndarray  # (devices, slots) honest integer Wh; 0 = not sent

    def __post_init__(self) -> None:
        step = dt.timedelta(hours=self.hours)
        self.periods = [(start, start + step) for start in self.starts.to_pydatetime()]

    def readings(
        self, device_id: str, row: int, factor: float = 1.0, within: np.ndarray | None = None
    ) -> list[ReadingToJudge]:
        sent = self.wh[row] > 0 if within is None else within & (self.wh[row] > 0)
        return [
            ReadingToJudge(f"{device_id}-{s}", device_id, *self.periods[s], round(float(self.wh[row, s]) * factor))
            for s in np.flatnonzero(sent)
        ]


def slots_of(metered: list[Metered], period: str) -> Slots:
    if period == "hourly":
        return Slots(metered[0].hour_start, 1.0, np.stack([m.hourly_wh for m in metered]))
    return Slots(metered[0].day_start, 24.0, np.stack([m.daily_wh for m in metered]))


@dataclass
class Outcome:
    """Statuses and rules of judged readings, with the flat rule's verdicts beside them."""

    status: list[np.ndarray] = field(default_factory=list)
    rule: list[np.ndarray] = field(default_factory=list)
    flat: list[np.ndarray] = field(default_factory=list)

    def add(self, statuses: list[str], rules: list[str], flat: np.ndarray) -> None:
        self.status.append(np.array(statuses))
        self.rule.append(np.array(rules))
        self.flat.append(flat)

    def merged(self, other: Outcome) -> Outcome:
        return Outcome(self.status + other.status, self.rule + other.rule, self.flat + other.flat)

    def _all(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.status:
            return np.array([]), np.array([]), np.array([], dtype=bool)
        return np.concatenate(self.status), np.concatenate(self.rule), np.concatenate(self.flat)

    @property
    def count(self) -> int:
        return sum(len(s) for s in self.status)

    def share(self, what: str) -> float:
        status, rule, flat = self._all()
        if not len(status):
            return float("nan")
        high = np.isin(rule, list(HIGH_RULES))
        masks = {
            "rejected": status == "rejected",
            "flagged": status == "flagged",
            "awaiting": status == "awaiting_peers",
            "caught": (status == "rejected") | ((status == "flagged") & high),
            "flat": flat,
        }
        return 100.0 * float(np.mean(masks[what]))


def peer_ratios(slots: Slots, reference_wh: np.ndarray) -> np.ndarray:
    """Ratios per kind (plane clear sky, all-diffuse sky), device and slot: energy / reference; NaN if not sent."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((slots.wh > 0) & (reference_wh > 0), slots.wh / reference_wh, np.nan)


def peers_for(ratios: np.ndarray, row: int, device_id: str, slot_ids: np.ndarray,
              known: np.ndarray) -> dict[str, PeerHistogram]:
    """Each reading's histogram from the *other* devices' ratios (both kinds) in the same slot, the plane
    ratios of devices with a declared orientation apart from those on an assumed plane (as the validator keeps
    them)."""
    others = np.delete(ratios, row, axis=1)
    declared = np.delete(known, row)
    out = {}
    for s in slot_ids:
        plane, diffuse = others[0, :, s], others[1, :, s]
        sent = np.isfinite(plane)
        out[f"{device_id}-{s}"] = PeerHistogram.from_ratios(
            plane[sent & declared].tolist(), diffuse[sent].tolist(), plane[sent & ~declared].tolist())
    return out


def clear_sky_table(slots: Slots, twins: dict[str, DeviceTwin]) -> np.ndarray:
    """Clear-sky and all-diffuse-sky energy [Wh] (shape 2 × devices × slots) of every slot: what judge() puts
    in Judgement.clear_sky_wh and .diffuse_wh, from the twin's physics directly."""
    devices, slot_count = slots.wh.shape
    starts = np.tile(slots.starts.tz_convert(None).to_numpy().astype("datetime64[s]"), devices)
    ends = starts + np.timedelta64(round(slots.hours * 3600), "s")
    sky = clear_sky_energy([t for t in twins.values() for _ in range(slot_count)], starts, ends)
    assert sky.diffuse_wh is not None
    return np.stack([sky.clear_sky_wh, sky.diffuse_wh]).reshape(2, devices, slot_count)


def evaluate_fleet(
    station: Station, twins: dict[str, DeviceTwin], metered: list[Metered], results: dict[tuple, Outcome]
) -> tuple[Slots, np.ndarray]:
    """Add this fleet's outcomes to results[(station, period, mode, factor)]; return hourly slots and ratios."""
    ids = list(twins)
    hourly: tuple[Slots, np.ndarray] | None = None
    for period in PERIODS:
        slots = slots_of(metered, period)
        ratios = peer_ratios(slots, clear_sky_table(slots, twins))
        if period == "hourly":
            hourly = slots, ratios
        for mode in MODES:
            for factor in (1.0, *INFLATIONS):
                readings: list[ReadingToJudge] = []
                peers: dict[str, PeerHistogram] = {}
                flat = []
                for row, device_id in enumerate(ids):
                    mine = slots.readings(device_id, row, factor)
                    readings += mine
                    twin = twins[device_id]
                    limit = twin.capacity_w * _yield(twin) / 8760.0 * slots.hours * FLAT_RULE_MARGIN
                    flat.append(np.array([r.energy_wh > limit for r in mine], dtype=bool))
                    if mode == "fleet":
                        peers.update(peers_for(ratios, row, device_id, np.flatnonzero(slots.wh[row] > 0),
                                               np.array([twins[d].orientation_known for d in ids])))
                judged = judge(readings, twins, {}, NOW, peers=peers)
                results.setdefault((station.name, period, mode, factor), Outcome()).add(
                    [j.status for j in judged], [j.rule for j in judged], np.concatenate(flat)
                )
    assert hourly is not None
    return hourly


_YIELDS: dict[tuple[float, float], float] = {}


def _yield(twin: DeviceTwin) -> float:
    key = (round(twin.latitude, 1), round(twin.longitude, 1))
    if key not in _YIELDS:
        _YIELDS[key] = site_yield_kwh_per_kwp(*key)
    return _YIELDS[key]


@dataclass
class Persistence:
    """Day (1-based) on which review_due first fired, per device; None = never."""

    inflated: dict[tuple[str, str], list[int | None]] = field(default_factory=lambda: defaultdict(list))
    declared: dict[tuple[str, str], list[bool]] = field(default_factory=lambda: defaultdict(list))
    honest: dict[tuple[str, str], list[int | None]] = field(default_factory=lambda: defaultdict(list))


def persistent_inflation(
    station: Station,
    twins: dict[str, DeviceTwin],
    days: pd.DatetimeIndex,
    hourly: Slots,
    ratios: np.ndarray,
    out: Persistence,
) -> None:
    """Hourly readings judged day by day, histories folded: honest devices and ×1.3 copies of each."""
    slot_day = np.floor((hourly.starts - days[0]) / pd.Timedelta(days=1)).astype(int)
    ids = list(twins)
    copies = {f"x{d}": replace(t, device_id=f"x{d}") for d, t in twins.items()}
    everyone = {**twins, **copies}
    for mode in MODES:
        histories: dict[str, DeviceHistory] = {d: DeviceHistory() for d in everyone}
        first: dict[str, int | None] = {d: None for d in everyone}
        for day in range(len(days)):
            in_day = slot_day == day
            readings: list[ReadingToJudge] = []
            peers: dict[str, PeerHistogram] = {}
            for row, device_id in enumerate(ids):
                sent = np.flatnonzero(in_day & (hourly.wh[row] > 0))
                for name, factor in ((device_id, 1.0), (f"x{device_id}", PERSISTENT_INFLATION)):
                    readings += [
                        replace(r, device_id=name, reading_id=f"{name}-{r.reading_id.rsplit('-', 1)[1]}")
                        for r in hourly.readings(device_id, row, factor, in_day)
                    ]
                    if mode == "fleet":
                        peers.update(peers_for(ratios, row, name, sent,
                                               np.array([twins[d].orientation_known for d in ids])))
            if not readings:
                continue
            judged = judge(readings, everyone, histories, NOW, peers=peers)
            for reading, judgement in zip(readings, judged, strict=True):
                histories[reading.device_id] = fold(histories[reading.device_id], judgement, reading.energy_wh)
            for device_id in everyone:
                if first[device_id] is None and review_due(histories[device_id]) is not None:
                    first[device_id] = day + 1
        for device_id in ids:
            out.honest[station.name, mode].append(first[device_id])
            out.inflated[station.name, mode].append(first[f"x{device_id}"])
            out.declared[station.name, mode].append(twins[device_id].orientation_known)
