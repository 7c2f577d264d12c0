"""Spreading a reading's Wh over the UTC hours it overlaps, exactly, in integer Wh."""

from __future__ import annotations

from datetime import datetime, timedelta

_HOUR = timedelta(hours=1)


def split_by_hour(
    energy_wh: int, period_start: datetime, period_end: datetime
) -> dict[datetime, int]:
    """Spread `energy_wh` [Wh] over the UTC hours the period overlaps, by overlap.

    Integer Wh by largest remainder (ties to the earlier hour), so the parts
    sum exactly to `energy_wh`. Uniform in time is good enough because
    readings are usually hourly or shorter; hours given 0 Wh are left out.
    """
    total = _microseconds(period_end - period_start)
    hour = period_start.replace(minute=0, second=0, microsecond=0)
    hours: list[datetime] = []
    floors: list[int] = []
    remainders: list[int] = []
    while hour < period_end:
        overlap = _microseconds(min(period_end, hour + _HOUR) - max(period_start, hour))
        share, rest = divmod(energy_wh * overlap, total)
        hours.append(hour)
        floors.append(share)
        remainders.append(rest)
        hour += _HOUR
    leftover = energy_wh - sum(floors)
    for index in sorted(range(len(hours)), key=lambda i: (-remainders[i], i))[
        :leftover
    ]:
        floors[index] += 1
    return {moment: wh for moment, wh in zip(hours, floors, strict=True) if wh}


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
