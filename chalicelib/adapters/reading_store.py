"""Readings and per-device state in DynamoDB: items translated to and from the records of `domain.readings`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..domain.counts import readings_in
from ..domain.errors import Conflict
from ..domain.index_keys import index_key, key_attribute, with_index_keys
from ..domain.ledger.events import READING_ACCEPTED, Event, event_id_for
from ..domain.ledger.shards import device_key
from ..domain.readings import (
    DeviceState,
    DeviceUpdate,
    DeviceWrites,
    PeerContribution,
    ReadingContent,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
)
from ..domain.stores import MAX_ATOMIC_ITEMS, TransactionRefused
from ..domain.twin.peers import PeerHistogram
from .counters import Tally, stats_shard
from .dynamo import DynamoBase, check, from_item, put, to_item, update
from .registry_store import external_lookup

# Rounds of a transaction that lost only to concurrent transactions (no condition failed).
WRITE_ATTEMPTS = 5
# Items per verdict transaction stay under DynamoDB's 100 (state + verdict + event + links).
MAX_ITEMS_PER_COMMIT = 90
NUMBERS = ("expected_wh", "sigma_wh", "ceiling_wh", "clear_sky_wh", "ratio", "peer_count", "peer_median",
           "peer_spread", "peer_bin", "peer_diffuse_bin", "diffuse_ratio")
#: A period's histogram is kept this long after the period (DynamoDB TTL attribute `expires_at`): readings
#: arrive at most 31 days late in practice, and waiting ones are judged within hours.
PEER_HISTOGRAM_TTL_S = 62 * 86400


def peer_key(cell: str, period_start_s: int, duration_s: int, shard: int) -> str:
    return f"{cell}#{period_start_s}#{duration_s}#{shard}"


def reporting_key(cell: str) -> str:
    return f"{cell}#reporting"


def reading_from_item(item: dict[str, Any]) -> ReceivedReading:
    stage = item.get("pipeline")
    return ReceivedReading(
        reading_id=item["id"], device_id=item["device_id"], owner_account_id=item.get("owner_account_id", ""),
        period_start=item["period_start"], period_end=item["period_end"], energy_wh=int(item["energy_wh"]),
        source_id=item.get("source_id", ""), status=ReadingStatus(item["status"]),
        stage=Stage(stage) if stage else None, received_at=item.get("received_at"),
        external_id=item.get("external_id"), signer=item.get("signer"), signature=item.get("signature"),
        derived=bool(item.get("derived", False)), payment=item.get("payment"), judged_at=item.get("judged_at"),
        judged_energy_wh=None if item.get("judged_energy_wh") is None else int(item["judged_energy_wh"]),
        rule=item.get("rule"), reason=item.get("reason"),
        numbers={k: item[k] for k in NUMBERS if k in item}, review=item.get("review"),
        pooled_wh=int(item.get("pooled_wh", 0)),
        accepted_event_id=accepted_event_id_of(item),
        drec_serials=frozenset(item.get("drec_serials") or ()),
        correlation_id=item.get("correlation_id"),
    )


def reading_to_item(reading: ReceivedReading) -> dict[str, Any]:
    """The stored item (None values are not stored), with its write-sharded index keys. `accepted_event_id`
    and `drec_serials` are written by the verdict and by the linking of D-RECs, never with the received reading."""
    return with_index_keys("readings", {
        "id": reading.reading_id, "device_id": reading.device_id, "owner_account_id": reading.owner_account_id,
        "period_start": reading.period_start, "period_end": reading.period_end, "energy_wh": reading.energy_wh,
        "external_id": reading.external_id, "status": reading.status.value,
        "pipeline": reading.stage.value if reading.stage else None, "source_id": reading.source_id,
        "signer": reading.signer, "signature": reading.signature, "derived": reading.derived,
        "payment": dict(reading.payment) if reading.payment is not None else None,
        "received_at": reading.received_at, "judged_at": reading.judged_at,
        "judged_energy_wh": reading.judged_energy_wh, "rule": reading.rule, "reason": reading.reason,
        **reading.numbers, "review": dict(reading.review) if reading.review is not None else None,
        "pooled_wh": reading.pooled_wh or None, "correlation_id": reading.correlation_id,
    })


def state_from_item(item: dict[str, Any]) -> DeviceState:
    return DeviceState(item["device_id"], int(item.get("version", 0)),
                       tuple((int(r[0]), int(r[1])) for r in item.get("ranges", [])), item.get("history") or {})


def accepted_event_id_of(item: dict[str, Any]) -> str | None:
    if item.get("accepted_event_id") is not None:
        return str(item["accepted_event_id"])
    # Written before the sequence was sharded: a seq of the one sequence, now shard 0.
    return None if item.get("accepted_event_seq") is None else event_id_for(0, int(item["accepted_event_seq"]))


def accepted_ids(events: Sequence[Event]) -> dict[str, str]:
    """reading id -> id of its `ReadingAccepted` event, among `events` (stored, with their shard and seq)."""
    return {e.subject_id: e.event_id for e in events if e.type == READING_ACCEPTED}


def transaction_size(group: DeviceWrites) -> int:
    peers = len({(p.cell, p.period_start_s, p.duration_s, p.shard) for p in group.peers})
    return ((group.state is not None) + len(group.transitions) + sum(2 + len(e.related_ids) for e in group.events)
            + peers + (group.new_cell is not None) + (group.device is not None) + 1)


def pack(groups: Sequence[DeviceWrites], shard: Callable[[str], int] = lambda _: 0) -> list[list[DeviceWrites]]:
    """Device groups packed into transactions of at most MAX_ITEMS_PER_COMMIT items, each of devices of
    one event shard (`shard(device_id)`): a transaction's events take numbers from one shard's counter."""
    batches: list[list[DeviceWrites]] = []
    by_shard: dict[int, list[DeviceWrites]] = {}
    for group in groups:
        by_shard.setdefault(shard(group.device_id), []).append(group)
    for same_shard in by_shard.values():
        current: list[DeviceWrites] = []
        used = 0
        for group in same_shard:
            if current and used + transaction_size(group) > MAX_ITEMS_PER_COMMIT:
                batches.append(current)
                current, used = [], 0
            current.append(group)
            used += transaction_size(group)
        if current:
            batches.append(current)
    return batches


class DynamoReadings(DynamoBase):
    def readings(self, reading_ids: Sequence[str]) -> dict[str, ReceivedReading]:
        unique = list(dict.fromkeys(reading_ids))
        return {item["id"]: reading_from_item(item)
                for item in self.batch_get("readings", [{"id": i} for i in unique])}

    def contents(self, reading_ids: Sequence[str]) -> dict[str, ReadingContent]:
        """Only what makes a reading the same reading (id, device, period, energy): the intake compares
        these on every resubmission, and whole items cost far more to read back."""
        table = self.name("readings")
        names = {f"#a{i}": a for i, a in enumerate(("id", "device_id", "period_start", "period_end", "energy_wh"))}
        unique = list(dict.fromkeys(reading_ids))
        found: dict[str, ReadingContent] = {}
        for start in range(0, len(unique), 100):
            pending: dict[str, Any] = {table: {"Keys": [to_item({"id": i}) for i in unique[start:start + 100]],
                                               "ConsistentRead": True, "ProjectionExpression": ", ".join(names),
                                               "ExpressionAttributeNames": names}}
            while pending:
                response = self.client.batch_get_item(RequestItems=pending)
                found.update((item["id"], ReadingContent(item["id"], item["device_id"], item["period_start"],
                                                         item["period_end"], int(item["energy_wh"])))
                             for item in map(from_item, response["Responses"].get(table, [])))
                pending = response.get("UnprocessedKeys") or {}
        return found

    def external_targets(self, source_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        keys = [{"k": external_lookup(source_id, "reading", e)} for e in dict.fromkeys(external_ids)]
        prefix = len(external_lookup(source_id, "reading", ""))
        return {item["k"][prefix:]: item["target_id"] for item in self.batch_get("lookups", keys)}

    def store_new(self, readings: Sequence[ReceivedReading], source_id: str) -> list[str]:
        """Write readings that are not there yet, each with its external-id lookup, in small transactions.

        A received reading never changes: each put holds only if no reading has that id (and the
        external id names no other reading), so a second writer can never replace what the validator
        is judging. Returns the ids refused because something was already there; the caller re-reads
        and compares them.
        """
        groups: list[tuple[str, list[dict[str, Any]]]] = []
        for record in map(reading_to_item, readings):
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
            # One item of each transaction is its counter update.
            if sum(len(g) for _, g in chunk) + len(entry[1]) > MAX_ATOMIC_ITEMS - 1:
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
            counts = Tally()
            for _, group in pending:
                shard = stats_shard(pending[0][0])
                counts.add(shard, "readings").add(shard, readings_in(group[0]["Put"]["Item"]["status"]["S"]))
            try:
                self.transact([item for _, group in pending for item in group]
                              + counts.updates(self.name("counters")))
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

    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        keys = [{"device_id": d} for d in dict.fromkeys(device_ids)]
        return {item["device_id"]: state_from_item(item) for item in self.batch_get("device_state", keys)}

    def commit_verdicts(self, groups: Sequence[DeviceWrites]) -> list[DeviceWrites]:
        """Write each device's state change, transitions and events, packed into as few transactions as fit.

        A pack is written whole or not at all. When a device's condition fails (another writer changed its
        state or a reading since it was read), that device is set aside and the pack is written again
        without it: returns the groups set aside, for the caller to read again. An accepted reading records
        the id of its `ReadingAccepted` event in the same transaction. A pack holds devices of one event
        shard only (`domain.ledger.shards`: a device's events stay in its shard).
        """
        refused: list[DeviceWrites] = []
        for batch in pack(groups, lambda device_id: self.shard_for(device_key(device_id))):
            pending = list(batch)
            while pending:
                spans: list[tuple[int, int]] = []  # each group's items in the transaction
                try:
                    self.commit(partial(self._writes, pending, spans), [e for group in pending for e in group.events],
                                counts=self._counts(pending), shard_key=device_key(pending[0].device_id))
                    break
                except TransactionRefused as exc:
                    failed = {g for g, (start, end) in enumerate(spans) if any(exc.reasons[start:end])}
                    if not failed:  # nothing names a device: the whole pack goes round again
                        refused += pending
                        break
                    refused += [pending[g] for g in sorted(failed)]
                    pending = [group for g, group in enumerate(pending) if g not in failed]
        return refused

    def _counts(self, batch: Sequence[DeviceWrites]) -> list[dict[str, Any]]:
        """The readings-by-status statistics a pack moves, on the statistics shard of its first device."""
        counts = Tally()
        shard = stats_shard(batch[0].device_id)
        for t in (t for group in batch for t in group.transitions if t.status is not t.from_status):
            counts.add(shard, readings_in(t.from_status.value), -1).add(shard, readings_in(t.status.value))
        return counts.updates(self.name("counters"))

    def _writes(self, batch: Sequence[DeviceWrites], spans: list[tuple[int, int]],
                stored: list[Event]) -> list[dict[str, Any]]:
        """The pack's items, given its events as they will be stored; `spans` gets each group's item range."""
        accepted = accepted_ids(stored)
        items: list[dict[str, Any]] = []
        spans.clear()
        for group in batch:
            start = len(items)
            items += [self._state_update(group.state)] if group.state else []
            items += [self._transition(t, accepted.get(t.reading_id)) for t in group.transitions]
            items += [self._device_update(group.device)] if group.device else []
            spans.append((start, len(items)))
        items += self._peer_updates([p for group in batch for p in group.peers])
        cells = Counter(group.new_cell for group in batch if group.new_cell)
        items += [update(self.name("peers"), {"key": reporting_key(cell)}, "ADD devices :n", values={":n": n})
                  for cell, n in cells.items()]
        return items

    def _peer_updates(self, contributions: Sequence[PeerContribution]) -> list[dict[str, Any]]:
        """One update per histogram item of the pack (a transaction may name an item once): ADD to its bins."""
        bins: dict[tuple[str, int, int, int], Counter[str]] = {}
        for p in contributions:
            counts = bins.setdefault((p.cell, p.period_start_s, p.duration_s, p.shard), Counter())
            # b: a declared plane's ratio, u: an assumed plane's, d: the all-diffuse sky's
            counts[f"{'b' if p.orientation_known else 'u'}{p.ratio_bin}"] += 1
            if p.diffuse_bin is not None:
                counts[f"d{p.diffuse_bin}"] += 1
        items = []
        for (cell, start, duration, shard), counts in bins.items():
            adds = ", ".join(f"{b} :{b}" for b in counts)
            values: dict[str, Any] = {f":{b}": n for b, n in counts.items()}
            values[":n"] = sum(n for b, n in counts.items() if b[0] in "bu")
            values[":expires"] = start + duration + PEER_HISTOGRAM_TTL_S
            items.append(update(self.name("peers"), {"key": peer_key(cell, start, duration, shard)},
                                f"ADD n :n, {adds} SET expires_at = :expires", values=values))
        return items

    def _device_update(self, change: DeviceUpdate) -> dict[str, Any]:
        """A review opened (only on an active device) and/or the owner's maintenance note, on the registry item;
        or only a check that the device is still under review (its readings were held for it)."""
        sets: list[str] = []
        removes: list[str] = []
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        condition = "attribute_exists(id)"
        if change.still_under_review:
            names["#status"] = "status"
            values[":held_by"] = "under_review"
            condition += " AND #status = :held_by"
        if change.review is not None:
            names["#status"] = "status"
            values.update({":under": "under_review", ":active": "active", ":review": dict(change.review)})
            sets += ["#status = :under", "review = :review"]
            condition += " AND #status = :active"
        if change.maintenance_changed:
            if change.maintenance is None:
                removes.append("maintenance")
            else:
                values[":maintenance"] = dict(change.maintenance)
                sets.append("maintenance = :maintenance")
        expression = (f"SET {', '.join(sets)}" if sets else "") + (f" REMOVE {', '.join(removes)}" if removes else "")
        if not expression:
            return check(self.name("devices"), {"id": change.device_id}, condition, names=names, values=values)
        return update(self.name("devices"), {"id": change.device_id}, expression.strip(), condition,
                      names=names or None, values=values or None)

    def peer_histograms(self, periods: Sequence[tuple[str, int, int]],
                        shards: int) -> dict[tuple[str, int, int], PeerHistogram]:
        """Each (cell, period start, duration)'s histogram, its shards merged; periods nobody reported are absent."""
        keys = [{"key": peer_key(c, s, d, shard)} for c, s, d in dict.fromkeys(periods) for shard in range(shards)]
        found: dict[tuple[str, int, int], PeerHistogram] = {}
        for item in self.batch_get("peers", keys) if keys else []:
            cell, start, duration, _ = item["key"].split("#")
            plane = {int(k[1:]): int(v) for k, v in item.items() if k[0] == "b" and k[1:].isdigit() and int(v) > 0}
            diffuse = {int(k[1:]): int(v) for k, v in item.items() if k[0] == "d" and k[1:].isdigit() and int(v) > 0}
            assumed = {int(k[1:]): int(v) for k, v in item.items() if k[0] == "u" and k[1:].isdigit() and int(v) > 0}
            period = (cell, int(start), int(duration))
            found[period] = found.get(period, PeerHistogram()).merged(PeerHistogram(plane, diffuse, assumed))
        return found

    def reporting_devices(self, cells: Sequence[str]) -> dict[str, int]:
        keys = [{"key": reporting_key(c)} for c in dict.fromkeys(cells)]
        return {item["key"].split("#")[0]: int(item.get("devices", 0))
                for item in (self.batch_get("peers", keys) if keys else [])}

    def _state_update(self, change: StateChange) -> dict[str, Any]:
        """Write a device's ranges and history only if nobody changed them since they were read."""
        old_version = change.old_version
        condition = "attribute_not_exists(version)" if old_version == 0 else "version = :old"
        values: dict[str, Any] = {":new": old_version + 1, ":ranges": [list(r) for r in change.ranges],
                                  ":history": dict(change.history)}
        if old_version:
            values[":old"] = old_version
        return update(self.name("device_state"), {"device_id": change.device_id},
                      "SET version = :new, ranges = :ranges, history = :history", condition, values=values)

    def _transition(self, t: Transition, accepted_event_id: str | None = None) -> dict[str, Any]:
        """A verdict, written only if the reading is still in `from_status` and (given `judged_energy_wh`)
        still holds the energy that was judged; with the id of its `ReadingAccepted` event, if any."""
        fields: dict[str, Any] = {"status": t.status.value, "rule": t.rule, "reason": t.reason,
                                  "judged_at": t.judged_at, "judged_energy_wh": t.judged_energy_wh, **t.numbers,
                                  "review": dict(t.review) if t.review is not None else None,
                                  "accepted_event_id": accepted_event_id}
        fields = {k: v for k, v in fields.items() if v is not None}
        names = {f"#f{i}": name for i, name in enumerate(fields)}
        values = {f":f{i}": value for i, value in enumerate(fields.values())}
        sets = [f"#f{i} = :f{i}" for i in range(len(fields))]
        values[":from"] = t.from_status.value
        names["#status"] = "status"
        # The index keys move with the plain attributes they shard (`domain.index_keys`).
        names["#sk"], values[":sk"] = key_attribute("status"), index_key(t.status.value, t.reading_id)
        expression = "SET " + ", ".join(sets) + ", #sk = :sk"
        names["#p"], names["#pk"] = "pipeline", key_attribute("pipeline")
        if t.stage:
            values[":p"], values[":pk"] = t.stage.value, index_key(t.stage.value, t.reading_id)
            expression += ", #p = :p, #pk = :pk"
        else:
            expression += " REMOVE #p, #pk"
        condition = "#status = :from"
        if t.judged_energy_wh is not None:
            names["#e"] = "energy_wh"
            values[":judged"] = t.judged_energy_wh
            condition += " AND #e = :judged"
        return update(self.name("readings"), {"id": t.reading_id}, expression, condition,
                      names=names, values=values)

    def serials_of(self, reading_id: str, limit: int = 1000) -> list[str]:
        return [i["serial"] for i in self.query_page("drec_links", None, "subject_id", reading_id, limit, None).items]

    def waiting(self, stage: str, received_before: str, limit: int = 500) -> list[dict[str, Any]]:
        """Readings waiting at `stage` since before `received_before`: about `limit`, the oldest of every
        shard of the index alike, so each sweep reaches every shard (`query_every_shard`)."""
        return self.query_every_shard("readings", "by_pipeline", "pipeline", stage, limit,
                                      range_condition=("received_at", "<", received_before))

    def device_readings(self, device_id: str, limit: int, cursor: str | None,
                        status: ReadingStatus | None) -> tuple[list[ReceivedReading], str | None]:
        page = self.query_page("readings", "by_device", "device_id", device_id, limit, cursor,
                               {"status": status.value if status else None})
        found = {i["id"]: i for i in self.batch_get("readings", [{"id": i["id"]} for i in page.items])}
        return ([reading_from_item(found[i["id"]]) for i in page.items
                 if i["id"] in found and (status is None or found[i["id"]]["status"] == status.value)],
                page.next_cursor)

    def by_status(self, status: ReadingStatus, limit: int,
                  cursor: str | None) -> tuple[list[ReceivedReading], str | None]:
        """A page of the index (keys only), then its readings by id; one that moved on to another status
        since the index was written (it lags the table a little) is left out: the page may be short."""
        page = self.query_page("readings", "by_status", "status", status.value, limit, cursor)
        found = {i["id"]: i for i in self.batch_get("readings", [{"id": i["id"]} for i in page.items])}
        return ([reading_from_item(found[i["id"]]) for i in page.items
                 if i["id"] in found and found[i["id"]]["status"] == status.value], page.next_cursor)

    def return_to_validation(self, change: StateChange | None, reading_ids: Sequence[str], rule: str,
                             review: dict[str, Any]) -> bool:
        """Held readings back to the validator with their device's released periods, in one transaction.

        Each reading moves only if it is still flagged under `rule` (the validator or another operator
        request may have moved it meanwhile); its held verdict (rule, reason) is removed so the validator
        judges it afresh.
        """
        items = [self._state_update(change)] if change else []
        # Its figures stay until the validator writes new ones: `peer_bin` says it already counts among its
        # neighbours (a held reading that first waited for them), so it is not counted twice.
        names = {"#status": "status", "#p": "pipeline", "#rule": "rule", "#reason": "reason", "#review": "review",
                 "#at": "judged_at", "#wh": "judged_energy_wh", "#sk": key_attribute("status"),
                 "#pk": key_attribute("pipeline")}
        expression = ("SET #status = :queued, #p = :queued, #sk = :sk, #pk = :sk, #review = :review "
                      "REMOVE #rule, #reason, #at, #wh")
        values = {":queued": ReadingStatus.QUEUED.value, ":flagged": ReadingStatus.FLAGGED.value, ":rule": rule,
                  ":review": review}
        # Status and stage are both "queued": one index key serves both attributes.
        items += [update(self.name("readings"), {"id": reading_id}, expression,
                         "#status = :flagged AND #rule = :rule", names=names,
                         values={**values, ":sk": index_key(ReadingStatus.QUEUED.value, reading_id)})
                  for reading_id in dict.fromkeys(reading_ids)]
        moved = len(items) - (change is not None)
        counts = Tally()
        if moved:
            shard = stats_shard(change.device_id if change else reading_ids[0])
            counts.add(shard, readings_in(ReadingStatus.FLAGGED.value), -moved)
            counts.add(shard, readings_in(ReadingStatus.QUEUED.value), moved)
        try:
            self.commit(items, [], counts=counts.updates(self.name("counters")))
        except TransactionRefused:
            return False
        return True
