"""HTTP to the registry's API, retried where a retry is safe.

Connection errors, timeouts, 429 and 5xx are retried with exponential backoff and full
jitter (each wait drawn from 0 to `base_s` × 2^attempt, at most `cap_s`; a `Retry-After`
is honoured up to `cap_s`), a bounded number of times. Re-sending is safe for what the
client writes: `POST /readings` answers the same `reading_id` for the same device, period
and values, so a batch whose answer was lost is stored once however often it is sent.
Any other 4xx is an answer, not a failure: it is returned to the caller, never retried.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

# What a lost connection or an overloaded API looks like; anything else is the API's answer.
TRANSIENT_ERRORS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class ClientError(Exception):
    """Nothing more can be done: a usage error, an API that stays unreachable, a refused key."""


class Unreachable(ClientError):
    """The API did not answer usably within the retries."""


class ApiError(ClientError):
    """An answer that is no success, with the API's `{"error": {code, message, field}}`."""

    def __init__(self, method: str, path: str, status: int, error: dict[str, Any]) -> None:
        self.status = status
        self.error = error
        field = f" (field {error['field']})" if error.get("field") else ""
        super().__init__(f"{method} {path} answered {status}: {error.get('message')}{field}")


def error_of(response: requests.Response) -> dict[str, Any]:
    """The API's error object of an answer, or one made up from its status and text."""
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if isinstance(error, dict) and "message" in error:
        return {"code": error.get("code", "error"), "message": error["message"], "field": error.get("field")}
    return {"code": f"http_{response.status_code}", "message": response.text[:300] or response.reason,
            "field": None}


def retryable(status: int) -> bool:
    return status == 429 or status >= 500


@dataclass(frozen=True)
class Backoff:
    """`retries` more attempts after the first, each after an exponential, jittered wait [s]."""

    retries: int = 5
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        """The wait before attempt `attempt + 1` (the first retry follows attempt 0)."""
        ceiling = min(self.cap_s, self.base_s * 2 ** attempt)
        wait = random.uniform(0, ceiling)
        if retry_after_s is not None:
            wait = max(wait, min(retry_after_s, self.cap_s))
        return wait


def _retry_after_s(response: requests.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None  # an HTTP date, or nothing: the backoff decides


class Http:
    """One API base URL and key over one `requests.Session`."""

    def __init__(self, api_url: str, api_key: str | None = None, timeout_s: float = 60.0,
                 backoff: Backoff | None = None, on_retry: Callable[[str], None] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.api_url = api_url.rstrip("/")
        self.api_key = api_key
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff()
        self.on_retry = on_retry
        self.sleep = sleep
        self.retries = 0  # retries made so far, for the summary
        self.session = requests.Session()

    def request(self, method: str, path: str, params: dict[str, Any] | None = None,
                body: Any = None) -> requests.Response:
        """The first answer that is not 429 or 5xx; `Unreachable` when every attempt failed."""
        headers = {"X-Api-Key": self.api_key} if self.api_key else {}
        attempts = self.backoff.retries + 1
        for attempt in range(attempts):
            retry_after = None
            try:
                response = self.session.request(method, self.api_url + path, params=params, json=body,
                                                headers=headers, timeout=self.timeout_s)
            except TRANSIENT_ERRORS as exc:
                failure = f"{type(exc).__name__}: {str(exc)[:200]}"
            else:
                if not retryable(response.status_code):
                    return response
                failure = f"HTTP {response.status_code} {error_of(response)['message'][:200]}"
                retry_after = _retry_after_s(response)
            if attempt + 1 == attempts:
                raise Unreachable(f"{method} {path} failed {attempts} attempt(s); last: {failure}")
            wait = self.backoff.delay_s(attempt, retry_after)
            self.retries += 1
            if self.on_retry:
                self.on_retry(f"{method} {path}: {failure}; retrying in {wait:.1f} s "
                              f"(attempt {attempt + 2} of {attempts})")
            self.sleep(wait)
        raise AssertionError("unreachable")  # the loop returns or raises

    def get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.request("GET", path, params=params)
        if response.status_code != 200:
            raise ApiError("GET", path, response.status_code, error_of(response))
        return response.json()
