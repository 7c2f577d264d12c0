"""Pools, D-RECs and their links in DynamoDB."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.certificates import Drec, DrecStatus, Issuance, PoolableReading
from ..domain.counts import issued_in
from ..domain.errors import Conflict
from ..domain.index_keys import key_attribute, with_index_keys
from ..domain.ledger.events import Event
from ..domain.ledger.shards import pool_key
from ..domain.stores import MAX_ATOMIC_ITEMS, Page, TransactionRefused
from .counters import CounterReads, Tally, stats_shard
from .dynamo import from_item, put, to_item, update

# Rounds of linking a batch of readings that lost only races with other writes.
LINK_ATTEMPTS = 5


def device_drecs_key(device_id: str) -> str:
    """The counter item of what a device's readings went into: `drecs` (D-RECs) and `energy_wh`."""
    return f"device_drecs#{device_id}"


def drec_from_item(item: Mapping[str, Any]) -> Drec:
    """The record of a stored D-REC (or of the projection of one a query asked for)."""
    return Drec(serial=item["serial"], owner_account_id=item.get("owner_account_id", ""),
                status=DrecStatus(item.get("status", DrecStatus.ACTIVE.value)),
                period_start=item.get("period_start", ""), country=item.get("country", ""),
                device_type=item.get("device_type", ""), offtaker_type=item.get("offtaker_type", ""),
                vintage=item.get("vintage", ""), device_ids=tuple(item.get("device_ids", ())),
                locked_by=item.get("locked_by"), document=dict(item))


def issued(step: Issuance) -> Tally:
    """What an issuing step adds to the counters: the Wh it pooled, and its D-RECs (totals, month, holder)."""
    shard = stats_shard(step.pool_id)
    counts = Tally().add(shard, "accepted_wh", sum(r.to_wh - r.from_wh for r in step.readings))
    for drec in step.drecs:
        counts.add(shard, "drecs_issued").add(shard, "drecs_active").add(shard, issued_in(str(drec.get("vintage", ""))))
        counts.hold(drec["owner_account_id"], drec, DrecStatus.ACTIVE.value, 1)
    return counts


