"""The real stack in process for property tests: moto (DynamoDB, SQS, S3) provisioned from
`infra.resources`, the container's real adapters, the app's real SQS handler entry points, and
a scan of every table the exactly-once invariants read.

Messages are taken off the queues as soon as a step sent them and kept in flight by the test,
which delivers them when it likes: late, out of order, twice in one batch, again after a crash.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Collection, Sequence
from typing import Any
from unittest import mock

from chalicelib.adapters.dynamo import from_item

PREFIX = "drec-once"
ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_DEFAULT_REGION": "us-east-1", "DREC_PREFIX": PREFIX, "DREC_OPERATOR_KEY": "drec_once_operator"}
HANDLERS = {"readings": "validate_readings", "accepted": "issue_drecs"}


class Rig:
    """One fresh emulated account per example; `stop()` forgets it."""

    def __init__(self) -> None:
        from moto import mock_aws

        from chalicelib import bootstrap
        from infra.moto_transactions import install
        from infra.provision import provision

        install()
        self._env = mock.patch.dict(os.environ, ENVIRONMENT)
        self._env.start()
        for name in ("AWS_ENDPOINT_URL", "DREC_CHAIN_RPC", "DREC_LEDGER_ADDRESS"):
            os.environ.pop(name, None)
        self._aws = mock_aws()
        self._aws.start()
        provision(PREFIX)
        bootstrap.reset()
        self.c = bootstrap.container()
        self.dynamodb = self.c.client("dynamodb")
        self.sqs = self.c.client("sqs")
        self._urls = {q: self.sqs.get_queue_url(QueueName=f"{PREFIX}-{q}")["QueueUrl"] for q in HANDLERS}

    def stop(self) -> None:
        from chalicelib import bootstrap

        bootstrap.reset()
        self._aws.stop()
        self._env.stop()

    # -- queues ----------------------------------------------------------------------------------
    def drain(self, queue: str) -> list[str]:
        """Every message the services sent to `queue`, taken off it (bodies, in the order received)."""
        bodies: list[str] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self._urls[queue], MaxNumberOfMessages=10).get("Messages", [])
            if not got:
                return bodies
            bodies += [m["Body"] for m in got]
            self.sqs.delete_message_batch(QueueUrl=self._urls[queue], Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)])

    def deliver(self, queue: str, bodies: Sequence[str]) -> None:
        """Invoke the app's handler of `queue` with one Lambda-shaped SQS batch of `bodies` (as the
        event source mapping does); a raise means the batch is delivered again later."""
        from chalicelib.api import handlers
        from infra.dispatcher import LambdaContext

        records = [{"body": body, "messageId": f"m{i}", "receiptHandle": f"r{i}", "attributes": {},
                    "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:us-east-1:123456789012:{PREFIX}-{queue}",
                    "awsRegion": "us-east-1"} for i, body in enumerate(bodies)]
        getattr(handlers, HANDLERS[queue])({"Records": records}, LambdaContext(HANDLERS[queue]))

    # -- state -----------------------------------------------------------------------------------
    def scan(self, logical: str, only: Collection[str] | None = None,
             full: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        """Every item of a table, read from the emulator's memory (the services' own reads go through
        boto3; the invariants read everything after every step, and moto's response serialiser would
        cost more than the whole pipeline): only the attributes `only` names, and whole the items
        `full` picks by those."""
        from moto.core import DEFAULT_ACCOUNT_ID
        from moto.dynamodb.models import dynamodb_backends

        table = dynamodb_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].get_table(f"{PREFIX}-{logical}".replace("_", "-"))
        out = []
        for item in table.all_items():
            picked = {k: v for k, v in item.attrs.items() if only is None or k in only}
            record = from_item({k: v.to_regular_json() for k, v in picked.items()})
            if full is not None and only is not None and full(record):
                record = from_item({k: v.to_regular_json() for k, v in item.attrs.items()})
            out.append(record)
        return out


def reading_ids(body: str) -> list[str]:
    return list(json.loads(body)["reading_ids"])
