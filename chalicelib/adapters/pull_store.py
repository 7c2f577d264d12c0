"""Pull configurations (`pulls`, one item per source) and their runs (`pull_runs`) in DynamoDB.

A configuration and the state of its pulling share one item. The sparse `by_due` index holds the
active ones by `due_shard` (a few fixed shards) and `next_due_at`, so the schedule reads only what is
due. Taking a lease is one conditional update: it holds only while `next_due_at <= now`, and it moves
`next_due_at` to the lease's end, so a second puller's condition fails, and a crashed puller's
source falls due again when its lease runs out. The cursor is moved, and the lease given back, only
by the lease's owner and only while the configuration is the generation it leased.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import fields
from typing import Any

from botocore.exceptions import ClientError

from ..domain.ledger.events import NewEvent
from ..domain.pull import Lease, PullConfig, PullState, RunRecord
from .dynamo import DynamoBase, from_item, key, set_remove, to_item, update

DUE_SHARDS = 4
RUN_TTL_S = 90 * 86400  # runs are kept 90 days
# The item's attributes: every field of the configuration (its key apart) and of its state.
CONFIG_FIELDS = tuple(f.name for f in fields(PullConfig) if f.name != "source_id")
STATE_FIELDS = tuple(f.name for f in fields(PullState))


def due_shard(source_id: str) -> str:
    return f"due#{int(hashlib.sha256(source_id.encode()).hexdigest()[:8], 16) % DUE_SHARDS}"


def _refused(error: ClientError) -> bool:
    return error.response["Error"]["Code"] == "ConditionalCheckFailedException"


class DynamoPulls(DynamoBase):
    def config(self, source_id: str) -> tuple[PullConfig, PullState] | None:
        item = self.get("pulls", source_id=source_id)
        if item is None:
            return None
        config = PullConfig(source_id=source_id, **{f: item[f] for f in CONFIG_FIELDS if f in item})
        state = PullState(**{f: item[f] for f in STATE_FIELDS if f in item})
        return config, state

    def save_config(self, config: PullConfig, event: NewEvent, previous_generation: int | None,
                    reset_cursor: bool, due_at: str) -> None:
        values: dict[str, Any] = {f: getattr(config, f) for f in CONFIG_FIELDS}
        values.update({"next_due_at": due_at, "due_shard": due_shard(config.source_id), "failures": 0,
                       "parked": None})
        if reset_cursor:
            values["cursor"] = config.start_cursor
        expression, names, bound = set_remove(values, ("lease_owner", "lease_until", "rerun"))
        if previous_generation is None:
            condition = "attribute_not_exists(source_id)"
        else:
            condition, bound[":g"] = "generation = :g", previous_generation
        self.commit([update(self.name("pulls"), {"source_id": config.source_id}, expression, condition, names,
                            bound)], [event])

    def remove_config(self, source_id: str, generation: int, event: NewEvent) -> None:
        self.commit([{"Delete": {"TableName": self.name("pulls"), "Key": key(source_id=source_id),
                                 "ConditionExpression": "generation = :g",
                                 "ExpressionAttributeValues": to_item({":g": generation})}}], [event])

    def due(self, now: str, limit: int) -> list[str]:
        found: list[str] = []
        per_shard = -(-limit // DUE_SHARDS)
        for shard in range(DUE_SHARDS):
            response = self.client.query(
                TableName=self.name("pulls"), IndexName="by_due", Limit=per_shard,
                KeyConditionExpression="due_shard = :s AND next_due_at <= :now",
                ExpressionAttributeValues=to_item({":s": f"due#{shard}", ":now": now}))
            found += [from_item(i)["source_id"] for i in response.get("Items", [])]
        return found[:limit]

    def _update(self, source_id: str, values: dict[str, Any], condition: str, extra: dict[str, Any],
                remove: tuple[str, ...] = (), returns: str = "NONE") -> dict[str, Any] | None:
        """The conditional update's returned attributes ({} when none asked), or None when the condition failed."""
        expression, names, bound = set_remove(values, remove)
        request: dict[str, Any] = {"TableName": self.name("pulls"), "Key": key(source_id=source_id),
                                   "UpdateExpression": expression, "ConditionExpression": condition,
                                   "ExpressionAttributeNames": names, "ReturnValues": returns}
        if bound or extra:
            request["ExpressionAttributeValues"] = to_item({**bound, **extra})
        try:
            response = self.client.update_item(**request)
        except ClientError as error:
            if _refused(error):
                return None
            raise
        return from_item(response.get("Attributes", {}))

    def take_lease(self, source_id: str, owner: str, now: str, until: str) -> Lease | None:
        done = self._update(source_id, {"lease_owner": owner, "lease_until": until, "next_due_at": until},
                            "attribute_exists(due_shard) AND next_due_at <= :now", {":now": now},
                            returns="ALL_NEW")
        return Lease(source_id, owner, int(done["generation"]), until) if done is not None else None

    def save_cursor(self, lease: Lease, cursor: str | None) -> bool:
        return self._update(lease.source_id, {"cursor": cursor}, "lease_owner = :o AND generation = :g",
                            {":o": lease.owner, ":g": lease.generation}) is not None

    def release(self, lease: Lease, next_due_at: str, failures: int, run: RunRecord) -> bool:
        self._put_run(run)
        values = {"next_due_at": next_due_at, "failures": failures, "last_run_id": run.run_id,
                  "last_status": run.status, "last_error": run.errors[-1]["error"] if run.status == "failed" else None}
        old = self._update(lease.source_id, values, "lease_owner = :o AND generation = :g",
                           {":o": lease.owner, ":g": lease.generation}, ("lease_owner", "lease_until", "rerun"),
                           returns="ALL_OLD")
        if old is None:
            return False
        if old.get("rerun"):  # "pull now" arrived during the run
            self._update(lease.source_id, {"next_due_at": run.finished_at},
                         "attribute_exists(due_shard) AND attribute_not_exists(lease_owner)", {})
        return True

    def park(self, source_id: str, reason: str) -> None:
        self._update(source_id, {"parked": reason}, "attribute_exists(source_id)", {},
                     ("due_shard", "lease_owner", "lease_until"))

    def mark_due(self, source_id: str, now: str) -> bool:
        if self._update(source_id, {"next_due_at": now}, "attribute_exists(due_shard) AND "
                        "attribute_not_exists(lease_owner)", {}) is not None:
            return True
        self._update(source_id, {"rerun": True}, "attribute_exists(lease_owner)", {})
        return False

    def runs(self, source_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        page = self.query_page("pull_runs", None, "source_id", source_id, limit, cursor, forward=False)
        # Stored items leave out what is None; the answer names every field.
        blank, blank_error = dict.fromkeys(("cursor_before", "next_cursor")), dict.fromkeys(("index", "field"))
        runs = [{**blank, **{k: v for k, v in i.items() if k not in ("source_id", "expires_at")}} for i in page.items]
        for run in runs:
            run["errors"] = [{**blank_error, **e} for e in run.get("errors", [])]
        return runs, page.next_cursor

    def _put_run(self, run: RunRecord) -> None:
        item = {"source_id": run.source_id, **run.view(), "expires_at": int(time.time()) + RUN_TTL_S}
        self.client.put_item(TableName=self.name("pull_runs"), Item=to_item(item))
