"""Readings and per-device state in DynamoDB."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .dynamo import DynamoBase, Page, update
from .registry_store import external_lookup


class DynamoReadings(DynamoBase):
    def readings(self, reading_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        unique = list(dict.fromkeys(reading_ids))
        return {item["id"]: item for item in self.batch_get("readings", [{"id": i} for i in unique])}

    def external_targets(self, source_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        keys = [{"k": external_lookup(source_id, "reading", e)} for e in dict.fromkeys(external_ids)]
        prefix = len(external_lookup(source_id, "reading", ""))
        return {item["k"][prefix:]: item["target_id"] for item in self.batch_get("lookups", keys)}

    def store_new(self, records: Sequence[dict[str, Any]], source_id: str) -> None:
        """Readings with deterministic ids: a repeated write stores the same thing."""
        self.batch_put("readings", records)
        externals = [{"k": external_lookup(source_id, "reading", r["external_id"]), "target_id": r["id"]}
                     for r in records if r.get("external_id")]
        self.batch_put("lookups", externals)

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
                         pipeline: str | None) -> dict[str, Any]:
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
        return update(self.name("readings"), {"id": reading_id}, expression, "#status = :from",
                      names=names, values=values)

    def waiting(self, stage: str, received_before: str, limit: int = 500) -> list[dict[str, Any]]:
        page = self.query_page("readings", "by_pipeline", "pipeline", stage, limit, None,
                               range_condition=("received_at", "<", received_before))
        return page.items

    def device_readings(self, device_id: str, limit: int, cursor: str | None, status: str | None) -> Page:
        return self.query_page("readings", "by_device", "device_id", device_id, limit, cursor, {"status": status})

    def by_status(self, status: str, limit: int, cursor: str | None) -> Page:
        return self.query_page("readings", "by_status", "status", status, limit, cursor)
