"""Judging readings against the digital twin: hard physical rules, then the neighbours, then climatology.

A reading is *rejected* when physics or bookkeeping rules it out (bad or
over-long period, future, before commissioning, negative, energy at night,
above nameplate × hours, above the clear-sky ceiling). Otherwise its ratio
k = energy / clear-sky energy is compared with a reference:

- its **neighbours** — devices in nearby geohash cells that reported the same
  period (`peers.PeerHistogram`), when at least `PEER_MIN` did: far above
  their robust centre is *flagged* (`above_peers`), and so far above the
  brightest of them that no local cloud explains it, *rejected*
  (`far_above_peers`); the reason carries their figures;
- while too few have reported and the reading may still wait, it *awaits*
  them (`awaiting_peers`);
- else **climatology** — the month's clear-sky index blended with the
  device's own accepted history — and *flagged* beyond `FLAG_SIGMAS` σ above (the rule keeps
  its name, `beyond_2_sigma_high`, for clients that match on it).

Producing less than expected is never held: it claims less. A low reading is
accepted with a note (`below_peers`, `below_expected`), and a device that
stays low gets a maintenance note (`persistence`).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ..readings import ReadingStatus
from ..time import MAX_PERIOD, iso
from .climatology import (
    clear_sky_index_table,
    month_index,
    period_sigma,
)
from .peers import PeerHistogram
from .persistence import DeviceHistory
from .physics import (
    DeviceTwin,
    TwinArrays,
    clear_sky_energy,
    to_epoch_seconds,
)

#: Energy [Wh] a meter may show with no sun: resolution, integer rounding and standby drift.
METER_NOISE_WH = 5
#: Device clocks drift; a period may end this far past the validation time.
FUTURE_TOLERANCE = dt.timedelta(minutes=5)
#: The commissioning date is local; the earliest time zone is UTC+14.
COMMISSIONING_TOLERANCE = dt.timedelta(hours=14)
#: Cloud enhancement above clear sky by period length [h]: ≈1.8× at 1-5 min, ≈1.5× at 15 min,
#: fading as edges of clouds average out; interpolated in log(hours). Applied to the clean-air,
#: cold-module, loss-free upper bound, itself ~20 % above typical clear-sky output.
CEILING_MARGIN_HOURS = (5 / 60, 0.25, 1.0, 3.0, 24.0, 744.0)
CEILING_MARGINS = (1.8, 1.5, 1.3, 1.2, 1.1, 1.05)
#: Diffuse light the clear-sky model underrates at low sun (overcast dawn brightening) [W per W].
LOW_SUN_ALLOWANCE_W_PER_W = 0.03
#: The device's own history counts like this many readings of climatology (a prior weight).
HISTORY_PRIOR_WEIGHT = 30
MIN_SIGMA_RATIO = 0.05
#: Above the climatological expectation by this many σ is held (fit set, lone devices: honest hours held 1.8 %,
#: days 2.5 %; 2σ held 2.8 % of honest hours).
FLAG_SIGMAS = 2.5
#: Days and longer average the weather out: held above 2.25σ (fit set, lone: honest days held 3.6 %, ×2 days
#: caught 64 %; at 2.5σ 2.5 % and 61 %).
FLAG_SIGMAS_DAYS = 2.25
#: Ratios this far off suggest a unit slip (W vs kW, Wh vs kWh) rather than weather.
UNIT_SLIP_RATIO = 500.0
#: Neighbours needed before they are the reference (DREC_PEER_MIN).
PEER_MIN = 5
#: Honest neighbours never share a ratio exactly: orientation under diffuse light, soiling, mismatch,
#: losses. Their spread is at least this share of their median (fitted on the fit set, see bench_twin).
PEER_RELATIVE_FLOOR = 0.10
#: Above the neighbours' median by this many spreads is flagged, and only when also this far above it.
PEER_FLAG_SPREADS = 3.0
PEER_FLAG_MIN_EXCESS = 0.25
#: Rejected only when this many spreads above the median and this far above the brightest neighbour:
#: beyond any plausible hole in the clouds over one device.
PEER_REJECT_SPREADS = 10.0
PEER_REJECT_OVER_HIGHEST = 1.5
#: Below the reference by this many spreads earns a note on the reading, nothing more.
LOW_SPREADS = 3.0
#: Neighbours at or above this median ratio (of their clear-sky plane energy) see mostly direct sun: they are
#: compared on that ratio; below it the sky is mostly cloud, and they are compared on their ratio to an
#: all-diffuse sky, where orientation matters little (fit set: daily bias of honest devices ≤ 0.12 in log).
CLEAR_REGIME_RATIO = 0.65

ACCEPTED, REJECTED, FLAGGED = ReadingStatus.ACCEPTED.value, ReadingStatus.REJECTED.value, ReadingStatus.FLAGGED.value
RULES = (
    "bad_period",
    "period_too_long",
    "in_future",
    "before_commissioning",
    "negative_energy",
    "night",
    "above_capacity",
    "above_ceiling",
    "far_above_peers",
    "above_peers",
    "awaiting_peers",
    "beyond_2_sigma_high",
    "below_peers",
    "below_expected",
)
AWAITING = ReadingStatus.AWAITING_PEERS.value
_STATUS_OF_RULE = {
    "ok": ACCEPTED,
    **{rule: REJECTED for rule in RULES},
    "above_peers": FLAGGED,
    "beyond_2_sigma_high": FLAGGED,
    "awaiting_peers": AWAITING,
    "below_peers": ACCEPTED,
    "below_expected": ACCEPTED,
}
#: Rules a high reading is held or refused by when it is not impossible: what "caught" counts.
HIGH_RULES = frozenset({"above_ceiling", "above_capacity", "far_above_peers", "above_peers", "beyond_2_sigma_high"})


@dataclass(frozen=True)
class ReadingToJudge:
    reading_id: str
    device_id: str
    period_start: dt.datetime
    period_end: dt.datetime
    energy_wh: int


@dataclass(frozen=True)
class Judgement:
    reading_id: str
    status: str  # "accepted" | "rejected" | "flagged"
    rule: str
    reason: str
    expected_wh: float
    sigma_wh: float
    ceiling_wh: float
    clear_sky_wh: float
    ratio: float = 0.0  # energy / clear-sky energy; 0 when the period has no daylight to speak of
    reference: str = "climatology"  # "peers" | "climatology" | "none" (rejected before any reference)
    peer_count: int = 0
    peer_median: float = 0.0
    peer_spread: float = 0.0
    climate_ratio: float = 0.0  # the month's climatological clear-sky index alone (no device history)
    climate_spread: float = 0.0
    daylight_h: float = 0.0
    period_start: dt.datetime | None = None
    diffuse_ratio: float = 0.0  # energy / the all-diffuse-sky energy
    diffuse_wh: float = 0.0
    regime: str = "clear"  # which ratio the neighbours were compared on: "clear" (plane) or "overcast" (diffuse)


def ceiling_margin(duration_h: np.ndarray) -> np.ndarray:
    """Margin over the clear-sky upper bound for periods of `duration_h` hours."""
    return np.interp(
        np.log(np.maximum(duration_h, 1e-6)),
        np.log(CEILING_MARGIN_HOURS),
        CEILING_MARGINS,
    )


def judge(
    readings: Sequence[ReadingToJudge],
    twins: Mapping[str, DeviceTwin],
    histories: Mapping[str, DeviceHistory],
    now: dt.datetime,
    peers: Mapping[str, PeerHistogram] | None = None,
    counted: Collection[str] = (),
    may_wait: Collection[str] = (),
    peer_min: int = PEER_MIN,
) -> list[Judgement]:
    """Judge a batch at once; every reading's device must be in `twins`.

    `peers[reading_id]` is the histogram of the neighbours' ratios for that reading's period; when the
    reading's own ratio is already in it (`counted`: judged before, awaiting its peers) it is taken out.
    A reading in `may_wait` with fewer than `peer_min` neighbours awaits them instead of being judged
    on climatology.
    """
    if not readings:
        return []
    device_ids = list(dict.fromkeys(r.device_id for r in readings))
    position = {device_id: i for i, device_id in enumerate(device_ids)}
    device_of = np.array([position[r.device_id] for r in readings], dtype=np.int64)
    devices = TwinArrays.from_twins([twins[d] for d in device_ids])
    arrays = devices.take(device_of)

    start_s = to_epoch_seconds([r.period_start for r in readings])
    end_s = to_epoch_seconds([r.period_end for r in readings])
    energy = np.array([r.energy_wh for r in readings], dtype=float)
    duration_h = (end_s - start_s) / 3600.0
    now_s = to_epoch_seconds([now])[0]

    bad_period = end_s <= start_s
    too_long = ~bad_period & (end_s - start_s > MAX_PERIOD.total_seconds())
    in_future = end_s > now_s + FUTURE_TOLERANCE.total_seconds()
    early = start_s < arrays.commissioning_s - COMMISSIONING_TOLERANCE.total_seconds()
    negative = energy < 0
    computable = ~(bad_period | too_long)

    rows = np.flatnonzero(computable)
    clear = np.zeros(len(readings))
    bound = np.zeros(len(readings))
    daylight = np.zeros(len(readings))
    night = np.zeros(len(readings), dtype=bool)
    if len(rows):
        sky = clear_sky_energy(
            arrays.take(rows),
            start_s[rows].astype("datetime64[s]"),
            end_s[rows].astype("datetime64[s]"),
        )
        clear[rows], bound[rows] = sky.clear_sky_wh, sky.upper_bound_wh
        daylight[rows], night[rows] = sky.daylight_fraction, sky.night

    capacity_wh = arrays.capacity_w * np.maximum(duration_h, 0.0)
    hours = np.maximum(duration_h, 0.0)
    ceiling = np.where(
        night,
        float(METER_NOISE_WH),
        bound * ceiling_margin(hours)
        + arrays.capacity_w * LOW_SUN_ALLOWANCE_W_PER_W * hours * daylight
        + METER_NOISE_WH,
    )
    ceiling = np.minimum(ceiling, np.maximum(capacity_wh, float(METER_NOISE_WH)))

    (mean_ratio, sigma_ratio), (climate_ratio, climate_sigma) = _expected_ratio(
        devices,
        [histories.get(d, DeviceHistory()) for d in device_ids],
        device_of,
        start_s,
        end_s,
        daylight,
    )
    expected = mean_ratio * clear
    sigma = sigma_ratio * clear
    judged = clear > METER_NOISE_WH
    diffuse_clear = np.zeros(len(readings))
    if len(rows) and sky.diffuse_wh is not None:
        diffuse_clear[rows] = sky.diffuse_wh
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(judged, energy / np.where(judged, clear, 1.0), 0.0)
        has_diffuse = diffuse_clear > METER_NOISE_WH
        diffuse_ratio = np.where(has_diffuse, energy / np.where(has_diffuse, diffuse_clear, 1.0), 0.0)

    references, overcast = _peer_references(readings, peers or {}, set(counted), ratio, diffuse_ratio, judged,
                                            arrays.orientation_known, peer_min)
    peer_count = references[:, 0]
    peer_median, peer_spread, peer_highest = references[:, 1], references[:, 2], references[:, 3]
    compared = np.where(overcast, diffuse_ratio, ratio)
    basis = np.where(overcast, diffuse_clear, clear)
    with_peers = judged & (peer_count >= peer_min)
    # The spread honest neighbours always show: a share of their median, and the meter's resolution.
    with np.errstate(divide="ignore", invalid="ignore"):
        noise_ratio = np.where(basis > 0, METER_NOISE_WH / np.where(basis > 0, basis, 1.0), 0.0)
    spread = np.maximum.reduce([peer_spread, PEER_RELATIVE_FLOOR * peer_median, noise_ratio])
    # Refused only over a day or more, and only for a device whose plane is declared: within an hour a gap in
    # the clouds over one roof is plausible, and an assumed plane facing the wrong way can make an honest
    # morning hour look several times its neighbours' (held-out run: 0.08 % of honest hours refused).
    far_above_peers = (with_peers & arrays.orientation_known & (duration_h >= 20.0)
                       & (compared > peer_median + PEER_REJECT_SPREADS * spread)
                       & (compared > PEER_REJECT_OVER_HIGHEST * peer_highest))
    above_peers = with_peers & (compared > peer_median + PEER_FLAG_SPREADS * spread) & (
        compared > (1.0 + PEER_FLAG_MIN_EXCESS) * peer_median
    )
    below_peers = with_peers & (compared < peer_median - LOW_SPREADS * spread)
    wait = np.array([r.reading_id in may_wait for r in readings], dtype=bool)
    awaiting = judged & ~with_peers & wait
    on_climate = judged & ~with_peers & ~wait
    flag_sigmas = np.where(duration_h >= 20.0, FLAG_SIGMAS_DAYS, FLAG_SIGMAS)
    high = on_climate & (energy > expected + flag_sigmas * sigma)
    low = on_climate & (energy < expected - flag_sigmas * sigma)

    conditions = [
        bad_period,
        too_long,
        in_future,
        early,
        negative,
        night & (energy > METER_NOISE_WH),
        energy > np.maximum(capacity_wh, METER_NOISE_WH),
        energy > ceiling,
        far_above_peers,
        above_peers,
        awaiting,
        high,
        below_peers,
        low,
    ]
    names = RULES
    decided = np.select(conditions, list(range(len(names))), default=-1)
    physical = decided.copy()
    physical[decided >= names.index("far_above_peers")] = -1

    margins = ceiling_margin(hours)
    columns = zip(
        decided.tolist(),
        energy.tolist(),
        duration_h.tolist(),
        expected.tolist(),
        sigma.tolist(),
        ceiling.tolist(),
        clear.tolist(),
        capacity_wh.tolist(),
        margins.tolist(),
        compared.tolist(),
        peer_count.tolist(),
        peer_median.tolist(),
        spread.tolist(),
        peer_highest.tolist(),
        overcast.tolist(),
        strict=True,
    )
    extra = zip(
        physical.tolist(), with_peers.tolist(), climate_ratio.tolist(), climate_sigma.tolist(),
        (np.maximum(duration_h, 0.0) * daylight).tolist(), ratio.tolist(), diffuse_ratio.tolist(),
        diffuse_clear.tolist(), overcast.tolist(), strict=True,
    )
    judgements = []
    for reading, (rule_index, *values), (physical_index, uses_peers, c_ratio, c_sigma, daylight_h, plane_ratio,
                                         d_ratio, d_wh, cloudy) in zip(readings, columns, extra, strict=True):
        rule = names[rule_index] if rule_index >= 0 else "ok"
        numbers = _Numbers(int(values[0]), *values[1:])
        reference = "none" if physical_index >= 0 else ("peers" if uses_peers else "climatology")
        judgements.append(
            Judgement(
                reading_id=reading.reading_id,
                status=_STATUS_OF_RULE[rule],
                rule=rule,
                reason=_reason(rule, reading, twins[reading.device_id], numbers, now),
                expected_wh=round(numbers.expected_wh, 1),
                sigma_wh=round(numbers.sigma_wh, 1),
                ceiling_wh=round(numbers.ceiling_wh, 1),
                clear_sky_wh=round(numbers.clear_sky_wh, 1),
                ratio=round(float(plane_ratio), 4),
                reference=reference,
                peer_count=int(numbers.peer_count),
                peer_median=round(numbers.peer_median, 4),
                peer_spread=round(numbers.peer_spread, 4),
                climate_ratio=round(float(c_ratio), 4),
                climate_spread=round(float(c_sigma), 4),
                daylight_h=round(float(daylight_h), 3),
                period_start=reading.period_start,
                diffuse_ratio=round(float(d_ratio), 4),
                diffuse_wh=round(float(d_wh), 1),
                regime="overcast" if cloudy and uses_peers else "clear",
            )
        )
    return judgements


def _peer_references(
    readings: Sequence[ReadingToJudge],
    peers: Mapping[str, PeerHistogram],
    counted: set[str],
    ratio: np.ndarray,
    diffuse_ratio: np.ndarray,
    judged: np.ndarray,
    known: np.ndarray,
    peer_min: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Per reading: (count, median, spread, highest) of its neighbours' ratios, zeros without neighbours; and
    whether they were taken on the all-diffuse ratio (a mostly cloudy sky) rather than the plane's.

    In sun, neighbours that declared their plane are the reference when there are enough of them: the twin
    assumes an equator-facing plane for the others, which most real planes fall short of, so their ratios
    run low and would make every declared device look high."""
    out = np.zeros((len(readings), 4))
    overcast = np.zeros(len(readings), dtype=bool)
    cache: dict[int, tuple[tuple[float, float, float, float], bool]] = {}
    for i, reading in enumerate(readings):
        histogram = peers.get(reading.reading_id)
        if histogram is None or not judged[i]:
            continue
        # Keyed by the caller's histogram (alive while we run: ids are stable); a reading taken out of its
        # own histogram has one of its own.
        key: int | None = id(histogram)
        if reading.reading_id in counted:
            histogram, key = histogram.without(float(ratio[i]), float(diffuse_ratio[i]), bool(known[i])), None
        if key is None or key not in cache:
            plane = histogram.reference()
            cloudy = plane.median < CLEAR_REGIME_RATIO and sum(histogram.diffuse.values()) >= plane.count
            if cloudy:
                found = histogram.reference(diffuse=True)
            elif histogram.declared >= peer_min:
                found = histogram.reference(declared_only=True)
            else:
                found = plane
            computed = ((found.count, found.median, found.spread, found.highest), cloudy)
            if key is None:
                out[i], overcast[i] = computed
                continue
            cache[key] = computed
        out[i], overcast[i] = cache[key]
    return out, overcast


