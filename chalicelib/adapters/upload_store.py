"""Announced uploads (`POST /uploads/url`) in the `lookups` table, under `upload#<object key>`.

One item per object key, kept after use: it is the record of who was allowed to write
that key and when, which the uploads handler checks every notification against.
"""

from __future__ import annotations

from typing import Any

from .dynamo import DynamoBase, from_item, key, to_item


def upload_lookup(object_key: str) -> str:
    return f"upload#{object_key}"


class DynamoUploads(DynamoBase):
    def announce(self, object_key: str, source_id: str, announced_at: str, expires_at: str) -> dict[str, Any]:
        """Record (or extend) the announcement of `object_key`; returns the stored item.

        Announcing the same key again keeps the first `announced_at`, so an object PUT with an
        earlier URL and notified late still falls inside the window; `expires_at` moves to the
        newest URL's expiry.
        """
        response = self.client.update_item(
            TableName=self.name("lookups"),
            Key=key(k=upload_lookup(object_key)),
            UpdateExpression="SET source_id = :s, object_key = :o, announced_at = if_not_exists(announced_at, :a), "
                             "last_announced_at = :a, expires_at = :e",
            # The key names its source, so it can only ever belong to that source.
            ConditionExpression="attribute_not_exists(k) OR source_id = :s",
            ExpressionAttributeValues=to_item({":s": source_id, ":o": object_key, ":a": announced_at,
                                               ":e": expires_at}),
            ReturnValues="ALL_NEW",
        )
        return from_item(response["Attributes"])

    def announcement(self, object_key: str) -> dict[str, Any] | None:
        return self.get("lookups", k=upload_lookup(object_key))
