"""The client against a real HTTP server on 127.0.0.1 that fails first attempts (a 500, a dropped connection):
retries re-send the same batch, the summary maps every answer to its line, a whole-batch 400 is not retried,
listings follow their cursors and `judged` waits for readings to leave `queued`."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from chalicelib.client import Backoff, DrecClient, Unreachable
from chalicelib.client.cli import main
from infra.anvil import free_port

HEADER = "device_id,period_start,period_end,energy_wh\n"
QUICK = Backoff(retries=3, base_s=0.01, cap_s=0.05)


class Registry:
    """What the server answers: POST /readings by the contract (the same reading → the same id), after
    the failures `plan` lists for successive POSTs ("500", "drop", "429", "400"); a few GETs."""

    def __init__(self) -> None:
        self.plan: list[str] = []
        self.posts: list[list[dict[str, Any]]] = []  # every POST body's readings, failed attempts included
        self.stored: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.lock = threading.Lock()


def _handler(registry: Registry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def answer(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.headers["X-Api-Key"] == "src-key"
            with registry.lock:
                registry.posts.append(body["readings"])
                step = registry.plan.pop(0) if registry.plan else "ok"
            if step == "drop":  # the request arrived, the answer never leaves
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            if step in ("500", "429"):
                return self.answer(int(step), {"error": {"code": "unavailable", "message": "try again"}})
            if step == "400":
                return self.answer(400, {"error": {"code": "bad_input", "field": "readings",
                                                   "message": "readings: at most 1000 per request"}})
            accepted, errors = [], []
            for index, reading in enumerate(body["readings"]):
                if reading["device_id"] == "dev-unknown":
                    errors.append({"index": index, "error": {"code": "rule_broken", "field": f"readings.{index}."
                                                             "device_id", "message": "device is not registered"}})
                    continue
                reading_id = f"rd-{reading['device_id']}-{reading['period_start']}"
                with registry.lock:
                    registry.stored.setdefault(reading_id, reading)
                accepted.append({"index": index, "reading_id": reading_id})
            self.answer(202, {"accepted": accepted, "errors": errors})

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/devices/dev-a/readings":  # pages of 2, with a cursor
                ids = sorted(registry.stored)
                start = int(query.get("cursor", "0"))
                end = start + 2
                return self.answer(200, {"items": [{"reading_id": i, "status": "queued"} for i in ids[start:end]],
                                         "next_cursor": str(end) if end < len(ids) else None})
            if url.path.startswith("/readings/"):  # queued on the first look, judged on the second
                reading_id = unquote(url.path.rsplit("/", 1)[1])
                with registry.lock:
                    registry.polls[reading_id] = registry.polls.get(reading_id, 0) + 1
                    status = "queued" if registry.polls[reading_id] == 1 else "accepted"
                return self.answer(200, {"reading_id": reading_id, "status": status})
            self.answer(404, {"error": {"code": "not_found", "message": f"no {url.path}"}})

    return Handler


@pytest.fixture
def server() -> Iterator[tuple[str, Registry]]:
    registry = Registry()
    httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(registry))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", registry
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(10)


def _csv(tmp_path: Path) -> Path:
    rows = [f"dev-a,2026-10-14T{h:02}:00:00Z,2026-10-14T{h + 1:02}:00:00Z,{10 + h}\n" for h in range(5, 12)]
    rows.insert(3, "dev-unknown,2026-10-14T05:00:00Z,2026-10-14T06:00:00Z,30\n")  # line 5
    rows.insert(5, "dev-a,2026-10-14T25:00:00Z,2026-10-14T26:00:00Z,30\n")  # line 7: no such hour
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_failed_first_attempts_are_resent_and_every_line_is_accounted_for(
        server: tuple[str, Registry], tmp_path: Path) -> None:
    url, registry = server
    # GIVEN a server whose first answer to batch 1 is a 500 and to batch 2 a dropped connection
    registry.plan = ["500", "ok", "drop", "ok"]
    client = DrecClient(url, "src-key", batch_size=4, backoff=QUICK, timeout=5)
    # WHEN 9 rows (one malformed, one of an unknown device) are submitted 4 to a batch
    result = client.submit_file(_csv(tmp_path))
    # THEN each failed batch was sent again, whole and unchanged
    assert [len(p) for p in registry.posts] == [4, 4, 4, 4]
    assert registry.posts[0] == registry.posts[1] and registry.posts[2] == registry.posts[3]
    assert (result.rows, result.accepted_count, result.batches, result.retries) == (9, 7, 2, 2)
    # AND the refusals name the file's lines and fields, the local one marked as never sent
    assert [(r.line, r.error and r.error["field"], r.sent) for r in result.refused] == \
        [(5, "device_id", True), (7, "period_start", False)]
    assert len(registry.stored) == 7
    # AND sending the file again (as after a crash) stores nothing new: the same lines get the same ids
    again = client.submit_file(_csv(tmp_path))
    assert [a.to_dict() for a in again.accepted] == [a.to_dict() for a in result.accepted]
    assert len(registry.stored) == 7


def test_a_whole_batch_400_is_reported_not_retried_and_retries_are_bounded(
        server: tuple[str, Registry], tmp_path: Path) -> None:
    url, registry = server
    client = DrecClient(url, "src-key", batch_size=5, backoff=QUICK, timeout=5)
    registry.plan = ["400"]
    result = client.submit_file(_csv(tmp_path))
    assert len(registry.posts) == 2  # the refused batch once, then the second batch
    assert [r.line for r in result.refused if r.sent] == [2, 3, 4, 5, 6]
    assert all(r.error and r.error["field"] == "readings" for r in result.refused if r.sent)
    registry.plan = ["500"] * 10
    registry.posts.clear()
    with pytest.raises(Unreachable, match="failed 4 attempt"):
        client.submit_file(_csv(tmp_path))
    assert len(registry.posts) == 4


def test_the_command_line_prints_the_summary_writes_the_report_and_exits_1(
        server: tuple[str, Registry], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    url, registry = server
    registry.plan = ["drop"]
    monkeypatch.setenv("MY_KEY", "src-key")
    report = tmp_path / "out.json"
    code = main(["--api", url, "--key-env", "MY_KEY", "--retries", "2", "submit", str(_csv(tmp_path)),
                 "--report", str(report), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 1
    assert "9 rows: 7 accepted, 2 refused (1 batch, 1 retry)" in printed
    assert "line 5: rule_broken [device_id]" in printed and "line 7: bad_input [period_start]" in printed
    written = json.loads(report.read_text())
    assert (written["accepted"], written["refused"]) == (7, 2)
    assert [a["line"] for a in written["accepted_lines"]] == [2, 3, 4, 6, 8, 9, 10]
    # no key at all: a usage failure
    monkeypatch.delenv("MY_KEY")
    assert main(["--api", url, "--key-env", "MY_KEY", "submit", str(_csv(tmp_path))]) == 2


def test_listings_follow_cursors_and_judged_waits_out_queued(server: tuple[str, Registry], tmp_path: Path) -> None:
    url, registry = server
    client = DrecClient(url, "src-key", backoff=QUICK, timeout=5)
    result = client.submit_file(_csv(tmp_path))
    listed = [r["reading_id"] for r in client.readings(device_id="dev-a")]
    assert listed == sorted(registry.stored) and len(listed) == 7  # 4 pages of 2
    ids = [a.reading_id for a in result.accepted if a.reading_id]
    judged = list(client.judged(ids, interval_s=0.01, deadline_s=10))
    assert sorted(v["reading_id"] for v in judged) == sorted(ids)
    assert all(v["status"] == "accepted" and registry.polls[v["reading_id"]] == 2 for v in judged)
