"""The sweep re-sends readings whose message was lost, and leaves a busy queue alone."""

from __future__ import annotations

from typing import Any

from chalicelib.domain.time import now_utc
from chalicelib.services.maintenance import requeue_waiting
from tests.conftest import Api, pump, registered_device


def _drain(aws: Any, logical: str) -> int:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=f"drec-test-{logical}")["QueueUrl"]
    drained = 0
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                        for i, m in enumerate(messages)])
        drained += len(messages)
    return drained


def test_lost_messages_are_sent_again_only_when_the_queue_is_idle(api: Api, aws: Any, monkeypatch: Any) -> None:
    source, _, device = registered_device(api)
    _, body = api.post("/readings", {"readings": [{"device_id": device["device_id"],
                                                   "period_start": "2026-10-14T09:00:00Z",
                                                   "period_end": "2026-10-14T10:00:00Z", "energy_wh": 50}]},
                       key=source["api_key"])
    reading_id = body["accepted"][0]["reading_id"]
    later = now_utc().replace(year=now_utc().year + 1)
    monkeypatch.setattr("chalicelib.services.maintenance.now_utc", lambda: later)
    # GIVEN the message still in the queue: nothing is sent twice
    assert requeue_waiting(aws.readings, aws.queue)["queued"] == 0
    # WHEN the message is lost THEN the sweep sends the reading again, and it is judged
    assert _drain(aws, "readings") == 1
    assert requeue_waiting(aws.readings, aws.queue)["queued"] == 1
    pump(aws)
    assert api.get(f"/readings/{reading_id}")[1]["status"] == "accepted"
