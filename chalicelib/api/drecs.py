"""Routes of D-RECs: listed by buyer characteristics, one with its trail, and its trail checked against the chain.

The check (`chalicelib.verify`) reads the API's answers; here it reads them in process from the
same services the routes call, so verifying never calls this API back over HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from chalice import Blueprint, Response

from .. import bootstrap
from ..domain.anchoring import Batch, BatchStatus
from ..domain.certificates import DrecStatus
from ..domain.errors import BadInput, DomainError
from ..domain.ledger.events import Event, event_id_for, parse_event_id
from ..domain.readings import ReceivedReading
from ..services import certificates, intake, provenance, redemptions
from ..services.anchoring import Proofs
from ..services.ports.ledger import Batches, Events
from ..services.ports.readings import ReadingStore
from ..telemetry import logger
from ..verify import Verifier
from . import schemas
from .errors import INTERNAL, json_response, json_text, page_body, status_of
from .ledger import event_proof, events_page
from .openapi import PAGED, Param, one_of, route
from .request import PAGING, incoming, paging

log = logger

drecs = Blueprint(__name__)

MONTH = {"type": "string", "pattern": r"^\d{4}-\d{2}$"}  # `certificates.VINTAGE`


def drec_detail(c: Any, serial: str) -> dict[str, Any]:
    item = certificates.get_drec(c.drecs, serial)
    events = provenance.list_events(c.events, c.batches, 100, None, subject_id=serial).items
    return certificates.detail(item, events)


@route(drecs, "get", "/drecs", "D-RECs by owner, status and characteristics; " + PAGING,
       query=PAGED + ("owner_account_id", one_of("status", [s.value for s in DrecStatus]), "country",
                      "device_type", "offtaker_type", "device_id",
                      Param("vintage_from", MONTH, "First generation month, 2026-01", example="2026-01"),
                      Param("vintage_to", MONTH, "Last generation month, 2026-12", example="2026-12")),
       items=schemas.DrecOut)
def get_drecs() -> Response:
    q = incoming(drecs).query
    return json_response(page_body(certificates.list_drecs(bootstrap.container().drecs, *paging(q), q)))


@route(drecs, "get", "/drecs/{serial}", "One D-REC: contributions, hourly Wh, events", schemas.DrecOut)
def get_drec(serial: str) -> Response:
    return json_response(drec_detail(bootstrap.container(), serial))


@route(drecs, "get", "/drecs/{serial}/verify", "Check a D-REC's trail against the chain")
def verify_drec(serial: str) -> Response:
    c = bootstrap.container()
    reads = InProcessReads(c)
    # The D-REC (a 404 if there is none) is read once: the verification starts from this answer.
    reads.answers[f"/drecs/{serial}"] = json_text(drec_detail(reads, serial))
    if c.chain is None:
        raise BadInput("no chain is configured to verify against", field="serial")
    verifier = Verifier(c.settings.public_url, "", get=reads, chain=c.chain)
    return json_response(verifier.verify(serial).to_dict())


def _answer(c: Any, path: str, query: dict[str, str]) -> Any:
    match [unquote(part) for part in path.strip("/").split("/")]:
        case ["drecs", serial]:
            return drec_detail(c, serial)
        case ["events"]:
            return events_page(c, query)
        case ["events", event_id]:
            return provenance.get_event(c.events, c.batches, event_id)
        case ["events", event_id, "proof"]:
            return event_proof(c, event_id)
        case ["readings", reading_id]:
            return intake.get_reading(c.readings, reading_id)
        case ["redemptions", redemption_id]:
            return redemptions.get_redemption(c.trades, redemption_id, c.settings.public_url)
        case ["ledger"]:
            return provenance.ledger_info(c.chain, c.settings)
    raise LookupError(f"GET {path} is not one of the reads a verification makes")


class KnownEvents:
    """The event store, remembering every event it has read: events never change once appended."""

    def __init__(self, events: Events) -> None:
        self.store = events
        self.by_id: dict[str, Event] = {}
        # (subject, limit, cursor) -> (event ids, next cursor) of pages `prefetch` read
        self.pages: dict[tuple[str, int, str | None], tuple[list[str], str | None]] = {}

    def _keep(self, events: list[Event]) -> list[Event]:
        self.by_id.update((e.event_id, e) for e in events)
        return events

    @property
    def shards(self) -> int:
        return self.store.shards

    def current_seq(self, shard: int) -> int:
        return self.store.current_seq(shard)

    def current_seqs(self) -> list[int]:
        return self.store.current_seqs()

    def event(self, event_id: str) -> Event | None:
        found = self.events_by_id([event_id])
        return found[0] if found else None

    def events_by_id(self, event_ids: Sequence[str]) -> list[Event]:
        wanted = [canonical_id(e) for e in event_ids]
        missing = [e for e in wanted if e and e not in self.by_id]
        self._keep(self.store.events_by_id(missing) if missing else [])
        return [self.by_id[e] for e in wanted if e in self.by_id]

    def events_by_seq(self, shard: int, seqs: list[int]) -> list[Event]:
        return self.events_by_id([event_id_for(shard, s) for s in seqs])

    def list_events(self, limit: int, cursor: str | None, subject_id: str | None = None,
                    event_type: str | None = None, shard: int = 0) -> tuple[list[Event], str | None]:
        """As the store lists them; a subject's page read once (by `prefetch` or an earlier listing)."""
        subject_ids = getattr(self.store, "subject_event_ids", None)
        if subject_id and subject_ids is not None:
            if (subject_id, limit, cursor) not in self.pages:
                self.pages[(subject_id, limit, cursor)] = subject_ids(subject_id, limit, cursor)
            ids, next_cursor = self.pages[(subject_id, limit, cursor)]
            events = [e for e in self.events_by_id(ids) if event_type is None or e.type == event_type]
            return events, next_cursor
        events, next_cursor = self.store.list_events(limit, cursor, subject_id, event_type, shard)
        return self._keep(events), next_cursor

    def prefetch(self, subjects: list[str], limit: int, pool: ThreadPoolExecutor) -> None:
        """The first page of each subject's events: their links side by side, then all the events in batches."""
        subject_ids = getattr(self.store, "subject_event_ids", None)
        wanted = [s for s in dict.fromkeys(subjects) if (s, limit, None) not in self.pages]
        if subject_ids is None or not wanted:
            return
        for subject, page in zip(wanted, pool.map(lambda s: subject_ids(s, limit, None), wanted)):
            self.pages[(subject, limit, None)] = page
        self.events_by_id([e for s in wanted for e in self.pages[(s, limit, None)][0]])