class DynamoDrecs(CounterReads):
    def pool(self, pool_id: str) -> tuple[dict[str, Any] | None, int]:
        item = self.get("pools", id=pool_id)
        if not item:
            return None, 0
        return json.loads(item["state_json"]), int(item["version"])

    def poolable(self, reading_ids: Sequence[str]) -> list[PoolableReading]:
        """The readings of `reading_ids` the validator accepted and that still wait to be pooled."""
        # Only what the validator judged is pooled: `judged_energy_wh`, written with the verdict.
        items = [r for r in self.batch_get("readings", [{"id": i} for i in reading_ids])
                 if r.get("pipeline") == "pooling" and r.get("status") == "accepted"
                 and r.get("judged_energy_wh") is not None]
        return [PoolableReading(id=r["id"], device_id=r["device_id"], owner_account_id=r["owner_account_id"],
                                period_start=r["period_start"], period_end=r["period_end"],
                                source_id=r["source_id"], judged_energy_wh=int(r["judged_energy_wh"]),
                                pooled_wh=int(r.get("pooled_wh", 0)), signature=r.get("signature"),
                                signer=r.get("signer"), correlation_id=r.get("correlation_id")) for r in items]

    def issue(self, step: Issuance) -> list[Event]:
        """Commit one issuing step atomically; TransactionRefused when the pool or a reading moved first."""
        items = [self.pool_update(step.pool_id, step.from_version, dict(step.state), dict(step.totals))]
        items += [self.reading_pooled(r.reading_id, r.from_wh, r.to_wh, r.done) for r in step.readings]
        items += [self.drec_put({**d, "owner_status": f"{d['owner_account_id']}#{DrecStatus.ACTIVE.value}",
                                 "linking": "pending"}) for d in step.drecs]
        # An issuance's events go to its pool's shard (`domain.ledger.shards`).
        return self.commit(items, list(step.events), counts=self.tally(issued(step)), shard_key=pool_key(step.pool_id))

    def pool_totals(self) -> list[tuple[str, int, int]]:
        """(pool id, accepted Wh, D-RECs issued) of every pool (a scan: for tests and maintenance, not requests)."""
        request: dict[str, Any] = {"TableName": self.name("pools")}
        found = []
        while True:
            response = self.client.scan(**request)
            found += [from_item(i) for i in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return [(i["id"], int(i.get("accepted_wh", 0)), int(i.get("issued_count", 0))) for i in found]
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def pool_update(self, pool_id: str, old_version: int, state: dict[str, Any], summary: dict[str, Any]) -> dict:
        condition = "attribute_not_exists(version)" if old_version == 0 else "version = :old"
        values: dict[str, Any] = {":new": old_version + 1, ":state": json.dumps(state, separators=(",", ":"))}
        sets = ["version = :new", "state_json = :state"]
        for i, (name, value) in enumerate(summary.items()):
            values[f":s{i}"] = value
            sets.append(f"{name} = :s{i}")
        if old_version:
            values[":old"] = old_version
        return update(self.name("pools"), {"id": pool_id}, "SET " + ", ".join(sets), condition, values=values)

    def reading_pooled(self, reading_id: str, old_pooled_wh: int, new_pooled_wh: int, done: bool) -> dict:
        """Move a reading's pooled Wh forward, only from where it was: a replay changes nothing."""
        condition = "#p = :pooling AND (attribute_not_exists(pooled_wh) OR pooled_wh = :old)" if old_pooled_wh == 0 \
            else "#p = :pooling AND pooled_wh = :old"
        expression = "SET pooled_wh = :new" + (" REMOVE #p, #pk" if done else "")
        names = {"#p": "pipeline"} | ({"#pk": key_attribute("pipeline")} if done else {})
        return update(self.name("readings"), {"id": reading_id}, expression, condition, names=names,
                      values={":pooling": "pooling", ":old": old_pooled_wh, ":new": new_pooled_wh})

    def drec_put(self, record: dict[str, Any]) -> dict[str, Any]:
        return put(self.name("drecs"), with_index_keys("drecs", record), "attribute_not_exists(serial)")

    def link_drecs(self, drecs: Sequence[Mapping[str, Any]]) -> None:
        """Write the (device, serial) and (reading, serial) links of issued D-RECs and add each serial to
        its readings' `drec_serials`, then clear their `linking` mark; a crash in between leaves the mark
        for the sweep (`pending_links`), and doing it again changes nothing."""
        self.batch_put("drec_links", [{"subject_id": s, "serial": serial} for s, serial in
                                      dict.fromkeys((c["reading_id"], d["serial"]) for d in drecs
                                                    for c in d["contributions"])])
        self._link_devices(drecs)
        spenders: dict[str, set[str]] = {}
        for drec in drecs:
            for c in drec["contributions"]:
                spenders.setdefault(c["reading_id"], set()).add(drec["serial"])
        self.add_spenders(spenders)
        for drec in drecs:
            self.client.update_item(TableName=self.name("drecs"), Key=to_item({"serial": drec["serial"]}),
                                    UpdateExpression="REMOVE linking, #lk",
                                    ExpressionAttributeNames={"#lk": key_attribute("linking")})

    def _link_devices(self, drecs: Sequence[Mapping[str, Any]]) -> None:
        """Each (device, serial) link, and the device's issued tally (`device_drecs#<device>`: D-RECs its Wh
        went into, and those Wh) in the same transaction: the link is put only where it is not yet, so
        linking again after a crash counts nothing twice. Up to 100 items a transaction, a device's
        tally once in each; a transaction refused (some of its links were written already) is done
        again one link at a time."""
        shares: dict[tuple[str, str], int] = {}
        for drec in drecs:
            for c in drec["contributions"]:
                pair = (c["device_id"], drec["serial"])
                shares[pair] = shares.get(pair, 0) + int(c["energy_wh"])
        chunks: list[dict[tuple[str, str], int]] = [{}]
        for pair, wh in shares.items():
            chunk = chunks[-1]
            if len(chunk) + 1 + len({d for d, _ in chunk} | {pair[0]}) > MAX_ATOMIC_ITEMS:
                chunks.append(chunk := {})
            chunk[pair] = wh
        for chunk in chunks:
            if not chunk:
                continue
            try:
                self.transact(self._device_links(chunk))
            except TransactionRefused:
                for pair, wh in chunk.items():
                    try:
                        self.transact(self._device_links({pair: wh}))
                    except TransactionRefused as refused:
                        if refused.reasons[0] != "ConditionalCheckFailed":
                            raise Conflict("a device's issued tally kept changing while its D-RECs were linked; "
                                           "the sweep links them again") from refused

    def _device_links(self, shares: Mapping[tuple[str, str], int]) -> list[dict[str, Any]]:
        tallies: dict[str, tuple[int, int]] = {}
        for (device_id, _), wh in shares.items():
            count, total = tallies.get(device_id, (0, 0))
            tallies[device_id] = (count + 1, total + wh)
        return ([put(self.name("drec_links"), {"subject_id": device_id, "serial": serial, "energy_wh": wh},
                     "attribute_not_exists(subject_id)") for (device_id, serial), wh in shares.items()]
                + [update(self.name("counters"), {"name": device_drecs_key(device_id)}, "ADD drecs :n, energy_wh :wh",
                          values={":n": count, ":wh": wh}) for device_id, (count, wh) in tallies.items()])

    def issued_from(self, device_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(D-RECs, Wh in them) issued from each device's readings, from its tally: one batch read."""
        found = self.batch_get("counters", [{"name": device_drecs_key(d)} for d in dict.fromkeys(device_ids)])
        return {i["name"].split("#", 1)[1]: (int(i.get("drecs", 0)), int(i.get("energy_wh", 0))) for i in found}

    def add_spenders(self, spenders: Mapping[str, set[str]]) -> None:
        """Add serials to readings' `drec_serials` (a string set: adding one twice keeps one), up to 100
        readings a request. Not atomic across readings and need not be: each update stands alone, and a
        reading that is not there (never the case for one a D-REC spends) is left alone, not created."""
        pending = [update(self.name("readings"), {"id": reading_id}, "ADD drec_serials :s", "attribute_exists(id)",
                          values={":s": set(serials)}) for reading_id, serials in sorted(spenders.items())]
        for _ in range(LINK_ATTEMPTS):
            if not pending:
                return
            retry: list[dict[str, Any]] = []
            for start in range(0, len(pending), MAX_ATOMIC_ITEMS):
                chunk = pending[start:start + MAX_ATOMIC_ITEMS]
                try:
                    self.transact(chunk)
                except TransactionRefused as refused:
                    # A missing reading is dropped; the rest lost a race with another write: again.
                    retry += [item for item, code in zip(chunk, refused.reasons) if code != "ConditionalCheckFailed"]
            pending = retry
        if pending:
            raise Conflict("readings kept changing while their D-RECs were linked; the sweep links them again")

    def pending_links(self, limit: int = 200) -> list[dict[str, Any]]:
        """About `limit` D-RECs still to link, from every shard of the index alike (`query_every_shard`)."""
        return self.query_every_shard("drecs", "by_linking", "linking", "pending", limit)

    def serials_of(self, subject_id: str, limit: int = 1000) -> list[str]:
        return [i["serial"] for i in self.query_page("drec_links", None, "subject_id", subject_id, limit, None).items]

    def drec(self, serial: str) -> Drec | None:
        item = self.get("drecs", serial=serial)
        return drec_from_item(item) if item else None

    def drecs(self, serials: Sequence[str]) -> list[dict[str, Any]]:
        return self.batch_get("drecs", [{"serial": s} for s in dict.fromkeys(serials)])

    def list_drecs(self, limit: int, cursor: str | None, filters: dict[str, Any],
                   vintage: tuple[str | None, str | None]) -> Page:
        """By the most selective index for the filters given; the rest filter server-side."""
        owner, status, device_id = filters.get("owner_account_id"), filters.get("status"), filters.get("device_id")
        rest = {k: v for k, v in filters.items() if v is not None and k not in ("device_id",)}
        between = ("vintage", vintage[0], vintage[1])
        if device_id:
            links = self.query_page("drec_links", None, "subject_id", device_id, limit, cursor)
            items = [d for d in self.drecs([i["serial"] for i in links.items])
                     if all(d.get(k) == v for k, v in rest.items())
                     and (vintage[0] is None or d["vintage"] >= vintage[0])
                     and (vintage[1] is None or d["vintage"] <= vintage[1])]
            return Page(sorted(items, key=lambda d: d["serial"]), links.next_cursor)
        if owner and status:
            rest.pop("owner_account_id"), rest.pop("status")
            return self._held(self.query_page("drecs", "by_owner_status", "owner_status", f"{owner}#{status}",
                                              limit, cursor, rest, between=between), owner, status)
        if owner:
            rest.pop("owner_account_id")
            return self._held(self.query_page("drecs", "by_owner", "owner_account_id", owner, limit, cursor,
                                              rest, between=between), owner, None)
        for index, field in (("by_country", "country"), ("by_device_type", "device_type"),
                             ("by_offtaker_type", "offtaker_type"), ("by_status", "status")):
            if rest.get(field) is not None:
                value = rest.pop(field)
                return self.query_page("drecs", index, field, value, limit, cursor, rest, between=between)
        return self.query_page("drecs", "by_status", "status", DrecStatus.ACTIVE.value, limit, cursor, rest,
                               between=between)

    def _held(self, page: Page, owner: str, status: str | None) -> Page:
        """A page of an owner index (it projects the filters' attributes, not whole D-RECs), then its D-RECs
        by serial; one that changed hands or status since the index was written (it lags the table a
        little) is left out: the page may be short."""
        found = {d["serial"]: d for d in self.drecs([i["serial"] for i in page.items])}
        return Page([found[i["serial"]] for i in page.items if i["serial"] in found
                     and found[i["serial"]].get("owner_account_id") == owner
                     and (status is None or found[i["serial"]].get("status") == status)], page.next_cursor)
