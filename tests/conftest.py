"""Fixtures shared by every layer: an in-memory AWS (moto) with the platform's resources."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

OPERATOR_KEY = "drec_test_operator_key"
PREFIX = "drec-test"


_DYNAMODB_LOCK = threading.RLock()


def _serialise_dynamodb() -> None:
    """One DynamoDB call at a time in process, as the emulator serves them (infra.emulator): moto's
    backend is not thread-safe (an ADD read and written back by two threads loses one), while the real
    service applies each call atomically. Tests with concurrent writers need the service's behaviour."""
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item", "get_item", "query", "scan", "batch_write_item",
                 "batch_get_item", "transact_write_items", "transact_get_items"):
        original = getattr(DynamoDBBackend, name)
        if getattr(original, "serialised", False):
            continue

        def serialised(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _DYNAMODB_LOCK:
                return _original(self, *args, **kwargs)

        serialised.serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, serialised)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto in process (no network): every table, queue and bucket of infra.resources."""
    from moto import mock_aws

    from chalicelib import bootstrap
    from infra.moto_transactions import install
    from infra.provision import provision

    install()  # the stack's emulator runs with it (infra.emulator); so do the tests
    _serialise_dynamodb()

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "DREC_PREFIX": PREFIX,
                        "DREC_OPERATOR_KEY": OPERATOR_KEY}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "DREC_CHAIN_RPC", "DREC_LEDGER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        provision(PREFIX)
        bootstrap.reset()
        yield bootstrap.container()
    bootstrap.reset()


class Api:
    """The Chalice app through its test client, with JSON in and out."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def call(self, method: str, path: str, body: Any = None, key: str | None = OPERATOR_KEY,
             raw: str | None = None) -> tuple[int, Any]:
        headers = {"Content-Type": "application/json" if raw is None or raw.startswith("{") else "text/csv"}
        if key:
            headers["X-Api-Key"] = key
        payload = raw if raw is not None else (json.dumps(body) if body is not None else None)
        response = getattr(self.client.http, method)(path, headers=headers, body=payload)
        text = response.body.decode() if isinstance(response.body, bytes) else response.body
        return response.status_code, json.loads(text) if text else None

    def post(self, path: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
        return self.call("post", path, body, **kw)

    def get(self, path: str, key: str | None = None, **kw: Any) -> tuple[int, Any]:
        """Reads are public by default; a key shows what that principal may see."""
        return self.call("get", path, key=key, **kw)

    def every_event(self) -> dict[str, Any]:
        """Every event of every shard (`GET /events?shard=`, all pages), as one listing's body."""
        items: list[Any] = []
        for shard in range(self.get("/ledger")[1]["event_shards"]):
            cursor = ""
            while True:
                status, page = self.get(f"/events?limit=1000&shard={shard}" + (f"&cursor={cursor}" if cursor else ""))
                assert status == 200, page
                items += page["items"]
                cursor = page.get("next_cursor") or ""
                if not cursor:
                    break
        return {"items": items}


@pytest.fixture
def api(aws: Any) -> Iterator[Api]:
    from chalice.test import Client

    import app

    with Client(app.app) as client:
        yield Api(client)


def device_body(owner: str, **overrides: Any) -> dict[str, Any]:
    body = {"owner_account_id": owner, "device_type": "solar_home_system", "capacity_w": 100,
            "latitude": -1.29, "longitude": 36.82, "country": "KE", "commissioning_date": "2025-01-15",
            "offtaker_type": "household"}
    body.update(overrides)
    return body


def pump(aws: Any, rounds: int = 20) -> int:
    """Deliver every queued message to its handler, as Lambda would, until the queues are quiet."""
    from chalice.app import SQSEventConfig

    import app
    from infra.dispatcher import LambdaContext, sqs_event

    sqs = aws.client("sqs")
    delivered = 0
    for _ in range(rounds):
        moved = 0
        for source in app.app.event_sources:
            if not isinstance(source, SQSEventConfig):
                continue
            url = sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                continue
            app.app.handler_map[source.name](sqs_event(messages, f"arn:aws:sqs:us-east-1:123:{source.queue}",
                                                       "us-east-1"), LambdaContext(source.name))
            sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                            for i, m in enumerate(messages)])
            moved += len(messages)
        delivered += moved
        if not moved:
            break
    return delivered


def registered_device(api: Api, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(source, account, device) registered through the API."""
    source, account, (device,) = registered_fleet(api, 1, **overrides)
    return source, account, device


def registered_fleet(api: Api, n: int, **overrides: Any) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """(source, account, its n devices) registered through the API by one source."""
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    _, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=source["api_key"])
    devices = []
    for _ in range(n):
        status, device = api.post("/devices", device_body(account["account_id"], **overrides), key=source["api_key"])
        assert status == 201, device
        devices.append(device)
    return source, account, devices
