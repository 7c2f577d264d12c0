"""`DrecClient`: what an aggregator does with the registry, over its HTTP API only.

Readings are checked with the registry's own parser before they leave (a row the API would refuse
for its form is refused here with the same field and message, and not sent), signed when a key is
given (EIP-712 typed data of `domain.signing`, signed by `services.signatures.sign_reading`), and
sent in batches while the file is still being read. Every answer is mapped back from the batch's
indexes to the lines of the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from eth_account.signers.local import LocalAccount

from ..api.reading_input import parse_reading
from ..domain.errors import DomainError
from ..domain.readings import ReadingStatus
from ..services.signatures import sign_reading
from .files import Format, Row, load_signing_key, read_rows
from .http import ApiError, Backoff, ClientError, Http, error_of

MAX_BATCH = 1000  # POST /readings takes at most this many
PAGE_LIMIT = 200
FIELD_PREFIX = "readings."


@dataclass(frozen=True)
class LineResult:
    """What became of one line: its `reading_id`, or the error that refused it (`sent`: by the API)."""

    line: int
    reading_id: str | None = None
    error: dict[str, Any] | None = None
    sent: bool = True

    @property
    def accepted(self) -> bool:
        return self.reading_id is not None

    def to_dict(self) -> dict[str, Any]:
        if self.accepted:
            return {"line": self.line, "reading_id": self.reading_id}
        return {"line": self.line, "error": self.error, "sent": self.sent}


@dataclass
class SubmitResult:
    """Counts and refusals of one submission; the accepted lines themselves only when kept."""

    rows: int = 0
    accepted_count: int = 0
    refused: list[LineResult] = field(default_factory=list)
    accepted: list[LineResult] = field(default_factory=list)
    batches: int = 0
    retries: int = 0

    @property
    def ok(self) -> bool:
        return not self.refused

    def summary(self) -> dict[str, Any]:
        return {"rows": self.rows, "accepted": self.accepted_count, "refused": len(self.refused),
                "batches": self.batches, "retries": self.retries}

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "accepted_lines": [a.to_dict() for a in self.accepted],
                "refused_lines": [r.to_dict() for r in self.refused]}


def _field(error: dict[str, Any], index: int) -> dict[str, Any]:
    """An item's error with its field named as in the file (`energy_wh`), not the batch (`readings.7.energy_wh`)."""
    name = error.get("field")
    prefix = f"{FIELD_PREFIX}{index}."
    if isinstance(name, str) and name.startswith(prefix):
        error = {**error, "field": name[len(prefix):]}
    return error


