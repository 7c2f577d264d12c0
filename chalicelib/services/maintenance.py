"""Scheduled upkeep: nothing waits for ever between stages of the pipeline."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from ..domain.time import iso, now_utc
from .moves import resume_stale
from .ports.certificates import Drecs
from .ports.trading import Trades
from .redemptions import redemption_run
from .transfers import transfer_run

# A reading still waiting this long after it was received (default; DREC_STALE_AFTER_S),
# while its queue is empty, lost its message (a crash between storing and sending, an
# emulator killed with messages in its queues): it is sent again. A queue with a backlog is
# left alone: its readings are on their way, and sending them twice would only grow the
# backlog (the handlers are idempotent either way).
STALE_AFTER = timedelta(minutes=2)


def finish_stale_moves(trades: Trades) -> dict[str, int]:
    """Transfers and redemptions whose request died part-way are completed or undone."""
    done = resume_stale(trades, transfer_run(trades))
    redeemed = resume_stale(trades, redemption_run(trades))
    return {f"transfers_{k}": v for k, v in done.items()} | {f"redemptions_{k}": v for k, v in redeemed.items()}


def finish_links(drecs: Drecs) -> int:
    """D-RECs whose device and reading links were not written (a crash right after issuing)."""
    pending = drecs.pending_links()
    if pending:
        drecs.link_drecs(pending)
    return len(pending)


def requeue_waiting(readings: Any, queue: Callable[[str], Any],
                    stale_after: timedelta | None = None) -> dict[str, int]:
    """Readings waiting for a stage whose message was lost are sent again; `queue(name)` gives a queue."""
    before = iso(now_utc() - (STALE_AFTER if stale_after is None else stale_after))
    counts = {}
    for stage, name in (("queued", "readings"), ("peers", "readings"), ("pooling", "accepted")):
        if queue(name).in_queue():
            counts[stage] = 0
            continue
        ids = [r["id"] for r in readings.waiting(stage, before)]
        if ids:
            queue(name).send_json([{"reading_ids": ids[i:i + 100]} for i in range(0, len(ids), 100)])
        counts[stage] = len(ids)
    return counts
