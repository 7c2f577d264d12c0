"""Sending message batches to an SQS queue, by name (the URL is looked up once)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import cached_property
from typing import Any


class SqsQueue:
    def __init__(self, client: Any, queue_name: str) -> None:
        self.client = client
        self.queue_name = queue_name

    @cached_property
    def url(self) -> str:
        return str(self.client.get_queue_url(QueueName=self.queue_name)["QueueUrl"])

    def in_queue(self) -> int:
        """Messages waiting or being handled (approximate, as SQS counts them)."""
        attributes = self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def send_json(self, bodies: Sequence[Any]) -> None:
        """Send each body as one message, ten to a call; failed entries are sent again."""
        for start in range(0, len(bodies), 10):
            entries = [_entry(i, body) for i, body in enumerate(bodies[start:start + 10])]
            for _ in range(5):
                failed = self.client.send_message_batch(QueueUrl=self.url, Entries=entries).get("Failed", [])
                if not failed:
                    break
                retry = {f["Id"] for f in failed}
                entries = [e for e in entries if e["Id"] in retry]
            else:
                raise RuntimeError(f"could not send {len(entries)} messages to {self.queue_name}")


def _entry(index: int, body: Any) -> dict[str, Any]:
    """One message; a body's correlation id is also a message attribute (seen in the console, on the DLQ)."""
    entry: dict[str, Any] = {"Id": str(index), "MessageBody": json.dumps(body, separators=(",", ":"))}
    correlation_id = body.get("correlation_id") if isinstance(body, dict) else None
    if correlation_id:
        entry["MessageAttributes"] = {"correlation_id": {"DataType": "String", "StringValue": str(correlation_id)}}
    return entry


def record_bodies(event_records: Any) -> list[Any]:
    """The JSON bodies of a Chalice SQS event."""
    return [json.loads(record.body) for record in event_records]
