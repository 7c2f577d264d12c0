"""Pulling due sources: lease, fetch pages, take them in through the intake, move the cursor, record the run.

Per page: the partner's items go through the same intake as `POST /readings` (the source as the
principal, the same signature rules, idempotent by device and period), and only once they are stored
and queued is the cursor saved. A puller that dies between the two leaves the old cursor: the next
run fetches that page again, and the intake answers the same reading ids without queueing them again.
A page that cannot be had (HTTP error, timeout, not JSON) ends the run `failed`; the source is tried
again after every_minutes × 2^failures (capped, jittered), and the cursor stays before that page.
"""

from __future__ import annotations

import secrets as tokens
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ..domain.model import Principal, PrincipalKind
from ..domain.pull import (
    Lease,
    PartnerFailed,
    PullConfig,
    RunRecord,
    backoff_minutes,
    mapped_reading,
    page_url,
    read_page,
    stamp,
)
from ..domain.time import now_utc
from ..telemetry import correlated, logger, publish
from .intake import Intake
from .ports.pull import Fetch, PullStore, Secrets
from .ports.registry import RegistryStore


@dataclass(frozen=True)
class PullLimits:
    """A run's budget (pages, seconds), how long a lease lasts, and how many sources one tick takes."""

    max_pages: int = 50
    run_s: float = 120.0
    lease_s: float = 300.0  # longer than a run plus one slow page, so a live run never loses its lease
    sources_per_tick: int = 20
    tick_s: float = 240.0  # a tick stops taking sources after this (Lambda's timeout is 300 s)


def new_run_id(moment: datetime) -> str:
    """Sorts by start time, so a source's runs list newest first by key."""
    return f"run-{moment.strftime('%Y%m%dT%H%M%S%f')}-{tokens.token_hex(3)}"


@dataclass
class Puller:
    store: PullStore
    secrets: Secrets
    registry: RegistryStore
    make_intake: Callable[[], Intake]  # a fresh intake per run; built inside the run's correlation id
    fetch: Fetch
    limits: PullLimits = PullLimits()
    owner: str = ""
    # Called after a page's readings are stored and queued, before its cursor is saved (tests crash there).
    after_queued: Callable[[int], None] | None = None

    def __post_init__(self) -> None:
        self.owner = self.owner or f"puller-{tokens.token_hex(6)}"

    def pull_due(self, now: datetime | None = None) -> dict[str, int]:
        """Run every due source this tick has time for; counts of runs by status and readings queued."""
        started = time.monotonic()
        counts: dict[str, int] = {"runs": 0, "ok": 0, "partial": 0, "failed": 0, "queued": 0, "refused": 0}
        for source_id in self.store.due(stamp(now or now_utc()), self.limits.sources_per_tick):
            if time.monotonic() - started > self.limits.tick_s:
                break
            run = self.pull_source(source_id, now)
            if run is not None:
                counts["runs"] += 1
                counts[run.status] += 1
                counts["queued"] += run.queued
                counts["refused"] += run.refused
        if counts["runs"]:
            publish({"PullRuns": counts["runs"], "PullRunsFailed": counts["failed"],
                     "ReadingsPulled": counts["queued"]})
        return counts

    def pull_source(self, source_id: str, now: datetime | None = None) -> RunRecord | None:
        """One run of one source, if it is due and no other puller holds it; None otherwise."""
        moment = now or now_utc()
        lease = self.store.take_lease(source_id, self.owner, stamp(moment),
                                      stamp(moment + timedelta(seconds=self.limits.lease_s)))
        if lease is None:
            return None
        found = self.store.config(source_id)
        if found is None or found[0].generation != lease.generation:
            return None  # removed or replaced since: the replacement made it due again, without this lease
        config, state = found
        source = self.registry.source(source_id)
        if source is None or source.revoked_at:
            self.store.park(source_id, f"source revoked at {source.revoked_at}" if source else "source unknown")
            logger.info("pull parked: source revoked", extra={"source_id": source_id})
            return None
        run = RunRecord(new_run_id(moment), source_id, stamp(moment), state.cursor)
        with correlated(run.run_id):
            failed = self._pages(lease, config, run)
            finished = now_utc()
            run.finished_at = stamp(finished)
            failures = state.failures + 1 if failed else 0
            if failed:
                run.status = "failed"
                due = finished + timedelta(minutes=backoff_minutes(config.every_minutes, failures))
            else:
                run.status = "partial" if run.refused else "ok"
                # Budget spent before catching up: carry on at the next tick.
                due = finished + timedelta(minutes=config.every_minutes) if run.caught_up else finished
            released = self.store.release(lease, stamp(due), failures, run)
            logger.info("pull run", extra={"source_id": source_id, **{k: v for k, v in run.view().items()
                                                                      if k != "errors"},
                                           "errors_kept": len(run.errors), "released": released})
        return run

    def _pages(self, lease: Lease, config: PullConfig, run: RunRecord) -> bool:
        """Fetch and take in pages until caught up or out of budget; True when the run failed."""
        principal = Principal(PrincipalKind.SOURCE, config.source_id)
        deadline = time.monotonic() + self.limits.run_s
        cursor = run.cursor_before
        run.next_cursor = cursor
        page_no = 0
        try:
            auth = (config.auth_header_name, self.secrets.get(config.auth_parameter)) \
                if config.auth_header_name and config.auth_parameter else None
            intake = self.make_intake()
            while page_no < self.limits.max_pages and time.monotonic() < deadline:
                page_no += 1
                url = page_url(config.url, config.cursor_param, cursor, config.page_size)
                try:
                    page = read_page(self.fetch(url, auth), config.items_field, config.next_cursor_field)
                except PartnerFailed as error:
                    run.refuse(page_no, None, str(error))
                    return True
                run.pages += 1
                run.readings += len(page.items)
                self._take_in(intake, principal, config, page.items, page_no, run)
                if self.after_queued:
                    self.after_queued(page_no)
                caught_up = page.next_cursor is None or page.next_cursor == cursor
                cursor = cursor if caught_up else page.next_cursor
                if not self.store.save_cursor(lease, cursor):
                    run.refuse(page_no, None, "the configuration was changed or removed during the run; "
                                              "this page's readings are kept, its cursor is not")
                    return True
                run.next_cursor = cursor
                if caught_up:
                    run.caught_up = True
                    return False
            return False
        except Exception as error:  # the store or the secret: record it, give the lease back, back off
            logger.exception("pull run failed", extra={"source_id": config.source_id, "page": page_no})
            run.refuse(page_no, None, f"internal error ({type(error).__name__}); it was logged")
            return True

    def _take_in(self, intake: Intake, principal: Principal, config: PullConfig, items: list[Any], page_no: int,
                 run: RunRecord) -> None:
        raws: list[tuple[int, Any]] = []
        for index, item in enumerate(items):
            raw = mapped_reading(item, config.mapping) if isinstance(item, dict) else item
            if config.signed and isinstance(raw, dict) and not raw.get("signature"):
                run.refuse(page_no, index, f"signed is true but the item has no {config.mapping['signature']!r}",
                           "signature")
                continue
            raws.append((index, raw))
        result = intake.submit(principal, raws, field_prefix="")
        run.queued += result.queued
        for index, error in result.errors:
            run.refuse(page_no, index, error.message, error.field)
