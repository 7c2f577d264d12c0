"""A partner's readings API for pull tests: a real HTTP server on 127.0.0.1 (a free port), in a thread.

It serves `items` in pages: `GET /readings?after=<offset>&limit=<n>` → `{"data": {"rows": [...]},
"paging": {"next": "<offset>" | null}}`. Offsets listed in `fail_once` answer 500 the first time they
are asked; those in `slow` wait `slow_s` before answering; `token` (if set) must come in `X-Partner-Token`.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

MAPPING = {"device_id": "meter.id", "period_start": "from", "period_end": "to", "energy_wh": "wh",
           "external_id": "uid"}


@dataclass
class Partner:
    items: list[dict[str, Any]]
    fail_once: set[int] = field(default_factory=set)
    slow: set[int] = field(default_factory=set)
    slow_s: float = 0.0
    token: str | None = None
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, path: str, headers: dict[str, str]) -> tuple[int, bytes]:
        parts = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self.lock:
            self.requests.append({"path": path, "headers": headers, "query": query})
        if self.token is not None and headers.get("x-partner-token") != self.token:
            return 401, b'{"error": "token"}'
        offset = int(query.get("after", "0"))
        limit = int(query.get("limit", "100"))
        with self.lock:
            if offset in self.fail_once:
                self.fail_once.discard(offset)
                return 500, b'{"error": "database busy"}'
        if offset in self.slow:
            time.sleep(self.slow_s)
        rows = self.items[offset:offset + limit]
        following = offset + len(rows)
        body = {"data": {"rows": rows}, "paging": {"next": str(following) if following < len(self.items) else None}}
        return 200, json.dumps(body).encode()

    def asked_offsets(self) -> list[int]:
        with self.lock:
            return [int(r["query"].get("after", "0")) for r in self.requests]


@contextmanager
def serving(partner: Partner) -> Iterator[Partner]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, body = partner.answer(self.path, {k.lower(): v for k, v in self.headers.items()})
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    partner.url = f"http://127.0.0.1:{server.server_address[1]}/readings"
    try:
        yield partner
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def hourly_rows(device_ids: list[str], per_device: int, start: datetime | None = None,
                energy_wh: int = 50) -> list[dict[str, Any]]:
    """`per_device` consecutive hourly readings of each device, in the partner's shape, device after device
    interleaved by hour (as a partner's database returns them by time)."""
    first = start or datetime(2026, 10, 1, 6, tzinfo=UTC)
    rows = []
    for hour in range(per_device):
        begin = first + timedelta(hours=hour)
        for device_id in device_ids:
            rows.append({"meter": {"id": device_id}, "from": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "to": (begin + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "wh": energy_wh,
                         "uid": f"{device_id}-{hour}"})
    return rows


def pull_body(partner: Partner, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": partner.url, "every_minutes": 5, "mapping": dict(MAPPING), "signed": False,
                            "items_field": "data.rows", "next_cursor_field": "paging.next"}
    if partner.token is not None:
        body["auth_header"] = {"name": "X-Partner-Token", "value": partner.token}
    body.update(overrides)
    return body
