"""The emulator's query fast path answers every query exactly as moto's own walk of the whole table.

Random writes of every kind the platform sends (PutItem, UpdateItem moving an item between index
partitions or out of a sparse index, DeleteItem, BatchWriteItem, TransactWriteItems) go to a table with
three indexes; after each, the same queries (on the table's key and on each index, both directions,
range conditions, pages of 3) are answered with the fast path and with moto's own, and must agree.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.models.table import Table

from infra import moto_index

INDEXES = [
    ("by_status", [("status", "HASH"), ("received_at", "RANGE")], "KEYS_ONLY"),
    ("by_device", [("device_id", "HASH")], "ALL"),
    ("by_due", [("due", "HASH"), ("next_at", "RANGE")], "KEYS_ONLY"),  # sparse: few items carry `due`
]


@pytest.fixture
def client() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        names = {a for _, schema, _ in INDEXES for a, _ in schema} | {"id", "part"}
        client.create_table(
            TableName="t", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "part", "KeyType": "HASH"}, {"AttributeName": "id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in sorted(names)],
            GlobalSecondaryIndexes=[{"IndexName": name, "KeySchema": [{"AttributeName": a, "KeyType": k}
                                                                       for a, k in schema],
                                     "Projection": {"ProjectionType": projection}}
                                    for name, schema, projection in INDEXES])
        moto_index.MAPS.forget()

        def noted(params: dict[str, Any], model: Any, **_: Any) -> None:
            moto_index.MAPS.written(model.name, json.loads(params["body"] or b"{}"))

        client.meta.events.register("before-call.dynamodb", noted, unique_id="index-maps")
        yield client


def _item(rng: random.Random) -> dict[str, Any]:
    item = {"part": {"S": f"p{rng.randrange(3)}"}, "id": {"S": f"r{rng.randrange(40):02d}"},
            "status": {"S": rng.choice(["queued", "accepted", "rejected"])},
            "received_at": {"S": f"2026-11-0{rng.randrange(1, 9)}T00:00:00Z"},
            "device_id": {"S": f"d{rng.randrange(5)}"}}
    if rng.random() < 0.3:
        item.update(due={"S": "due"}, next_at={"S": f"2026-11-2{rng.randrange(9)}T00:00:00Z"})
    return item


def _key(item: dict[str, Any]) -> dict[str, Any]:
    return {"part": item["part"], "id": item["id"]}


def _write(client: Any, rng: random.Random) -> None:
    kind = rng.randrange(5)
    item = _item(rng)
    if kind == 0:
        client.put_item(TableName="t", Item=item)
    elif kind == 1:  # moves between index partitions, or out of the sparse index
        client.update_item(TableName="t", Key=_key(item), UpdateExpression="SET #s = :s, device_id = :d REMOVE due",
                           ExpressionAttributeNames={"#s": "status"},
                           ExpressionAttributeValues={":s": item["status"], ":d": item["device_id"]})
    elif kind == 2:
        client.delete_item(TableName="t", Key=_key(item))
    elif kind == 3:
        others = {json_key(i): i for i in (_item(rng) for _ in range(4))}
        client.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": i}} for i in others.values()]
                                              + [{"DeleteRequest": {"Key": _key(_item(rng))}}]})
    else:
        first, second = _item(rng), _item(rng)
        if json_key(first) == json_key(second):
            return
        try:
            client.transact_write_items(TransactItems=[
                {"Put": {"TableName": "t", "Item": first}},
                {"Update": {"TableName": "t", "Key": _key(second), "UpdateExpression": "SET due = :d, next_at = :n",
                            "ExpressionAttributeValues": {":d": {"S": "due"}, ":n": second["received_at"]},
                            "ConditionExpression": "attribute_exists(id)"}}])
        except client.exceptions.TransactionCanceledException:
            pass  # refused: nothing written, and the keys it named are merely checked again


def json_key(item: dict[str, Any]) -> tuple[str, str]:
    return item["part"]["S"], item["id"]["S"]


def _queries() -> list[dict[str, Any]]:
    asked: list[dict[str, Any]] = []
    for part in ("p0", "p1", "p2"):
        asked.append({"KeyConditionExpression": "part = :v", "ExpressionAttributeValues": {":v": {"S": part}}})
        asked.append({"KeyConditionExpression": "part = :v AND id < :r", "ScanIndexForward": False,
                      "ExpressionAttributeValues": {":v": {"S": part}, ":r": {"S": "r20"}}})
    for status in ("queued", "accepted", "rejected", "none"):
        asked.append({"IndexName": "by_status", "KeyConditionExpression": "#s = :v AND received_at < :t",
                      "ExpressionAttributeNames": {"#s": "status"},
                      "ExpressionAttributeValues": {":v": {"S": status}, ":t": {"S": "2026-11-05T00:00:00Z"}}})
    for device in ("d0", "d3"):
        asked.append({"IndexName": "by_device", "KeyConditionExpression": "device_id = :v",
                      "ExpressionAttributeValues": {":v": {"S": device}}, "ScanIndexForward": False})
    asked.append({"IndexName": "by_due", "KeyConditionExpression": "due = :v",
                  "ExpressionAttributeValues": {":v": {"S": "due"}}})
    return asked


def _answers(client: Any, fast: bool) -> list[list[Any]]:
    Table.query = moto_index.query if fast else moto_index._ORIGINAL_QUERY  # type: ignore[method-assign]
    Table.all_items = moto_index.all_items if fast else moto_index._ORIGINAL_ALL_ITEMS  # type: ignore[method-assign]
    try:
        pages: list[list[Any]] = []
        for query in _queries():
            start = None
            while True:
                paging = {"ExclusiveStartKey": start} if start else {}
                answer = client.query(TableName="t", Limit=3, **query, **paging)
                pages.append([answer["Items"], answer.get("LastEvaluatedKey")])
                start = answer.get("LastEvaluatedKey")
                if not start:
                    break
        return pages
    finally:
        Table.query = moto_index._ORIGINAL_QUERY  # type: ignore[method-assign]
        Table.all_items = moto_index._ORIGINAL_ALL_ITEMS  # type: ignore[method-assign]


@pytest.mark.parametrize("seed", range(4))
def test_fast_queries_answer_as_moto_after_every_write(client: Any, seed: int) -> None:
    rng = random.Random(seed)
    checked = 0
    for step in range(60):
        _write(client, rng)
        if step % 3 == 0 or step > 50:
            assert _answers(client, fast=True) == _answers(client, fast=False), f"seed {seed}, step {step}"
            checked += 1
    assert checked > 20


def test_every_write_request_names_the_items_it_may_change() -> None:
    named = moto_index._keys_named("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "a", "Item": {"id": {"S": "1"}, "x": {"S": "y"}}}},
        {"Update": {"TableName": "b", "Key": {"id": {"S": "2"}}}},
        {"Delete": {"TableName": "a", "Key": {"id": {"S": "3"}}}},
        {"ConditionCheck": {"TableName": "c", "Key": {"id": {"S": "4"}}}}]})
    assert named == [("a", {"id": {"S": "1"}, "x": {"S": "y"}}), ("b", {"id": {"S": "2"}}), ("a", {"id": {"S": "3"}})]
    batch = {"RequestItems": {"a": [{"DeleteRequest": {"Key": {"id": {"S": "5"}}}}]}}
    assert moto_index._keys_named("BatchWriteItem", batch) == [("a", {"id": {"S": "5"}})]
    assert moto_index._keys_named("UpdateTable", {"TableName": "a"}) == [("a", None)]  # the table is mapped afresh
    assert moto_index._keys_named("PutItem", {"TableName": "a", "Item": "junk"}) == [("a", None)]