def canonical_id(event_id: str) -> str | None:
    """The event id as stored (`ev-<shard>-<seq>`), for any spelling the API accepts; None if it is none."""
    found = parse_event_id(event_id)
    return event_id_for(*found) if found else None


class KnownBatches:
    """The batch store, remembering anchored batches: an anchored batch never changes."""

    def __init__(self, batches: Batches) -> None:
        self.store = batches
        self.anchored: list[Batch] = []

    def covering(self, shard: int, seq: int) -> Batch | None:
        for known in self.anchored:
            if known.shard == shard and known.covers(seq):
                return known
        found = self.store.covering(shard, seq)
        if found is not None and found.status is BatchStatus.ANCHORED:
            self.anchored.append(found)
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class KnownReadings:
    """The reading store, with the readings a verification names read in one batch ahead of use."""

    def __init__(self, readings: ReadingStore) -> None:
        self.store = readings
        self.known: dict[str, ReceivedReading] = {}

    def prefetch(self, reading_ids: list[str]) -> None:
        self.known.update(self.store.readings([r for r in reading_ids if r not in self.known]))

    def readings(self, reading_ids: Sequence[str]) -> dict[str, ReceivedReading]:
        missing = [r for r in reading_ids if r not in self.known]
        found = {r: self.known[r] for r in reading_ids if r in self.known}
        return {**found, **(self.store.readings(missing) if missing else {})}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


