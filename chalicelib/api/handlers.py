"""Event handlers: the queues of readings, uploads and accepted readings, and the schedules.

Their names are the Lambda functions' names under `chalice package`; `infra.dispatcher` finds
them through the app's `event_sources` and `handler_map`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalice import Blueprint, Rate

from .. import bootstrap
from ..adapters.sqs import record_bodies
from ..config import queue_name
from ..services import anchoring, maintenance, uploads
from .reading_input import parse_reading

handlers = Blueprint(__name__)


def _reading_ids(event: Any) -> list[str]:
    return [i for body in record_bodies(event) for i in body.get("reading_ids", [])]


@handlers.on_sqs_message(queue=queue_name("readings"), batch_size=10)
def validate_readings(event: Any) -> None:
    bootstrap.container().validator.validate(_reading_ids(event))


@handlers.on_sqs_message(queue=queue_name("uploads"), batch_size=1)
def ingest_upload(event: Any) -> None:
    c = bootstrap.container()
    for body in record_bodies(event):
        for notified in uploads.s3_records(body):
            uploads.ingest_object(c.intake(parse_reading), c.registry, c.upload_announcements, c.uploads_bucket,
                                  notified)


@handlers.on_sqs_message(queue=queue_name("accepted"), batch_size=10)
def issue_drecs(event: Any) -> None:
    bootstrap.container().issuer.issue(_reading_ids(event))


@handlers.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event: Any) -> None:
    c = bootstrap.container()
    maintenance.requeue_waiting(c.readings, c.queue, timedelta(seconds=c.settings.stale_after_s))
    maintenance.finish_stale_moves(c.trades)
    maintenance.finish_links(c.drecs)


@handlers.schedule(Rate(1, unit=Rate.MINUTES))
def anchor_events(event: Any) -> None:
    c = bootstrap.container()
    if c.chain is not None:
        anchoring.anchor_pending(c.events, c.batches, c.chain, c.ledger_bucket, c.settings.anchor_batch_size)
