"""Event handlers: the queues of readings, uploads and accepted readings, and the schedules (pulls included).

Their names are the Lambda functions' names under `chalice package`; `infra.dispatcher` finds
them through the app's `event_sources` and `handler_map`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from chalice import Blueprint, Rate

from .. import bootstrap, telemetry
from ..adapters.sqs import record_bodies
from ..config import queue_name
from ..services import anchoring, maintenance, operations, uploads
from ..telemetry import logger, publish
from .reading_input import parse_reading

handlers = Blueprint(__name__)


def _reading_ids(bodies: list[Any]) -> list[str]:
    return [i for body in bodies for i in body.get("reading_ids", [])]


def _correlation_ids(bodies: list[Any]) -> list[str]:
    return sorted({str(body["correlation_id"]) for body in bodies if body.get("correlation_id")})


@handlers.on_sqs_message(queue=queue_name("readings"), batch_size=10)
def validate_readings(event: Any) -> None:
    bodies = record_bodies(event)
    logger.info("judging readings", extra={"messages": len(bodies), "correlation_ids": _correlation_ids(bodies)})
    counts = bootstrap.container().validator.validate(_reading_ids(bodies))
    publish(judged_metrics(counts))


def judged_metrics(counts: Mapping[str, int]) -> dict[str, int]:
    """The validator's counts by verdict as metrics; held = flagged (incl. held by a review) or awaiting peers."""
    decided = {s: counts.get(s, 0) for s in ("accepted", "rejected", "flagged", "awaiting_peers")}
    return {"ReadingsJudged": sum(decided.values()), "ReadingsAccepted": decided["accepted"],
            "ReadingsRejected": decided["rejected"], "ReadingsHeld": decided["flagged"] + decided["awaiting_peers"]}


@handlers.on_sqs_message(queue=queue_name("uploads"), batch_size=1)
def ingest_upload(event: Any) -> None:
    c = bootstrap.container()
    for body in record_bodies(event):
        for notified in uploads.s3_records(body):
            # One correlation id per uploaded file: its readings, their messages and events carry it.
            with telemetry.correlated(telemetry.new_correlation_id()):
                logger.info("upload notified", extra={"bucket": notified.bucket, "key": notified.key})
                uploads.ingest_object(c.intake(parse_reading), c.registry, c.upload_announcements,
                                      c.uploads_bucket, notified)


@handlers.on_sqs_message(queue=queue_name("accepted"), batch_size=10)
def issue_drecs(event: Any) -> None:
    bodies = record_bodies(event)
    logger.info("pooling readings", extra={"messages": len(bodies), "correlation_ids": _correlation_ids(bodies)})
    counts = bootstrap.container().issuer.issue(_reading_ids(bodies))
    publish({"DrecsIssued": counts.get("drecs", 0), "ReadingsPooled": counts.get("readings", 0)})


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
        done = anchoring.anchor_pending(c.events, c.batches, c.chain, c.ledger_bucket, c.settings.anchor_batch_size)
        if done["events"]:
            publish({"EventsAnchored": done["events"], "BatchesAnchored": done["batches"]})


@handlers.schedule(Rate(1, unit=Rate.MINUTES))
def pull_sources(event: Any) -> None:
    """Pull the due sources' partners (`services.pulling`); each run is recorded under its source."""
    counts = bootstrap.container().puller().pull_due()
    if counts["runs"]:
        logger.info("pulled sources", extra=counts)


@handlers.schedule(Rate(1, unit=Rate.MINUTES))
def measure_operations(event: Any) -> None:
    """Queue and dead-letter depths and anchoring lag as metrics (the alarms watch them)."""
    c = bootstrap.container()
    figures = operations.publish_operations(c.queue, c.events, c.batches)
    logger.info("operations measured", extra=figures)
