"""Readings and per-device state in DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..domain.errors import Conflict
from .dynamo import MAX_TRANSACTION_ITEMS, DynamoBase, Page, TransactionRefused, from_item, put, to_item, update
from .registry_store import external_lookup

# Rounds of a transaction that lost only to concurrent transactions (no condition failed).
WRITE_ATTEMPTS = 5


class DynamoReadings(DynamoBase):
    def readings(self, reading_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(reading_ids))
        return {item["id"]: item for item in self.batch_get("readings", [{"id": i} for i in unique])}

    def contents(self, reading_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Only what makes a reading the same reading (id, device, period, energy): the intake compares
        these on every resubmission, and whole items cost far more to read back."""
        table = self.name("readings")
        names = {f"#a{i}": a for i, a in enumerate(("id", "device_id", "period_start", "period_end", "energy_wh"))}
        unique = list(dict.fromkeys(reading_ids))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(unique), 100):
            pending: dict[str, Any] = {table: {"Keys": [to_item({"id": i}) for i in unique[start:start + 100]],
                                               "ConsistentRead": True, "ProjectionExpression": ", ".join(names),
                                               "ExpressionAttributeNames": names}}
            while pending:
                response = self.client.batch_get_item(RequestItems=pending)
                found.update((item["id"], item) for item in map(from_item, response["Responses"].get(table, [])))
                pending = response.get("UnprocessedKeys") or {}
        return found

    def external_targets(self, source_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        keys = [{"k": external_lookup(source_id, "reading", e)} for e in dict.fromkeys(external_ids)]
        prefix = len(external_lookup(source_id, "reading", ""))
        return {item["k"][prefix:]: item["target_id"] for item in self.batch_get("lookups", keys)}

    def store_new(self, records: Sequence[dict[str, Any]], source_id: str) -> list[str]:
        """Write readings that are not there yet, each with its external-id lookup, in small transactions.

        A received reading never changes: each put holds only if no reading has that id (and the
        external id names no other reading), so a second writer can never replace what the validator
        is judging. Returns the ids refused because something was already there; the caller re-reads
        and compares them.
        """
        groups: list[tuple[str, list[dict[str, Any]]]] = []
        for record in records:
            group = [put(self.name("readings"), record, "attribute_not_exists(id)")]
            if record.get("external_id"):
                group.append(put(self.name("lookups"), {"k": external_lookup(source_id, "reading",
                                                                              record["external_id"]),
                                                        "target_id": record["id"]},
                                 "attribute_not_exists(k) OR target_id = :id", values={":id": record["id"]}))
            groups.append((record["id"], group))
        refused: list[str] = []
        chunk: list[tuple[str, list[dict[str, Any]]]] = []
        for entry in groups:
            if sum(len(g) for _, g in chunk) + len(entry[1]) > MAX_TRANSACTION_ITEMS:
                refused += self._put_all_or_refuse(chunk)
                chunk = []
            chunk.append(entry)
        if chunk:
            refused += self._put_all_or_refuse(chunk)
        return refused

    def _put_all_or_refuse(self, pending: list[tuple[str, list[dict[str, Any]]]]) -> list[str]:
        refused: list[str] = []
        for _ in range(WRITE_ATTEMPTS):
            if not pending:
                return refused
            try:
                self.transact([item for _, group in pending for item in group])
                return refused
            except TransactionRefused as exc:
                failed, position = [], 0
                for _, group in pending:
                    codes = exc.reasons[position:position + len(group)]
                    position += len(group)
                    failed.append("ConditionalCheckFailed" in codes)
                refused += [r for (r, _), lost in zip(pending, failed) if lost]
                # The rest lost nothing but a race with other transactions: try them again.
                pending = [g for g, lost in zip(pending, failed) if not lost]
        if pending:
            raise Conflict("readings are being written concurrently; send the request again")
        return refused

    def device_states(self, device_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        keys = [{"device_id": d} for d in dict.fromkeys(device_ids)]
        return {item["device_id"]: item for item in self.batch_get("device_state", keys)}

    def state_update(self, device_id: str, old_version: int, ranges: list[list[int]],
                     history: dict[str, Any]) -> dict[str, Any]:
        """Write a device's ranges and history only if nobody changed them since they were read."""
        condition = "attribute_not_exists(version)" if old_version == 0 else "version = :old"
        values: dict[str, Any] = {":new": old_version + 1, ":ranges": ranges, ":history": history}
        if old_version:
            values[":old"] = old_version
        return update(self.name("device_state"), {"device_id": device_id},
                      "SET version = :new, ranges = :ranges, history = :history", condition, values=values)

    def judgement_update(self, reading_id: str, fields: dict[str, Any], from_status: str,
                         pipeline: str | None, energy_wh: int | None = None) -> dict[str, Any]:
        """A verdict, written only if the reading is still in `from_status` and (given `energy_wh`)
        still holds the energy that was judged."""
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
        values[":from"] = from_status
        names["#status"] = "status"
        expression = "SET " + ", ".join(sets)
        if pipeline:
            names["#p"] = "pipeline"
            values[":p"] = pipeline
            expression += ", #p = :p"
        else:
            names["#p"] = "pipeline"
            expression += " REMOVE #p"
        condition = "#status = :from"
        if energy_wh is not None:
            names["#e"] = "energy_wh"
            values[":judged"] = energy_wh
            condition += " AND #e = :judged"
        return update(self.name("readings"), {"id": reading_id}, expression, condition,
                      names=names, values=values)

    def waiting(self, stage: str, received_before: str, limit: int = 500) -> list[dict[str, Any]]:
        page = self.query_page("readings", "by_pipeline", "pipeline", stage, limit, None,
                               range_condition=("received_at", "<", received_before))
        return page.items

    def device_readings(self, device_id: str, limit: int, cursor: str | None, status: str | None) -> Page:
        return self.query_page("readings", "by_device", "device_id", device_id, limit, cursor, {"status": status})

    def by_status(self, status: str, limit: int, cursor: str | None) -> Page:
        return self.query_page("readings", "by_status", "status", status, limit, cursor)
