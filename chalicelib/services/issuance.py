"""Issuance: accepted Wh pooled into D-RECs of exactly 1000 Wh, exactly once.

Each transaction moves one pool from the version it read to the next, writes the
D-RECs it cuts and their `DrecIssued` events, and advances each contributing
reading's `pooled_wh` from the value it read. A redelivered message, a crash at any
point or a second handler on the same pool finds a condition false and changes
nothing; the loser re-reads and carries on from what was committed.

Hot pools: one pool item per (owner, characteristics, period) is the unit of
serialisation, and each transaction takes up to READINGS_PER_COMMIT readings and
cuts up to DRECS_PER_COMMIT D-RECs, so one queue batch of a big fleet costs a few
transactions, not one per reading. Sharding a pool (PoolingConfig shards=N) spreads
a very hot owner across N pool items with their own serial runs.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ..domain.certificates import DrecStatus, Issuance, PoolableReading, ReadingPooled
from ..domain.errors import Conflict
from ..domain.issuance.drafts import DREC_WH, DrecDraft
from ..domain.issuance.keys import PoolingConfig, PoolKey, pool_key
from ..domain.issuance.pools import PoolState, add_to_pool
from ..domain.issuance.slices import Slice
from ..domain.ledger import events as ev
from ..domain.stores import TransactionRefused
from ..domain.time import iso, now_utc, parse_utc
from ..telemetry import log_by_correlation
from .ports.certificates import Devices, Drecs

READINGS_PER_COMMIT = 25
DRECS_PER_COMMIT = 15
ATTEMPTS = 10


def drec_record(draft: DrecDraft, issued_at: str) -> dict[str, Any]:
    """The D-REC as published when issued: the draft, active, with its vintage and devices."""
    record = draft.to_dict()
    record.update({"status": DrecStatus.ACTIVE.value, "vintage": record["period_start"][:7],
                   "device_ids": list(draft.device_ids), "issued_at": issued_at})
    return record


def issued_body(draft: DrecDraft) -> dict[str, Any]:
    return {"serial": draft.serial, "owner_account_id": draft.owner_account_id, "pool_id": draft.pool_id,
            "energy_wh": draft.energy_wh, "period_start": draft.to_dict()["period_start"],
            "period_end": draft.to_dict()["period_end"], "country": draft.country, "device_type": draft.device_type,
            "offtaker_type": draft.offtaker_type, "avoided_co2_kg": draft.avoided_co2_kg,
            "contributions_root": draft.contributions_root,
            # [device_id, reading_id, energy_wh, signer, signature]: what a verifier needs to check each
            # contribution's signature against its ReadingAccepted event (signer and signature null if unsigned).
            "contributions": [[c.device_id, c.reading_id, c.energy_wh, c.signer, c.signature]
                              for c in draft.contributions]}


class Issuer:
    def __init__(self, registry: Devices, drecs: Drecs, config: PoolingConfig) -> None:
        self.registry = registry
        self.store = drecs
        self.config = config

    def issue(self, reading_ids: Sequence[str]) -> dict[str, int]:
        counts = {"drecs": 0, "readings": 0}
        for attempt in range(ATTEMPTS):
            left = self._round(list(dict.fromkeys(reading_ids)), counts)
            if not left:
                return counts
            # Another issuer moved the same pool: step aside a random while, growing, so that
            # concurrent issuers of one pool take turns instead of colliding again.
            time.sleep(random.uniform(0, min(2.0, 0.05 * 2 ** attempt)))
        raise RuntimeError("pools kept changing under this batch; it will be redelivered")

    def _round(self, reading_ids: list[str], counts: dict[str, int]) -> bool:
        """One pass over the batch; True when something must be tried again."""
        readings = self.store.poolable(reading_ids)
        if not readings:
            return False
        devices = self.registry.devices(r.device_id for r in readings)
        by_pool: dict[str, tuple[PoolKey, list[tuple[PoolableReading, Slice]]]] = {}
        for reading in sorted(readings, key=lambda r: (r.period_start, r.id)):
            device = devices[reading.device_id]
            whole = _slice(reading, device, reading.judged_energy_wh - reading.pooled_wh)
            key = pool_key(reading.owner_account_id, whole, self.config)
            by_pool.setdefault(key.pool_id, (key, []))[1].append((reading, whole))
        again = False
        for key, entries in by_pool.values():
            again |= self._pool(key, entries, counts)
        return again

    def _pool(self, key: PoolKey, entries: list[tuple[PoolableReading, Slice]], counts: dict[str, int]) -> bool:
        stored, version = self.store.pool(key.pool_id)
        state = PoolState.from_dict(stored) if stored else PoolState.empty(key.pool_id)
        pooled = {r.id: r.pooled_wh for r, _ in entries}
        requests = {r.id: r.correlation_id for r, _ in entries}
        while entries:
            chunk, entries = self._chunk(state, entries, pooled)
            slices = [s for _, s in chunk]
            try:
                next_state, drafts = add_to_pool(state, key, slices, key.owner_account_id)
            except Conflict:
                # The readings were read before another issuer pooled some of them into this pool
                # (the pool was read after): read both again. Fresh reads never conflict, since a
                # reading is cut so that no part of it waits in a remainder while the rest is pooling.
                return True
            issued_at = iso(now_utc())
            step = Issuance(
                pool_id=key.pool_id, from_version=version, state=next_state.to_dict(),
                totals={"owner_account_id": key.owner_account_id, "remainder_wh": next_state.remainder_wh,
                        "accepted_wh": next_state.accepted_wh, "issued_count": next_state.issued_count},
                readings=tuple(ReadingPooled(r.id, pooled[r.id], pooled[r.id] + piece.energy_wh,
                                             pooled[r.id] + piece.energy_wh >= r.judged_energy_wh)
                               for r, piece in chunk),
                drecs=tuple(drec_record(d, issued_at) for d in drafts),
                events=tuple(ev.NewEvent(ev.DREC_ISSUED, d.serial, "operator", issued_at, issued_body(d),
                                         related_ids=(d.owner_account_id,),
                                         correlation_ids=_correlation_ids(d, requests)) for d in drafts))
            try:
                self.store.issue(step)
            except TransactionRefused:
                return True  # someone moved this pool or these readings first: re-read and go on
            for reading, piece in chunk:
                pooled[reading.id] += piece.energy_wh
            state, version = next_state, version + 1
            counts["drecs"] += len(drafts)
            counts["readings"] += len({r.id for r, _ in chunk})
            self.store.link_drecs([d.to_dict() for d in drafts])
            _log_step(key.pool_id, chunk, drafts, requests)
        return False

    @staticmethod
    def _chunk(state: PoolState, entries: list[tuple[PoolableReading, Slice]], pooled: dict[str, int],
               ) -> tuple[list[tuple[PoolableReading, Slice]], list[tuple[PoolableReading, Slice]]]:
        """What fits one transaction; a reading too big for it is cut to complete the last D-REC exactly,
        so none of it stays in the remainder and the rest follows in the next transaction."""
        cap_wh = DRECS_PER_COMMIT * DREC_WH - state.remainder_wh
        chunk: list[tuple[PoolableReading, Slice]] = []
        taken = 0
        rest = list(entries)
        while rest and len(chunk) < READINGS_PER_COMMIT:
            reading, whole = rest[0]
            remaining = reading.judged_energy_wh - pooled[reading.id]
            if taken + remaining <= cap_wh:
                chunk.append((reading, whole.with_energy(remaining)))
                taken += remaining
                rest.pop(0)
                continue
            room = cap_wh - taken
            if room > 0:  # the rest of this reading follows, once pooled_wh has moved by `room`
                chunk.append((reading, whole.with_energy(room)))
            break
        return chunk, rest


def _correlation_ids(draft: DrecDraft, requests: Mapping[str, str | None]) -> tuple[str, ...]:
    """The requests whose readings a D-REC spends."""
    return tuple(sorted({c for c in (requests.get(s.reading_id) for s in draft.contributions) if c}))


def _log_step(pool_id: str, chunk: list[tuple[PoolableReading, Slice]], drafts: Sequence[DrecDraft],
              requests: Mapping[str, str | None]) -> None:
    """Per request: which of its readings went into the pool, with how many Wh, and the D-RECs they helped cut."""
    lines: dict[str | None, dict[str, Any]] = {}
    for reading, piece in chunk:
        line = lines.setdefault(reading.correlation_id, {"pool_id": pool_id, "reading_ids": [], "pooled_wh": 0,
                                                         "serials": []})
        line["reading_ids"].append(reading.id)
        line["pooled_wh"] += piece.energy_wh
    for draft in drafts:
        for correlation_id in _correlation_ids(draft, requests):
            lines.setdefault(correlation_id, {"pool_id": pool_id, "reading_ids": [], "pooled_wh": 0, "serials": []})
            lines[correlation_id]["serials"].append(draft.serial)
    log_by_correlation("readings pooled", lines)


def _slice(reading: PoolableReading, device: Mapping[str, Any], energy_wh: int) -> Slice:
    return Slice(device_id=reading.device_id, reading_id=reading.id, energy_wh=energy_wh,
                 period_start=parse_utc(reading.period_start), period_end=parse_utc(reading.period_end),
                 country=device["country"], device_type=device["device_type"],
                 offtaker_type=device["offtaker_type"], source_id=reading.source_id,
                 signature=reading.signature, grid_connected=bool(device.get("grid_connected")),
                 signer=reading.signer)
