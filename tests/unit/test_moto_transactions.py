"""The emulator's TransactWriteItems keeps DynamoDB's all-or-nothing semantics."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

TABLE = "drec-test-counters"


def _put(name: str, value: int, condition: str | None = None) -> dict[str, Any]:
    op: dict[str, Any] = {"TableName": TABLE, "Item": {"name": {"S": name}, "value": {"N": str(value)}}}
    if condition:
        op["ConditionExpression"] = condition
        op["ExpressionAttributeNames"] = {"#n": "name"}
    return {"Put": op}


def test_failed_condition_cancels_every_write_with_reasons(aws: Any) -> None:
    dynamodb = aws.client("dynamodb")
    dynamodb.transact_write_items(TransactItems=[_put("a", 1)])
    with pytest.raises(ClientError) as caught:
        dynamodb.transact_write_items(TransactItems=[_put("b", 2), _put("a", 3, "attribute_not_exists(#n)")])
    assert caught.value.response["Error"]["Code"] == "TransactionCanceledException"
    assert [r["Code"] for r in caught.value.response["CancellationReasons"]] == ["None", "ConditionalCheckFailed"]
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "b"}})
    assert dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "a"}})["Item"]["value"]["N"] == "1"


def test_write_failing_while_applied_is_undone(aws: Any) -> None:
    dynamodb = aws.client("dynamodb")
    dynamodb.transact_write_items(TransactItems=[_put("c", 1)])
    bad_update = {"Update": {"TableName": TABLE, "Key": {"name": {"S": "c"}},
                             "UpdateExpression": "SET #v = #v + :one",
                             "ExpressionAttributeNames": {"#v": "value"},
                             "ExpressionAttributeValues": {":one": {"S": "not a number"}}}}
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[_put("d", 4), bad_update])
    assert "Item" not in dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "d"}})
    assert dynamodb.get_item(TableName=TABLE, Key={"name": {"S": "c"}})["Item"]["value"]["N"] == "1"


def test_one_item_twice_is_refused(aws: Any) -> None:
    with pytest.raises(ClientError) as caught:
        aws.client("dynamodb").transact_write_items(TransactItems=[_put("e", 1), _put("e", 2)])
    assert caught.value.response["Error"]["Code"] == "ValidationException"
