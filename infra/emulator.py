"""moto in server mode: DynamoDB served one call at a time, and, with `--data`, durable.

moto's DynamoDB snapshots whole tables with `copy.deepcopy` inside each
TransactWriteItems (to roll back), which races with writes served by other threads
("dictionary changed size during iteration"). The real service is safe under
concurrency, so the emulator must be too: this server serves each connection in its own thread
(`infra.http_server`, keep-alive) and serialises DynamoDB calls behind one lock (and S3 writes behind another, SSM
parameter writes behind a third). SQS stays concurrent, so SQS long polls do not hold anything up.
Queries start from the partition asked (`infra.moto_index`), not from the whole table.

With `--data <folder>` nothing it acknowledged is lost when the process dies, `kill -9`
included (`infra.journal`): before serving, it creates every resource of
`infra.resources`, loads the last snapshot, replays the journal and compacts it; while
serving, each successful write is journaled before it is answered; a journal grown past
`DREC_JOURNAL_COMPACT_MB` (default 256) is compacted into a new snapshot. Stopping
needs no saving: SIGTERM ends the process at once.

    python -m infra.emulator --host 127.0.0.1 --port 5005 [--data .stack/store --prefix drec-local]
    python -m infra.emulator --port 0 --data .stack/store --compact-only   # stack stopped: one snapshot
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from moto.core.request import Request as MotoRequest
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import make_server

from .http_server import serve
from .journal import Journal, WsgiApp, changes_state, entry, read_body, replay_one, request_json, service_of
from .moto_index import MAPS as INDEX_MAPS
from .moto_index import install as install_fast_queries
from .moto_speed import install as install_fast_paths
from .moto_transactions import install as install_fast_transactions
from .usage import Counting


class DirectDynamo:
    """DynamoDB requests handed straight to moto's DynamoDB handler, as moto's Flask route hands them
    (`moto.core.utils.convert_to_flask_response`), without routing each through a Flask app: the
    answers are the handler's own; everything else goes to moto's application."""

    def __init__(self, app: WsgiApp) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if service_of(environ) != "dynamodb" or environ.get("PATH_INFO", "/") != "/":
            return self.app(environ, start_response)
        request = MotoRequest(environ)
        try:
            result = DynamoHandler.dispatch(request, request.raw_url, dict(request.headers))
        except ClientError as exc:
            result = 400, {}, exc.response["Error"]["Message"]
        status, headers, content = result if len(result) == 3 else (200, {}, result)
        body = content.encode() if isinstance(content, str) else bytes(content or b"")
        given = {k.lower() for k in headers}
        extra = [] if "content-type" in given else [("Content-Type", "text/html; charset=utf-8")]
        start_response(f"{int(status)} {HTTPStatus(int(status)).phrase}",
                       [(str(k), str(v)) for k, v in headers.items() if k.lower() != "content-length"] + extra
                       + [("Content-Length", str(len(body)))])
        return [body]


class Serialised:
    """moto behind one lock for DynamoDB, one for S3 writes and one for SSM parameter writes;
    acknowledged writes journaled first."""

    def __init__(self, app: WsgiApp, journal: Journal | None = None) -> None:
        self.app = Counting(DirectDynamo(app))  # infra.usage: what each request consumed, GET /_drec/usage
        self.journal = journal
        self.lock = threading.Lock()
        self.s3_lock = threading.Lock()
        self.ssm_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        service = service_of(environ)
        writes = changes_state(environ, service)
        if service == "dynamodb":
            lock = self.lock
        elif service == "s3" and writes:
            lock = self.s3_lock
        elif service == "ssm" and writes:
            lock = self.ssm_lock
        else:
            return self.app(environ, start_response)
        body = read_body(environ) if writes else b""
        line = entry(environ, body) if self.journal and writes else None
        status: list[str] = []

        def noting_status(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(status_line)
            return start_response(status_line, headers, exc_info)

        with lock:
            response = list(self.app(environ, noting_status))
            if service == "dynamodb" and writes:
                INDEX_MAPS.written(environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2],
                                   request_json(environ, body))
            if line is not None and self.journal and status and status[-1].startswith("2"):
                try:
                    self.journal.append(line)
                except OSError as exc:
                    # Applied in memory but not durable: die unanswered; the restart replays the
                    # journal without it and the client, having no answer, retries.
                    print(f"journal write failed ({exc}); stopping unanswered", file=sys.stderr, flush=True)
                    os._exit(70)
        return response

    def compact(self, region: str) -> dict[str, int]:
        assert self.journal
        with self.lock, self.s3_lock, self.ssm_lock:
            return self.journal.compact(region)


def recover(app: WsgiApp, journal: Journal, prefix: str, region: str) -> dict[str, Any]:
    """Create the resources, load the snapshot, replay the journal, compact: the state last acknowledged."""
    import boto3

    from .provision import configure_notifications, provision

    started = time.monotonic()
    # Provisioning goes through boto3, so moto answers it on a private port while the public one
    # stays closed: nobody reads or writes a store that is not yet what was acknowledged.
    private = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    threading.Thread(target=private.serve_forever, daemon=True).start()
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{private.port}"
    try:
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                        region_name=region)
        provision(prefix, session, notifications=False)
        loaded = journal.load(region, prefix)
        replayed = refused = 0
        for line in journal.lines():
            replayed += 1
            if replay_one(app, line) >= 300:
                refused += 1
        counts = Serialised(app, journal).compact(region)
        # Notifications last: objects put back above must not look like new uploads.
        configure_notifications(prefix, session)
    finally:
        private.shutdown()
    return {"loaded": sum(v for k, v in loaded.items() if not k.startswith(("s3:", "ssm:"))),
            "replayed": replayed, "replay_refused": refused,
            "items": sum(v for k, v in counts.items() if not k.startswith(("s3:", "ssm:"))),
            "objects": sum(v for k, v in counts.items() if k.startswith("s3:")),
            "parameters": counts.get("ssm:parameters", 0),
            "generation": journal.generation, "seconds": round(time.monotonic() - started, 2)}


def _compact_when_large(served: Serialised, region: str, limit_bytes: int) -> None:
    assert served.journal
    while True:
        time.sleep(5)
        if served.journal.bytes > limit_bytes:
            counts = served.compact(region)
            print(f"journal compacted into generation {served.journal.generation}: "
                  f"{sum(counts.values())} items, objects and parameters", file=sys.stderr, flush=True)


def main() -> None:
    install_fast_transactions()
    install_fast_paths()
    install_fast_queries()
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--data", type=Path, help="folder of the journal and snapshots (none: memory only)")
    parser.add_argument("--prefix", default="drec-local", help="resource name prefix, with --data")
    parser.add_argument("--compact-only", action="store_true",
                        help="with --data: fold the journal into a snapshot and exit (for a stopped stack)")
    args = parser.parse_args()
    region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
    app: WsgiApp = DomainDispatcherApplication(create_backend_app)
    journal = None
    if args.data:
        journal = Journal(args.data, fsync=os.environ.get("DREC_JOURNAL_FSYNC") == "1")
        report = recover(app, journal, args.prefix, region)
        (args.data / "recovered.json").write_text(json.dumps(report))
        print(f"recovered: {json.dumps(report)}", file=sys.stderr, flush=True)
        if args.compact_only:
            return
    INDEX_MAPS.forget()  # the recovery wrote around the requests
    served = Serialised(app, journal)
    if journal:
        limit = int(float(os.environ.get("DREC_JOURNAL_COMPACT_MB", "256")) * 1024 * 1024)
        threading.Thread(target=_compact_when_large, args=(served, region, limit), daemon=True).start()
    serve(served, args.host, args.port)  # keep-alive connections (infra.http_server)


if __name__ == "__main__":
    main()
