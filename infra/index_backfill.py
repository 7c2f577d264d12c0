"""Write the sharded index keys (`chalicelib/domain/index_keys.py`) onto items stored before them, once.

Items written by a release without write-sharded indexes hold `status`, `pipeline`, `type`... but
not `status_key`, `pipeline_key`, `type_key`...: the indexes, now keyed by those, do not see them.
This scans each table with sharded indexes, in pages of `PAGE` items, and sets what is missing or
stale (a key attribute whose plain attribute is gone is removed, so sparse indexes stay sparse);
then it writes a marker item (`index_keys#<INDEX_SHARDS>` in `counters`) so later start-ups skip it.
Doing it twice changes nothing. Like `infra.counters.ensure_counted`, it runs at stack start-up,
before anything is served. A change of `INDEX_SHARDS` names a new marker: every key is rewritten.
"""

from __future__ import annotations

from typing import Any

from chalicelib.adapters.dynamo import from_item, set_remove, to_item
from chalicelib.domain.index_keys import INDEX_SHARDS, SHARDED, index_keys, key_attribute

from .resources import physical

PAGE = 500  # items a scan request reads: the work between two checks of the scan position
MARKER = f"index_keys#{INDEX_SHARDS}"


def backfill_table(dynamodb: Any, prefix: str, logical: str) -> int:
    """Set the index keys of every item of `logical` that lacks them (or holds stale ones); returns how many."""
    primary, plains = SHARDED[logical]
    attributes = (primary, *plains, *(key_attribute(p) for p in plains))
    names = {f"#a{i}": a for i, a in enumerate(attributes)}
    request: dict[str, Any] = {"TableName": physical(prefix, logical), "Limit": PAGE, "ConsistentRead": True,
                               "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}
    changed = 0
    while True:
        response = dynamodb.scan(**request)
        for raw in response.get("Items", []):
            if _fix(dynamodb, request["TableName"], logical, from_item(raw)):
                changed += 1
        if not response.get("LastEvaluatedKey"):
            return changed
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def _fix(dynamodb: Any, table: str, logical: str, item: dict[str, Any]) -> bool:
    primary, plains = SHARDED[logical]
    wanted = index_keys(logical, item)
    stale = [key_attribute(p) for p in plains if key_attribute(p) in item and key_attribute(p) not in wanted]
    sets = {k: v for k, v in wanted.items() if item.get(k) != v}
    if not sets and not stale:
        return False
    expression, names, values = set_remove(sets, tuple(stale))
    names["#pk"] = primary
    request: dict[str, Any] = {"TableName": table, "Key": to_item({primary: item[primary]}),
                               "UpdateExpression": expression, "ConditionExpression": "attribute_exists(#pk)",
                               "ExpressionAttributeNames": names}
    if values:
        request["ExpressionAttributeValues"] = to_item(values)
    try:
        dynamodb.update_item(**request)
    except dynamodb.exceptions.ConditionalCheckFailedException:
        return False  # deleted meanwhile: nothing to index
    return True


def backfill(dynamodb: Any, prefix: str) -> dict[str, int]:
    """Every table with sharded indexes, then the marker; returns the items changed per table."""
    changed = {logical: backfill_table(dynamodb, prefix, logical) for logical in SHARDED}
    dynamodb.put_item(TableName=physical(prefix, "counters"), Item={"name": {"S": MARKER}})
    return changed


def ensure_index_keys(dynamodb: Any, prefix: str) -> dict[str, int] | None:
    """Backfill once, when the marker says this store's items never got their index keys; None if done before."""
    found = dynamodb.get_item(TableName=physical(prefix, "counters"), Key={"name": {"S": MARKER}},
                              ConsistentRead=True)
    if "Item" in found:
        return None
    return backfill(dynamodb, prefix)
