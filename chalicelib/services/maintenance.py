"""Scheduled upkeep: nothing waits for ever between stages of the pipeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..domain.readings import id_messages
from ..domain.time import iso, now_utc

# A reading still waiting this long after it was received, while its queue is empty, lost
# its message (a crash between storing and sending, a stop of the local stack): it is sent
# again. A queue with a backlog is left alone: its readings are on their way, and sending
# them twice would only grow the backlog (the handlers are idempotent either way).
STALE_AFTER = timedelta(minutes=2)


def finish_stale_moves(container: Any) -> dict[str, int]:
    """Transfers and redemptions whose request died part-way are completed or undone."""
    from ..adapters.trade_store import DynamoTrades
    from . import redemption, trading

    store = DynamoTrades(container.client("dynamodb"), container.settings.name)
    done = trading.resume_stale(store, trading.transfer_run(store))
    redeemed = trading.resume_stale(store, redemption.redemption_run(store))
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
            container.queue(queue).send_json(id_messages(ids))
        counts[stage] = len(ids)
    return counts