class InProcessReads:
    """The verifier's `get`: path → the JSON the route answers; a non-200 answer is a LookupError, as over HTTP.

    One is made per verification. It answers from the services the routes call, never over HTTP,
    remembers each answer (a verification reads many paths more than once: the D-REC's issuance
    for every reading's conservation check), each event and each anchored batch, and `many` fetches
    a D-REC's per-reading paths together on a few threads, so the wall time is a few round trips
    per batch of contributions rather than one per read.
    """

    WORKERS = 8

    def __init__(self, c: bootstrap.Container) -> None:
        self.drecs, self.trades = c.drecs, c.trades
        self.readings = KnownReadings(c.readings)
        self.chain, self.settings = c.chain, c.settings
        self.events = KnownEvents(c.events)
        self.batches = KnownBatches(c.batches)
        self.proofs = Proofs(self.events, self.batches, c.ledger_bucket)  # type: ignore[arg-type]
        self.answers: dict[str, str] = {}
        self.failures: dict[str, LookupError] = {}

    def __call__(self, target: str) -> Any:
        if target not in self.answers and target not in self.failures:
            self._fetch(target)
        if target in self.failures:
            raise self.failures[target]
        return json.loads(self.answers[target])

    def many(self, targets: list[str]) -> None:
        """Answer `targets` ahead of use: the reads they share in batches, the rest side by side."""
        missing = [t for t in dict.fromkeys(targets) if t not in self.answers and t not in self.failures]
        if not missing:
            return
        subjects: dict[int, list[str]] = {}
        reading_ids: list[str] = []
        event_ids: list[str] = []
        proofs: list[str] = []
        for target in missing:
            url = urlsplit(target)
            query = dict(parse_qsl(url.query))
            parts = [unquote(p) for p in url.path.strip("/").split("/")]
            if parts == ["events"] and query.get("subject_id") and "cursor" not in query:
                subjects.setdefault(int(query.get("limit", "50")), []).append(query["subject_id"])
            elif len(parts) == 2 and parts[0] == "readings":
                reading_ids.append(parts[1])
            elif len(parts) in (2, 3) and parts[0] == "events" and parse_event_id(parts[1]):
                event_ids.append(parts[1])
                if parts[2:] == ["proof"]:
                    proofs.append(target)
        with ThreadPoolExecutor(self.WORKERS) as pool:
            for limit, subject_ids in subjects.items():
                if 1 <= limit <= 1000:
                    self.events.prefetch(subject_ids, limit, pool)
            self.readings.prefetch(reading_ids)
            self.events.events_by_id(list(dict.fromkeys(event_ids)))
            if proofs:  # one first, alone: it reads the anchored batch and builds its tree for the others
                self._fetch(proofs[0])
            list(pool.map(self._fetch, [t for t in missing if t not in proofs[:1]]))

    def _fetch(self, target: str) -> None:
        url = urlsplit(target)
        try:
            body = _answer(self, url.path, dict(parse_qsl(url.query)))
        except DomainError as error:
            self.failures[target] = LookupError(f"GET {target} answered {status_of(error)}: "
                                                f"{json_text({'error': error.to_dict()})[:300]}")
            return
        except LookupError as error:
            self.failures[target] = error
            return
        except Exception:
            log.exception("unhandled error reading %s in process", target)
            self.failures[target] = LookupError(f"GET {target} answered 500: {json_text(INTERNAL)}")
            return
        self.answers[target] = json_text(body)


def in_process_get(c: bootstrap.Container) -> Callable[[str], Any]:
    """The verifier's `get` for one verification (see `InProcessReads`)."""
    return InProcessReads(c)
