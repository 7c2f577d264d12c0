"""Scheduled upkeep: nothing waits for ever between stages of the pipeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain.model import iso, now_utc
from .moves import resume_stale
from .ports.trading import Trades
from .redemptions import redemption_run
from .transfers import transfer_run

# A reading still waiting this long after it was received, while its queue is empty, lost
# its message (a crash between storing and sending, a stop of the local stack): it is sent
# again. A queue with a backlog is left alone: its readings are on their way, and sending
# them twice would only grow the backlog (the handlers are idempotent either way).
STALE_AFTER = timedelta(minutes=2)


def finish_stale_moves(trades: Trades) -> dict[str, int]:
    """Transfers and redemptions whose request died part-way are completed or undone."""
    done = resume_stale(trades, transfer_run(trades))
    redeemed = resume_stale(trades, redemption_run(trades))
    return {f"transfers_{k}": v for k, v in done.items()} | {f"redemptions_{k}": v for k, v in redeemed.items()}


def finish_links(container: Any) -> int:
    """D-RECs whose device and reading links were not written (a crash right after issuing)."""
    pending = container.drecs.pending_links()
    if pending:
        container.drecs.link_drecs(pending)
    return len(pending)


def requeue_waiting(container: Any) -> dict[str, int]:
    before = iso(now_utc() - STALE_AFTER)
    counts = {}
    for stage, queue in (("queued", "readings"), ("pooling", "accepted")):
        if container.queue(queue).in_queue():
            counts[stage] = 0
            continue
        ids = [r["id"] for r in container.readings.waiting(stage, before)]
        if ids:
            container.queue(queue).send_json([{"reading_ids": ids[i:i + 100]} for i in range(0, len(ids), 100)])
        counts[stage] = len(ids)
    return counts
