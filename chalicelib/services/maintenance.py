"""Scheduled upkeep: nothing waits for ever between stages of the pipeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain.model import iso, now_utc

# A reading still waiting this long after it was received is sent along again; the
# handlers are idempotent, so a message that was only slow changes nothing.
STALE_AFTER = timedelta(minutes=2)


def requeue_waiting(container: Any) -> dict[str, int]:
    before = iso(now_utc() - STALE_AFTER)
    counts = {}
    for stage, queue in (("queued", "readings"), ("pooling", "accepted")):
        ids = [r["id"] for r in container.readings.waiting(stage, before)]
        if ids:
            container.queue(queue).send_json([{"reading_ids": ids[i:i + 100]} for i in range(0, len(ids), 100)])
        counts[stage] = len(ids)
    return counts
