"""What an operator watches: queue and dead-letter depths, anchoring lag, readings by status.

Read from queue attributes, two counters and one event: never a scan, so `GET /stats` and the
scheduled metrics cost the same however large the registry grows. The same figures go to
CloudWatch as EMF metrics (`publish_operations`) and to the portal's dashboard (`GET /stats`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from ..domain.counts import readings_in
from ..domain.ledger.events import event_id_for
from ..domain.readings import ReadingStatus
from ..domain.time import now_utc, parse_utc
from ..telemetry import publish
from .ports.ledger import Batches, Events
from .ports.queues import Queue

#: The pipeline's queues (logical names, as in infra.resources); each has `<name>-dlq`.
QUEUES = ("uploads", "readings", "accepted")


def dead_letter(logical: str) -> str:
    return f"{logical}-dlq"


def anchoring_lag(events: Events, batches: Batches, now: datetime | None = None) -> dict[str, Any]:
    """Events appended but not anchored yet, summed over the event shards, and the age of the oldest of
    them in any shard [s] (0 when none waits)."""
    newest = anchored = 0
    seconds = 0.0
    waiting: list[str] = []  # each shard's oldest unanchored event, read in one batch below
    watermarks = batches.anchored_throughs(events.shards)
    for shard, (shard_newest, shard_anchored) in enumerate(zip(events.current_seqs(), watermarks)):
        newest, anchored = newest + shard_newest, anchored + min(shard_anchored, shard_newest)
        if shard_newest > shard_anchored:
            waiting.append(event_id_for(shard, shard_anchored + 1))
    for oldest in events.events_by_id(waiting) if waiting else []:
        seconds = max(seconds, ((now or now_utc()) - parse_utc(oldest.occurred_at)).total_seconds())
    return {"newest_seq": newest, "anchored_seq": anchored, "lag_events": newest - anchored,
            "lag_seconds": round(seconds, 1)}


def queue_depths(queue: Callable[[str], Queue]) -> list[dict[str, Any]]:
    """Per queue: messages waiting or in flight, and messages in its dead-letter queue."""
    return [{"queue": name, "depth": queue(name).in_queue(), "dead_letter_depth": queue(dead_letter(name)).in_queue()}
            for name in QUEUES]


def readings_by_status(totals: Mapping[str, int]) -> dict[str, int]:
    """Readings now in each status, from the registry's counters."""
    return {status.value: int(totals.get(readings_in(status.value), 0)) for status in ReadingStatus}


def operations(queue: Callable[[str], Queue], events: Events, batches: Batches,
               totals: Mapping[str, int]) -> dict[str, Any]:
    return {"queues": queue_depths(queue), "anchoring": anchoring_lag(events, batches),
            "readings_by_status": readings_by_status(totals)}


def publish_operations(queue: Callable[[str], Queue], events: Events, batches: Batches) -> dict[str, Any]:
    """Queue depths (dimension `queue`) and anchoring lag as EMF metrics; returns the figures."""
    depths = queue_depths(queue)
    for row in depths:
        publish({"QueueDepth": row["depth"], "DeadLetterDepth": row["dead_letter_depth"]}, queue=row["queue"])
    lag = anchoring_lag(events, batches)
    publish({"AnchoringLagEvents": lag["lag_events"]})
    publish({"AnchoringLagSeconds": lag["lag_seconds"]}, unit="Seconds")
    return {"queues": depths, "anchoring": lag}
