"""Local stand-in for Lambda's event source mappings and schedules.

Long-polls every queue the app handles (`chalicelib/api/handlers.py`, `on_sqs_message`), invokes the
handler with a Lambda-shaped SQS event, and deletes the batch only when the handler
returns (a raise leaves it for redelivery and, after `max_receive_count`, the DLQ).
Each queue has `DREC_QUEUE_CONCURRENCY` pollers (4), as Lambda runs several instances of a
queue's function at once, except the issuer's (`DREC_ISSUER_CONCURRENCY`, 1): issuance
serialises on its pool item, and issuers running at once on one owner's pool only lose races
to each other (measured: batches redelivered after the visibility timeout).
Scheduled handlers (`@app.schedule`) run every
`DREC_SCHEDULE_INTERVAL_S` seconds (3), the sweep every `DREC_SWEEP_INTERVAL_S` (60), the
metrics of queues and anchoring lag every
`DREC_MEASURE_INTERVAL_S` (60). The app's lines are JSON (chalicelib/telemetry.py), the
dispatcher's own go through the same logger.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import boto3

from .usage import Invocations

log = logging.getLogger("drec.dispatcher")
INVOCATIONS = Invocations("lambda")  # calls and durations per handler, for the benchmarks


@dataclass
class LambdaContext:
    function_name: str
    timeout_s: float = 300.0

    def __post_init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + self.timeout_s
        self.memory_limit_in_mb = 1024
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def sqs_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": region,
            }
            for m in messages
        ]
    }


def schedule_event(name: str, region: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [f"arn:aws:events:{region}:000000000000:rule/{name}"],
        "detail": {},
    }


class Dispatcher:
    def __init__(self, app: Any, session: boto3.session.Session | None = None,
                 schedule_interval_s: float = 3.0, wait_s: int = 1,
                 intervals: dict[str, float] | None = None, concurrency: int = 1,
                 concurrency_of: dict[str, int] | None = None) -> None:
        from chalice.app import ScheduledEventConfig, SQSEventConfig

        self.app = app
        self.session = session or boto3.session.Session()
        self.region = self.session.region_name or "us-east-1"
        self.sqs = self.session.client("sqs")
        self.stopping = threading.Event()
        self.wait_s = wait_s
        # Lambda runs several instances of a queue's function at once; so do `concurrency` pollers.
        self.concurrency = max(1, concurrency)
        self.concurrency_of = concurrency_of or {}
        # Schedules run every `schedule_interval_s` locally (on AWS: their Rate), except those
        # given their own interval (the sweep scans indexes; it need not run every few seconds).
        self.schedule_interval_s = schedule_interval_s
        self.intervals = intervals or {}
        self.queues = [(s.queue, s.batch_size, app.handler_map[s.name]) for s in app.event_sources
                       if isinstance(s, SQSEventConfig)]
        self.schedules = [(s.name, app.handler_map[s.name]) for s in app.event_sources
                          if isinstance(s, ScheduledEventConfig)]
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for queue, batch_size, handler in self.queues:
            workers = self.concurrency_of.get(str(queue).rsplit("-", 1)[-1], self.concurrency)
            for worker in range(max(1, workers)):
                self._spawn(f"sqs:{queue}:{worker}", self._poll, queue, batch_size, handler)
        for name, handler in self.schedules:
            self._spawn(f"schedule:{name}", self._tick, name, handler)

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def stop(self, timeout_s: float = 30.0) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(timeout_s)

    def _poll(self, queue: str, batch_size: int, handler: Callable[..., Any]) -> None:
        url = self.sqs.get_queue_url(QueueName=queue)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        while not self.stopping.is_set():
            try:
                received = self.sqs.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=min(batch_size, 10), WaitTimeSeconds=self.wait_s,
                    AttributeNames=["All"], MessageAttributeNames=["All"])
            except Exception:  # the emulator restarting: try again shortly
                log.exception("receive from %s failed", queue)
                self.stopping.wait(1.0)
                continue
            messages = received.get("Messages", [])
            if not messages:
                continue
            started = time.monotonic()
            try:
                handler(sqs_event(messages, arn, self.region), LambdaContext(queue))
                INVOCATIONS.record(queue, time.monotonic() - started, len(messages))
                log.info("%s: %d messages handled in %.2f s", queue, len(messages), time.monotonic() - started)
            except Exception:
                log.exception("handler for %s raised; %d messages will be redelivered", queue, len(messages))
                continue
            self.sqs.delete_message_batch(QueueUrl=url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])

    def _tick(self, name: str, handler: Callable[..., Any]) -> None:
        while not self.stopping.wait(self.intervals.get(name, self.schedule_interval_s)):
            started = time.monotonic()
            try:
                handler(schedule_event(name, self.region), LambdaContext(name))
                INVOCATIONS.record(name, time.monotonic() - started)
                if time.monotonic() - started > 1:
                    log.info("%s ran for %.2f s", name, time.monotonic() - started)
            except Exception:
                log.exception("scheduled handler %s raised", name)


def main() -> None:
    logging.basicConfig(level=os.environ.get("DREC_LOG_LEVEL", "INFO"),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    import app as chalice_app

    dispatcher = Dispatcher(chalice_app.app,
                            schedule_interval_s=float(os.environ.get("DREC_SCHEDULE_INTERVAL_S", "3")),
                            intervals={"sweep": float(os.environ.get("DREC_SWEEP_INTERVAL_S", "60")),
                                       "measure_operations": float(os.environ.get("DREC_MEASURE_INTERVAL_S", "60"))},
                            concurrency=int(os.environ.get("DREC_QUEUE_CONCURRENCY", "4")),
                            concurrency_of={"accepted": int(os.environ.get("DREC_ISSUER_CONCURRENCY", "1"))})
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    dispatcher.start()
    log.info("dispatching %d queues and %d schedules", len(dispatcher.queues), len(dispatcher.schedules))
    done.wait()
    dispatcher.stop()


if __name__ == "__main__":
    main()
