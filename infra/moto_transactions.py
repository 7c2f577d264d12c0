"""TransactWriteItems for moto at the cost of the items it touches.

moto rolls a failed transaction back by `copy.deepcopy` of every table the
transaction names, taken before it starts: each transaction costs time in the size of
those tables (seconds once a table holds ~100,000 items). DynamoDB itself evaluates
every condition against the state before the transaction and then applies all writes
or none. This does the same: check every condition first, then apply, keeping a copy
of only the touched items to undo a write that fails while being applied. Errors and
cancellation reasons are moto's own.
"""

from __future__ import annotations

from typing import Any

from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ConditionalCheckFailed,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend

OPERATIONS = {"ConditionCheck", "Put", "Delete", "Update"}


def _key_of(backend: DynamoDBBackend, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
    if op_type != "Put":
        return dict(op["Key"])
    table = backend.get_table(op["TableName"])
    key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = op["Item"][table.range_key_attr]
    return key


def transact_write_items(self: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    seen: set[tuple[str, str]] = set()
    planned: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
    errors: list[Any] = []
    for item in transact_items:
        if len(item) > 1:
            raise TransactWriteSingleOpException
        op_type, op = next(iter(item.items()))
        try:
            if op_type not in OPERATIONS:
                raise ValueError("Unsupported transaction operation")
            key = _key_of(self, op_type, op)
            marker = (str(op["TableName"]), str(dict(sorted(key.items()))))
            if marker in seen:
                raise MultipleTransactionsException()
            seen.add(marker)
            current = self.get_item(op["TableName"], key)
            condition = op.get("ConditionExpression")
            if condition is not None and not get_filter_expression(
                    condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")).expr(current):
                old = current.to_json()["Attributes"] if current and op.get(
                    "ReturnValuesOnConditionCheckFailure") == "ALL_OLD" else None
                errors.append(("ConditionalCheckFailed", ConditionalCheckFailed().message, old))
                continue
            planned.append((op_type, op, key))
            errors.append((None, None, None))
        except MultipleTransactionsException:
            raise
        except Exception as exc:  # moto reports other failures as cancellation reasons too
            errors.append((type(exc).__name__, str(exc), None))
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    undo: list[tuple[str, dict[str, Any], dict[str, Any] | None]] = []
    try:
        for op_type, op, key in planned:
            if op_type == "ConditionCheck":
                continue
            before = self.get_item(op["TableName"], key)
            undo.append((op["TableName"], key, before.to_json()["Attributes"] if before else None))
            names, values = op.get("ExpressionAttributeNames") or {}, op.get("ExpressionAttributeValues") or {}
            if op_type == "Put":
                self.put_item(op["TableName"], op["Item"], expression_attribute_names=names,
                              expression_attribute_values=values)
            elif op_type == "Delete":
                self.delete_item(op["TableName"], key, expression_attribute_names=names,
                                 expression_attribute_values=values)
            else:
                self.update_item(op["TableName"], key, update_expression=op["UpdateExpression"],
                                 expression_attribute_names=names, expression_attribute_values=values)
    except Exception as exc:
        for table_name, key, attributes in reversed(undo):
            if attributes is None:
                self.delete_item(table_name, key)
            else:
                self.put_item(table_name, attributes)
        failed: list[Any] = [(None, None, None)] * len(transact_items)
        failed[len(undo) - 1 if undo else 0] = (type(exc).__name__, str(exc), None)
        raise TransactionCanceledException(failed) from exc


def install() -> None:
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
