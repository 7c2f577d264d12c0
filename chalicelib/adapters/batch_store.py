"""Anchored batches of events, and the anchoring watermark, in DynamoDB."""

from __future__ import annotations

from typing import Any

from .dynamo import DynamoBase, from_item, key, to_item, update

LEDGER = "main"
ANCHORED_SEQ = "anchored_seq"


class DynamoBatches(DynamoBase):
    def anchored_through(self) -> int:
        counter = self.get("counters", name=ANCHORED_SEQ)
        return int(counter["value"]) if counter else 0

    def batch(self, first_seq: int) -> dict[str, Any] | None:
        return self.get("batches", ledger=LEDGER, first_seq=first_seq)

    def save_prepared(self, record: dict[str, Any]) -> None:
        self.client.put_item(TableName=self.name("batches"), Item=to_item({"ledger": LEDGER, **record}),
                             ConditionExpression="attribute_not_exists(first_seq)")

    def record_anchored(self, first_seq: int, count: int, anchor: dict[str, Any]) -> None:
        """Mark the batch anchored and move the watermark, only from where it was."""
        old = first_seq - 1
        condition = "attribute_not_exists(#v) OR #v = :old" if old == 0 else "#v = :old"
        self.transact([
            update(self.name("batches"), {"ledger": LEDGER, "first_seq": first_seq},
                   "SET #s = :anchored, anchor = :anchor", names={"#s": "status"},
                   values={":anchored": "anchored", ":anchor": anchor}),
            update(self.name("counters"), {"name": ANCHORED_SEQ}, "SET #v = :new", condition,
                   names={"#v": "value"}, values={":old": old, ":new": first_seq + count - 1}),
        ])

    def covering(self, seq: int) -> dict[str, Any] | None:
        """The batch holding event `seq`, if one was prepared."""
        response = self.client.query(
            TableName=self.name("batches"), KeyConditionExpression="#l = :l AND first_seq <= :s",
            ExpressionAttributeNames={"#l": "ledger"}, ExpressionAttributeValues=to_item({":l": LEDGER, ":s": seq}),
            ScanIndexForward=False, Limit=1, ConsistentRead=True)
        items = [from_item(i) for i in response.get("Items", [])]
        if items and items[0]["first_seq"] + items[0]["count"] > seq:
            return items[0]
        return None

    def note_failure(self, retry_at: str, failures: int, error: str) -> None:
        self.client.put_item(TableName=self.name("counters"), Item=to_item(
            {"name": "anchor_backoff", "retry_at": retry_at, "failures": failures, "error": error}))

    def backoff(self) -> dict[str, Any] | None:
        return self.get("counters", name="anchor_backoff")

    def clear_backoff(self) -> None:
        self.client.delete_item(TableName=self.name("counters"), Key=key(name="anchor_backoff"))

