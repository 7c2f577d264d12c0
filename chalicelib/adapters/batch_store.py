"""Anchored batches of events, and the anchoring watermarks, in DynamoDB: one ledger per event shard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..domain.anchoring import Anchor, Backoff, Batch, BatchStatus
from ..domain.stores import TransactionRefused
from .dynamo import DynamoBase, counter_values, from_item, key, to_item, update

ANCHORED_SEQ = "anchored_seq"


def ledger_of(shard: int) -> str:
    """The `batches` partition of a shard's batches."""
    return f"shard-{shard}"


def watermark(shard: int) -> str:
    """The counter item of a shard's anchoring watermark."""
    return f"{ANCHORED_SEQ}#{shard}"


class DynamoBatches(DynamoBase):
    def anchored_through(self, shard: int) -> int:
        counter = self.get("counters", name=watermark(shard))
        return int(counter["value"]) if counter else 0

    def anchored_throughs(self, shards: int) -> list[int]:
        return counter_values(self, [watermark(s) for s in range(shards)])

    def batch(self, shard: int, first_seq: int) -> Batch | None:
        item = self.get("batches", ledger=ledger_of(shard), first_seq=first_seq)
        return batch_from_item(item) if item else None

    def save_prepared(self, batch: Batch) -> None:
        item = {"ledger": ledger_of(batch.shard), "shard": batch.shard, "first_seq": batch.first_seq,
                "count": batch.count, "root": batch.root,
                "data_sha256": batch.data_sha256, "object": batch.object, "status": batch.status.value,
                "prepared_at": batch.prepared_at}
        self.client.put_item(TableName=self.name("batches"), Item=to_item(item),
                             ConditionExpression="attribute_not_exists(first_seq)")

    def record_anchored(self, shard: int, first_seq: int, count: int, anchor: Anchor) -> None:
        """Mark the batch anchored and move the shard's watermark, only from where it was."""
        old = first_seq - 1
        condition = "attribute_not_exists(#v) OR #v = :old" if old == 0 else "#v = :old"
        self.transact([
            update(self.name("batches"), {"ledger": ledger_of(shard), "first_seq": first_seq},
                   "SET #s = :anchored, anchor = :anchor", names={"#s": "status"},
                   values={":anchored": BatchStatus.ANCHORED.value, ":anchor": anchor.to_dict()}),
            update(self.name("counters"), {"name": watermark(shard)}, "SET #v = :new", condition,
                   names={"#v": "value"}, values={":old": old, ":new": first_seq + count - 1}),
        ])

    def rewind(self, shard: int, old: int, new: int) -> None:
        """Put the shard's watermark back from `old` to `new` (the chain holds only `1..new`): the batches
        after it are anchored again, from the same stored events, so with the same roots."""
        try:
            self.client.update_item(TableName=self.name("counters"), Key=key(name=watermark(shard)),
                                    UpdateExpression="SET #v = :new", ConditionExpression="#v = :old",
                                    ExpressionAttributeNames={"#v": "value"},
                                    ExpressionAttributeValues=to_item({":old": old, ":new": new}))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise TransactionRefused(["ConditionalCheckFailed"]) from exc
            raise

    def covering(self, shard: int, seq: int) -> Batch | None:
        """The batch of `shard` holding event `seq`, if one was prepared."""
        response = self.client.query(
            TableName=self.name("batches"), KeyConditionExpression="#l = :l AND first_seq <= :s",
            ExpressionAttributeNames={"#l": "ledger"},
            ExpressionAttributeValues=to_item({":l": ledger_of(shard), ":s": seq}),
            ScanIndexForward=False, Limit=1, ConsistentRead=True)
        batches = [batch_from_item(from_item(i)) for i in response.get("Items", [])]
        return batches[0] if batches and batches[0].covers(seq) else None

    def note_failure(self, retry_at: str, failures: int, error: str) -> None:
        self.client.put_item(TableName=self.name("counters"), Item=to_item(
            {"name": "anchor_backoff", "retry_at": retry_at, "failures": failures, "error": error}))

    def backoff(self) -> Backoff | None:
        item = self.get("counters", name="anchor_backoff")
        return Backoff(item["retry_at"], int(item["failures"]), item.get("error", "")) if item else None

    def clear_backoff(self) -> None:
        self.client.delete_item(TableName=self.name("counters"), Key=key(name="anchor_backoff"))


def batch_from_item(item: Mapping[str, Any]) -> Batch:
    anchor = item.get("anchor")
    return Batch(shard=int(item.get("shard", 0)), first_seq=int(item["first_seq"]), count=int(item["count"]),
                 root=item["root"],
                 data_sha256=item["data_sha256"], object=item["object"], status=BatchStatus(item["status"]),
                 prepared_at=item.get("prepared_at", ""),
                 anchor=Anchor(int(anchor["batch_id"]), anchor["root"], anchor["tx_hash"],
                               int(anchor["block_number"])) if anchor else None)
