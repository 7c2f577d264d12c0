"""Request units by AWS's item-size rules (infra.request_units), and the emulator's tally of real requests."""

from __future__ import annotations

import json
from typing import Any

import pytest
from werkzeug.test import Client

from infra.request_units import (
    index_write_units,
    item_size,
    number_size,
    read_units,
    value_size,
    write_cost,
    write_units,
)
from infra.usage import TALLY, USAGE_PATH, Counting

INDEX = {"name": "by_status", "keys": ["status"], "table_keys": ["id"], "projection": "ALL", "include": []}


def test_item_size_counts_names_and_values_by_aws_rules() -> None:
    # GIVEN an item of a string, a number, a boolean, a null, a list and a map
    item = {"id": {"S": "abc"}, "n": {"N": "12345"}, "ok": {"BOOL": True}, "no": {"NULL": True},
            "l": {"L": [{"S": "x"}, {"N": "7"}]}, "m": {"M": {"k": {"S": "vv"}}}}
    # THEN names count their UTF-8 bytes; numbers (digits / 2) + 1; lists and maps 3 + 1 per element
    assert item_size(item) == (2 + 3) + (1 + 4) + (2 + 1) + (2 + 1) + (1 + 3 + (1 + 1) + (1 + 2)) + (1 + 3 + 1 + 1 + 2)
    assert value_size({"S": "é"}) == 2
    assert value_size({"B": "AAECAw=="}) == 4  # base64 on the wire, raw bytes counted
    assert value_size({"SS": ["a", "bc"]}) == 3


@pytest.mark.parametrize(("text", "size"), [("7", 2), ("12345", 4), ("1.50", 2), ("-0.001", 2), ("1E+5", 2),
                                            ("0", 2), ("123456789012345678901234567890", 16)])
def test_number_size_is_half_the_significant_digits_plus_one(text: str, size: int) -> None:
    assert number_size(text) == size


def test_write_and_read_units_round_up_by_1_kb_and_4_kb() -> None:
    assert [write_units(b) for b in (0, 1, 1024, 1025, 3000)] == [1, 1, 1, 2, 3]
    assert [read_units(b, True) for b in (0, 4096, 4097)] == [1.0, 1.0, 2.0]
    assert [read_units(b, False) for b in (0, 4096, 4097, 12289)] == [0.5, 0.5, 1.0, 2.0]


def test_a_write_costs_the_larger_of_the_item_before_and_after() -> None:
    big = {"id": {"S": "a"}, "body": {"S": "x" * 2500}}
    small = {"id": {"S": "a"}}
    assert write_cost(big, small) == 3  # shrinking a 2.5 KB item still writes 2.5 KB
    assert write_cost(None, small) == 1
    assert write_cost(big, None) == 3  # a delete: the deleted item's size


def test_index_writes_follow_the_index_key() -> None:
    queued = {"id": {"S": "r1"}, "status": {"S": "queued"}}
    accepted = {"id": {"S": "r1"}, "status": {"S": "accepted"}}
    unindexed = {"id": {"S": "r1"}}
    assert index_write_units(None, queued, INDEX) == 1  # put into the index
    assert index_write_units(queued, accepted, INDEX) == 2  # key changed: delete + put
    assert index_write_units(queued, unindexed, INDEX) == 1  # left a sparse index: delete
    assert index_write_units(None, unindexed, INDEX) == 0  # never in it
    assert index_write_units(queued, {**queued, "x": {"N": "1"}}, INDEX) == 1  # ALL projects every change
    keys_only = {**INDEX, "projection": "KEYS_ONLY"}
    assert index_write_units(queued, {**queued, "x": {"N": "1"}}, keys_only) == 0


def _call(client: Client, operation: str, body: dict[str, Any], skip: bool = False) -> Any:
    headers = {"X-Amz-Target": f"DynamoDB_20120810.{operation}", "Content-Type": "application/x-amz-json-1.0",
               "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/dynamodb/aws4_request, "
                                "SignedHeaders=host, Signature=0"}
    if skip:
        headers["X-Drec-Usage"] = "skip"
    return client.post("/", data=json.dumps(body), headers=headers)


def test_the_emulator_counts_units_of_the_requests_it_serves(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("infra.usage.ENABLED", True)
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    client = Client(Counting(DomainDispatcherApplication(create_backend_app)))
    table = "usage-unit-test"
    _call(client, "CreateTable", {"TableName": table, "BillingMode": "PAY_PER_REQUEST",
                                  "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                                  "AttributeDefinitions": [{"AttributeName": "id", "AttributeType": "S"}]})
    client.post(USAGE_PATH)  # reset
    # GIVEN a 1.5 KB item written in a transaction, a conditional put that fails, and a watched read
    item = {"id": {"S": "a"}, "body": {"S": "x" * 1500}}
    assert _call(client, "TransactWriteItems", {"TransactItems": [{"Put": {"TableName": table, "Item": item}}]}
                 ).status_code == 200
    refused = _call(client, "PutItem", {"TableName": table, "Item": {"id": {"S": "a"}},
                                        "ConditionExpression": "attribute_not_exists(id)"})
    assert refused.status_code == 400
    _call(client, "GetItem", {"TableName": table, "Key": {"id": {"S": "a"}}}, skip=True)
    _call(client, "GetItem", {"TableName": table, "Key": {"id": {"S": "a"}}, "ConsistentRead": True})
    # THEN 2 × 2 units for the transaction, 2 for the refused put (the stored item's size), 1 for the read
    tally = json.loads(client.get(USAGE_PATH).get_data())
    counted = tally["dynamodb"]["tables"][table]
    assert counted["write_units"] == 6
    assert counted["read_units"] == 1
    assert tally["requests"]["dynamodb"] == {"TransactWriteItems": 1, "PutItem": 1, "GetItem": 1}
    assert tally["hot_keys"][table]["top"][0] == ["a", 6.0]
    TALLY.reset()


def test_nothing_is_counted_unless_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    monkeypatch.setattr("infra.usage.ENABLED", False)
    client = Client(Counting(DomainDispatcherApplication(create_backend_app)))
    client.post(USAGE_PATH)
    _call(client, "ListTables", {})
    tally = json.loads(client.get(USAGE_PATH).get_data())
    assert tally["counting"] is False and tally["requests"] == {}
