"""The emulator's UpdateItem fast path leaves every item exactly as moto's own UpdateItem does."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.dynamodb.models import DynamoDBBackend

from infra import moto_speed

CASES: list[tuple[str, dict[str, str], dict[str, Any], str | None]] = [
    ("SET a = :v", {}, {":v": {"S": "x"}}, None),
    ("SET #s = :s, #r = :r, expected_wh = :e", {"#s": "status", "#r": "rule"},
     {":s": {"S": "accepted"}, ":r": {"S": "ok"}, ":e": {"N": "60"}}, None),
    ("SET n = if_not_exists(n, :zero) + :one", {}, {":zero": {"N": "0"}, ":one": {"N": "1.5"}}, None),
    ("SET n = n - :one", {}, {":one": {"N": "2"}}, None),
    ("ADD n :one", {}, {":one": {"N": "3"}}, None),
    ("ADD serials :s", {}, {":s": {"SS": ["b", "a"]}}, None),
    ("ADD serials :s", {}, {":s": {"SS": ["a", "c"]}}, None),
    ("DELETE serials :s", {}, {":s": {"SS": ["a"]}}, None),
    ("SET pooled_wh = :new REMOVE #p", {"#p": "pipeline"}, {":new": {"N": "10"}}, None),
    ("SET l = list_append(if_not_exists(l, :empty), :x)", {}, {":empty": {"L": []}, ":x": {"L": [{"S": "q"}]}},
     None),
    ("SET a = :v", {}, {":v": {"S": "y"}, ":old": {"S": "x"}}, "a = :old"),
    ("SET a = :v", {}, {":v": {"S": "z"}, ":old": {"S": "nope"}}, "a = :old"),
    ("SET id = :v", {}, {":v": {"S": "other"}}, None),  # a key attribute: moto's error
    ("SET m = b", {}, {}, None),  # a missing operand: moto's error
    ("SET a.b = :v", {}, {":v": {"S": "nested"}}, None),  # nested: moto's path
    ("SET #t = :v", {"#t": "TTL"}, {":v": {"N": "5"}}, None),
    ("SET a = :v, a = :w", {}, {":v": {"S": "1"}, ":w": {"S": "2"}}, None),
    ("SET s = :v", {}, {":v": {"S": "x" * 1000}}, None),
    ("ADD a :one", {}, {":one": {"N": "1"}}, None),  # a is a string: moto's error
    ("REMOVE a, n", {}, {}, None),
    ("set a = :v remove zz", {}, {":v": {"S": "lower"}}, None),
]


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        client.create_table(TableName="t", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                            BillingMode="PAY_PER_REQUEST")
        yield client


def _run(client: Any, key: str, steps: list[int]) -> list[Any]:
    out: list[Any] = []
    for index in steps:
        expression, names, values, condition = CASES[index]
        request: dict[str, Any] = {"TableName": "t", "Key": {"id": {"S": key}}, "UpdateExpression": expression,
                                   "ReturnValues": "ALL_NEW"}
        if names:
            request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        if condition:
            request["ConditionExpression"] = condition
        try:
            out.append(client.update_item(**request).get("Attributes"))
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"]))
        out.append(client.get_item(TableName="t", Key={"id": {"S": key}}).get("Item"))
    return out


@pytest.mark.parametrize("seed", range(12))
def test_fast_updates_match_moto(dynamodb: Any, seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(seed)
    steps = [rng.randrange(len(CASES)) for _ in range(40)]
    monkeypatch.setattr(DynamoDBBackend, "update_item", moto_speed._moto_update_item)
    expected = _run(dynamodb, f"slow-{seed}", steps)
    monkeypatch.setattr(DynamoDBBackend, "update_item", moto_speed.update_item)
    assert _run(dynamodb, f"fast-{seed}", steps) == [_rekey(x, f"slow-{seed}", f"fast-{seed}") for x in expected]


def _rekey(value: Any, old: str, new: str) -> Any:
    if isinstance(value, dict):
        return {k: _rekey(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [_rekey(v, old, new) for v in value]
    return new if value == old else value


def test_every_supported_form_takes_the_fast_path() -> None:
    for expression, *_ in CASES:
        if expression in ("SET a.b = :v", "SET a = :v, a = :w"):
            assert moto_speed._plan(expression) is None
        elif expression.startswith("SET #t") or expression in ("SET id = :v", "SET m = b"):
            continue  # read fine; refused when applied
        else:
            assert moto_speed._plan(expression) is not None, expression


def _workload(client: Any) -> list[Any]:
    """Reads and writes of every data operation, answers without their request ids."""
    client.create_table(TableName="w", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                                  {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "N"},
                                              {"AttributeName": "g", "AttributeType": "S"}],
                        GlobalSecondaryIndexes=[{"IndexName": "by_g", "KeySchema": [
                            {"AttributeName": "g", "KeyType": "HASH"}], "Projection": {"ProjectionType": "ALL"}}],
                        BillingMode="PAY_PER_REQUEST")
    out: list[Any] = []

    def call(name: str, **kwargs: Any) -> None:
        try:
            answer = getattr(client, name)(**kwargs)
            answer.pop("ResponseMetadata", None)
            out.append(answer)
        except ClientError as exc:
            out.append((exc.response["Error"]["Code"], exc.response["Error"]["Message"],
                        exc.response.get("CancellationReasons")))

    for i in range(30):
        call("put_item", TableName="w", Item={"pk": {"S": f"p{i % 3}"}, "sk": {"N": str(i)}, "g": {"S": f"g{i % 2}"},
                                              "n": {"N": "1.50"}, "l": {"L": [{"S": "x"}, {"NULL": True}]},
                                              "m": {"M": {"a": {"BOOL": False}}}, "ss": {"SS": ["a", "b"]}})
    call("put_item", TableName="w", Item={"pk": {"S": "p0"}, "sk": {"N": "0"}},
         ConditionExpression="attribute_not_exists(pk)")
    call("put_item", TableName="w", Item={"pk": {"S": "p0"}, "sk": {"N": "1"}, "g": {"S": "g1"}},
         ReturnValues="ALL_OLD")
    call("get_item", TableName="w", Key={"pk": {"S": "p1"}, "sk": {"N": "4"}})
    call("get_item", TableName="w", Key={"pk": {"S": "p1"}, "sk": {"N": "999"}})
    call("get_item", TableName="w", Key={"pk": {"S": "p1"}, "sk": {"N": "4"}}, ProjectionExpression="n, ss",
         ReturnConsumedCapacity="TOTAL")
    call("update_item", TableName="w", Key={"pk": {"S": "p2"}, "sk": {"N": "5"}}, UpdateExpression="SET n = n + :d",
         ExpressionAttributeValues={":d": {"N": "2"}}, ReturnValues="UPDATED_OLD")
    call("update_item", TableName="w", Key={"pk": {"S": "p2"}, "sk": {"N": "5"}}, UpdateExpression="SET n = :d",
         ConditionExpression="n = :never", ExpressionAttributeValues={":d": {"N": "2"}, ":never": {"N": "-1"}},
         ReturnValuesOnConditionCheckFailure="ALL_OLD")
    call("query", TableName="w", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "p0"}},
         Limit=4)
    call("query", TableName="w", KeyConditionExpression="pk = :p AND sk > :s", ScanIndexForward=False,
         ExpressionAttributeValues={":p": {"S": "p0"}, ":s": {"N": "3"}}, Select="COUNT")
    call("query", TableName="w", IndexName="by_g", KeyConditionExpression="g = :g",
         ExpressionAttributeValues={":g": {"S": "g1"}}, Limit=5, ReturnConsumedCapacity="INDEXES")
    call("scan", TableName="w", Limit=7, FilterExpression="sk > :s", ExpressionAttributeValues={":s": {"N": "10"}})
    call("batch_get_item", RequestItems={"w": {"Keys": [{"pk": {"S": "p0"}, "sk": {"N": str(i)}} for i in (0, 3, 4)]}})
    call("batch_write_item", RequestItems={"w": [{"PutRequest": {"Item": {"pk": {"S": "b"}, "sk": {"N": str(i)}}}}
                                                 for i in range(3)]})
    call("transact_write_items", TransactItems=[
        {"Put": {"TableName": "w", "Item": {"pk": {"S": "t"}, "sk": {"N": "1"}}}},
        {"Update": {"TableName": "w", "Key": {"pk": {"S": "p0"}, "sk": {"N": "0"}}, "UpdateExpression": "ADD c :o",
                    "ExpressionAttributeValues": {":o": {"N": "1"}}}}])
    call("transact_write_items", TransactItems=[
        {"Put": {"TableName": "w", "Item": {"pk": {"S": "t"}, "sk": {"N": "1"}},
                 "ConditionExpression": "attribute_not_exists(pk)"}},
        {"Delete": {"TableName": "w", "Key": {"pk": {"S": "p0"}, "sk": {"N": "0"}}}}])
    call("transact_get_items", TransactItems=[{"Get": {"TableName": "w", "Key": {"pk": {"S": "t"}, "sk": {"N": "1"}}}}])
    call("delete_item", TableName="w", Key={"pk": {"S": "t"}, "sk": {"N": "1"}}, ReturnValues="ALL_OLD")
    call("put_item", TableName="w", Item={"pk": {"S": "bin"}, "sk": {"N": "1"}, "b": {"B": b"\x00\x01"}})
    call("get_item", TableName="w", Key={"pk": {"S": "bin"}, "sk": {"N": "1"}})
    return out


def test_plain_json_answers_match_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb import responses

    with mock_aws():
        monkeypatch.setattr(responses.DynamoHandler, "parse_parameters", moto_speed._moto_parse_parameters)
        monkeypatch.setattr(responses.DynamoHandler, "serialized", moto_speed._moto_serialized)
        expected = _workload(boto3.client("dynamodb", region_name="us-east-1"))
    with mock_aws():
        monkeypatch.setattr(responses.DynamoHandler, "parse_parameters", moto_speed.parse_parameters)
        monkeypatch.setattr(responses.DynamoHandler, "serialized", moto_speed.serialized)
        assert _workload(boto3.client("dynamodb", region_name="us-east-1")) == expected