class DrecClient:
    """The registry's API for an aggregator: submit (signed) readings, list and follow, verify.

    `api_key` is needed to submit; `key_file` (a 0x-hex private key or a keystore JSON) signs each
    reading that carries no signature. `retries` bounds the retries of one request.
    """

    def __init__(self, api_url: str, api_key: str | None = None, key_file: Path | str | None = None,
                 timeout: float = 60.0, retries: int = 5, batch_size: int = MAX_BATCH,
                 signing_key: LocalAccount | None = None, backoff: Backoff | None = None,
                 on_retry: Callable[[str], None] | None = None) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ClientError(f"batch size must be from 1 to {MAX_BATCH}")
        self.http = Http(api_url, api_key, timeout, backoff or Backoff(retries=retries), on_retry)
        self.batch_size = batch_size
        self.signer = signing_key or (load_signing_key(key_file) if key_file else None)

    @property
    def signing_address(self) -> str | None:
        return self.signer.address if self.signer else None

    # -- submitting -------------------------------------------------------------------------------
    def submit(self, readings: Iterable[Mapping[str, Any]], **options: Any) -> SubmitResult:
        """Readings (dicts as `POST /readings` takes them), numbered from 1 as their "lines"."""
        return self.submit_rows(((n, dict(r)) for n, r in enumerate(readings, 1)), **options)

    def submit_file(self, path: Path | str, fmt: Format | None = None,
                    on_read: Callable[[int], None] | None = None, **options: Any) -> SubmitResult:
        """A CSV or JSON file of readings, streamed; raises `FileRefused` for a file with no readable start."""
        return self.submit_rows(read_rows(Path(path), fmt, on_read), **options)

    def submit_rows(self, rows: Iterable[Row], keep_accepted: bool = True,
                    on_line: Callable[[LineResult], None] | None = None,
                    on_batch: Callable[[SubmitResult], None] | None = None) -> SubmitResult:
        """Check, sign and send (line, raw reading | error) rows in batches, as they come.

        `on_line` sees every line's result (a report file written as it goes); `keep_accepted=False`
        keeps only counts and refusals in memory, for files of millions of rows.
        """
        if not self.http.api_key:
            raise ClientError("submitting needs an API key (X-Api-Key); set DREC_API_KEY")
        result = SubmitResult()
        retries_before = self.http.retries

        def record(outcome: LineResult) -> None:
            if outcome.accepted:
                result.accepted_count += 1
                if keep_accepted:
                    result.accepted.append(outcome)
            else:
                result.refused.append(outcome)
            if on_line:
                on_line(outcome)

        batch: list[tuple[int, dict[str, Any]]] = []
        for line, raw in rows:
            result.rows += 1
            try:
                batch.append((line, self.prepare(raw)))
            except DomainError as error:
                record(LineResult(line, error=error.to_dict(), sent=False))
                continue
            if len(batch) >= self.batch_size:
                self._send(batch, record, result, retries_before, on_batch)
                batch = []
        if batch:
            self._send(batch, record, result, retries_before, on_batch)
        result.refused.sort(key=lambda r: r.line)
        return result

    def prepare(self, raw: Any) -> dict[str, Any]:
        """The reading to send: checked as the API checks it, signed if this client holds a key."""
        if isinstance(raw, DomainError):
            raise raw
        reading = parse_reading(raw)  # BadInput naming the field, as the API's would
        if self.signer is None or raw.get("signature"):
            return dict(raw)
        signature = sign_reading(self.signer.key, reading.device_id, reading.period_start, reading.period_end,
                                 reading.energy_wh)
        return {**raw, "signature": signature}

    def _send(self, batch: list[tuple[int, dict[str, Any]]], record: Callable[[LineResult], None],
              result: SubmitResult, retries_before: int, on_batch: Callable[[SubmitResult], None] | None) -> None:
        lines = [line for line, _ in batch]
        # Safe to re-send whole: the same reading again answers the same reading_id (services/intake.py).
        response = self.http.request("POST", "/readings", body={"readings": [r for _, r in batch]})
        result.batches += 1
        result.retries = self.http.retries - retries_before
        if response.status_code == 401:
            raise ApiError("POST", "/readings", 401, error_of(response))
        if response.status_code != 202:
            # The batch as a whole is refused (a malformed body, a key that may not write): every line says why.
            error = error_of(response)
            for line in lines:
                record(LineResult(line, error=error))
        else:
            answer = response.json()
            outcomes = [LineResult(lines[a["index"]], reading_id=a["reading_id"]) for a in answer["accepted"]]
            outcomes += [LineResult(lines[e["index"]], error=_field(e["error"], e["index"])) for e in answer["errors"]]
            for outcome in sorted(outcomes, key=lambda o: o.line):
                record(outcome)
        if on_batch:
            on_batch(result)

    # -- reading ----------------------------------------------------------------------------------
    def pages(self, path: str, params: Mapping[str, Any] | None = None, limit: int = PAGE_LIMIT) -> Iterator[Any]:
        """Every item of a listing, following `next_cursor` page by page."""
        query = {k: v for k, v in (params or {}).items() if v is not None}
        cursor = None
        while True:
            page = self.http.get_json(path, {**query, "limit": limit, **({"cursor": cursor} if cursor else {})})
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def readings(self, device_id: str | None = None, status: str | None = None) -> Iterator[dict[str, Any]]:
        """A device's readings (optionally of one status), or all readings of a status."""
        if status is not None and status not in {s.value for s in ReadingStatus}:
            raise ClientError("status must be one of " + ", ".join(s.value for s in ReadingStatus))
        if device_id:
            return self.pages(f"/devices/{quote(device_id, safe='')}/readings", {"status": status})
        if status is None:
            raise ClientError("list readings of a device (device_id) or of a status")
        return self.pages("/readings", {"status": status})

    def reading(self, reading_id: str) -> dict[str, Any]:
        return dict(self.http.get_json(f"/readings/{quote(reading_id, safe='')}"))

    def drecs(self, **filters: Any) -> Iterator[dict[str, Any]]:
        """D-RECs by `owner_account_id`, `status`, `country`, `device_type`, `offtaker_type`, `device_id`,
        `vintage_from`, `vintage_to` (the filters of `GET /drecs`)."""
        return self.pages("/drecs", filters)

    def redemptions(self, account_id: str) -> Iterator[dict[str, Any]]:
        return self.pages("/redemptions", {"account_id": account_id})

    # -- following --------------------------------------------------------------------------------
    def follow(self, listing: Callable[[], Iterable[dict[str, Any]]], key: str, interval_s: float = 2.0,
               deadline_s: float | None = None, sleep: Callable[[float], None] = time.sleep,
               ) -> Iterator[dict[str, Any]]:
        """Items of a listing as they appear or change status, polled every `interval_s` until `deadline_s`."""
        seen: dict[str, Any] = {}
        ends = None if deadline_s is None else time.monotonic() + deadline_s
        while True:
            for item in listing():
                if seen.get(item[key], object()) != item.get("status"):
                    seen[item[key]] = item.get("status")
                    yield item
            if ends is not None and time.monotonic() + interval_s > ends:
                return
            sleep(interval_s)

    def judged(self, reading_ids: Iterable[str], interval_s: float = 2.0, deadline_s: float | None = None,
               sleep: Callable[[float], None] = time.sleep) -> Iterator[dict[str, Any]]:
        """Each submitted reading once it has left `queued`, until all have or the deadline passes.

        Raises `TimeoutError` naming how many are still queued at the deadline.
        """
        pending = list(dict.fromkeys(reading_ids))
        ends = None if deadline_s is None else time.monotonic() + deadline_s
        while pending:
            still = []
            for reading_id in pending:
                view = self.reading(reading_id)
                if view["status"] == ReadingStatus.QUEUED:
                    still.append(reading_id)
                else:
                    yield view
            pending = still
            if not pending:
                return
            if ends is not None and time.monotonic() + interval_s > ends:
                raise TimeoutError(f"{len(pending)} reading(s) still queued at the deadline, e.g. {pending[0]}")
            sleep(interval_s)

    # -- verifying --------------------------------------------------------------------------------
    def verify(self, target: str, rpc_url: str, contract_address: str | None = None) -> Any:
        """A D-REC serial (an event or a redemption id) checked against the chain: `verify.Verification`."""
        from ..verify import Verifier  # web3 and the chain adapter: only for this

        return Verifier(self.http.api_url, rpc_url, contract_address).verify(target)