def _expected_ratio(
    devices: TwinArrays,
    history: Sequence[DeviceHistory],
    device_of: np.ndarray,
    start_s: np.ndarray,
    end_s: np.ndarray,
    daylight: np.ndarray,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Mean and σ of energy / clear-sky energy per reading: climatology blended with the device's history,
    and climatology alone."""
    kc_mean, kc_sigma = clear_sky_index_table(devices.latitude, devices.longitude)
    month = month_index((start_s + end_s) / 2.0)
    hours = np.maximum(end_s - start_s, 0.0) / 3600.0
    climate_mean = kc_mean[device_of, month]
    climate_sigma = period_sigma(kc_sigma[device_of, month], hours, daylight)

    count = np.array([h.accepted_count for h in history], dtype=float)[device_of]
    history_mean = np.array([h.mean_ratio for h in history], dtype=float)[device_of]
    history_sigma = np.array([h.sigma_ratio for h in history], dtype=float)[device_of]
    weight = HISTORY_PRIOR_WEIGHT + count
    mean = (HISTORY_PRIOR_WEIGHT * climate_mean + count * history_mean) / weight
    variance = (
        HISTORY_PRIOR_WEIGHT * climate_sigma**2 + count * history_sigma**2
    ) / weight
    return (mean, np.maximum(np.sqrt(variance), MIN_SIGMA_RATIO)), (climate_mean, climate_sigma)


@dataclass(frozen=True)
class _Numbers:
    energy_wh: int
    hours: float
    expected_wh: float
    sigma_wh: float
    ceiling_wh: float
    clear_sky_wh: float
    capacity_wh: float
    margin: float
    ratio: float = 0.0
    peer_count: float = 0.0
    peer_median: float = 0.0
    peer_spread: float = 0.0
    peer_highest: float = 0.0
    overcast: bool = False


def _iso(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return iso(value.replace(microsecond=0))


def _reason(
    rule: str, reading: ReadingToJudge, twin: DeviceTwin, n: _Numbers, now: dt.datetime
) -> str:
    """One sentence a developer can act on, with the numbers that decided."""
    start, end = _iso(reading.period_start), _iso(reading.period_end)
    band = f"{n.expected_wh:.0f} ± {n.sigma_wh:.0f} Wh"
    if rule == "bad_period":
        return f"period_end {end} is not after period_start {start}: send periods whose end is later than their start."
    if rule == "period_too_long":
        return (
            f"the period lasts {n.hours / 24:.1f} days, more than the {MAX_PERIOD.days}-day maximum: "
            "split it into periods of at most 31 days."
        )
    if rule == "in_future":
        return (
            f"the period ends at {end}, after the validation time {_iso(now)}: send readings only for periods "
            "that have ended, and check the device clock and that times are UTC."
        )
    if rule == "before_commissioning":
        return (
            f"the period starts at {start}, before the device's commissioning date {twin.commissioning_date}: "
            "correct the reading's timestamps or the device's commissioning_date."
        )
    if rule == "negative_energy":
        return f"energy_wh {n.energy_wh} is negative: send the energy generated in the period, in Wh."
    if rule == "night":
        return (
            f"the sun is below the horizon for the whole period {start} to {end} at "
            f"({twin.latitude:.2f}, {twin.longitude:.2f}), yet {n.energy_wh} Wh were reported, above the "
            f"{METER_NOISE_WH} Wh meter noise: check that timestamps are UTC rather than local time."
        )
    if rule == "above_capacity":
        ratio = n.energy_wh / n.capacity_wh if n.capacity_wh > 0 else math.inf
        slip = (
            " — this looks like a unit slip: energy must be in Wh (not mWh) and capacity_w in W (not kW)"
            if ratio >= UNIT_SLIP_RATIO
            else ""
        )
        return (
            f"{n.energy_wh} Wh in {n.hours:.2f} h is {ratio:.1f}× the nameplate {twin.capacity_w:g} W × hours "
            f"= {n.capacity_wh:.0f} Wh, which no panel can exceed{slip}: check energy_wh and the device's capacity_w."
        )
    if rule == "above_ceiling":
        return (
            f"{n.energy_wh} Wh exceeds the physical ceiling of {n.ceiling_wh:.0f} Wh for {n.hours:.2f} h "
            f"(clean-air clear sky, cold module, margin ×{n.margin:.2f}; typical clear-sky output "
            f"{n.clear_sky_wh:.0f} Wh): check the meter, the energy units, and the device's capacity_w, "
            "location and orientation."
        )
    basis = "all-diffuse-sky energy (a cloudy sky)" if n.overcast else "clear-sky energy"
    peers = (f"{n.peer_count:.0f} neighbours reporting the same period had a median of {n.peer_median:.2f}× "
             f"their {basis} (spread {n.peer_spread:.2f}, brightest {n.peer_highest:.2f}×)")
    if rule == "far_above_peers":
        return (
            f"{n.energy_wh} Wh is {n.ratio:.2f}× this device's {basis.split(' (')[0]}, while "
            f"{peers}: no hole in the clouds over one device explains {n.ratio / max(n.peer_highest, 1e-9):.1f}× "
            "the brightest neighbour. Check the meter and the device's capacity_w and location."
        )
    if rule == "above_peers":
        return (
            f"{n.energy_wh} Wh is {n.ratio:.2f}× this device's {basis.split(' (')[0]}, while "
            f"{peers}: {(n.ratio - n.peer_median) / max(n.peer_spread, 1e-9):.1f} spreads above them. Flagged for "
            "review; if it repeats, check the meter."
        )
    if rule == "awaiting_peers":
        return (
            f"{n.peer_count:.0f} neighbours have reported this period so far; the reading waits for more "
            "(at most the configured wait) and is then judged with whoever reported, or on climatology."
        )
    if rule == "below_peers":
        return (
            f"accepted: {n.energy_wh} Wh is {n.ratio:.2f}× this device's {basis.split(' (')[0]}, below its neighbours "
            f"({peers}). Producing less claims less; if it persists, check for shading, soiling or a fault."
        )
    if rule == "below_expected":
        slip = (
            " — about 1000× low, as if sent in kWh instead of Wh"
            if n.energy_wh > 0 and n.expected_wh / n.energy_wh >= UNIT_SLIP_RATIO
            else ""
        )
        return (
            f"accepted: {n.energy_wh} Wh is below the expected {band} (climatology and the device's history){slip}. "
            "Producing less claims less; if it persists, check for outages, shading, soiling or a meter fault."
        )
    if rule == "beyond_2_sigma_high":
        sigmas = (n.energy_wh - n.expected_wh) / n.sigma_wh
        return (
            f"{n.energy_wh} Wh is {sigmas:.1f}σ above the expected {band} (climatology and the device's history) "
            f"though below the ceiling of {n.ceiling_wh:.0f} Wh: flagged for review; check the meter if it repeats."
        )
    if n.peer_count and n.ratio > 0:
        return (f"{n.energy_wh} Wh is {n.ratio:.2f}× this device's {basis.split(' (')[0]}, in line with its "
                f"neighbours ({peers}).")
    return f"{n.energy_wh} Wh is within the expected {band} and below the ceiling of {n.ceiling_wh:.0f} Wh."
