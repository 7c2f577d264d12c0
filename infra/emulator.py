"""moto in server mode, with DynamoDB requests served one at a time.

moto's DynamoDB snapshots whole tables with `copy.deepcopy` inside each
TransactWriteItems (to roll back), which races with writes served by other threads
("dictionary changed size during iteration"). The real service is safe under
concurrency, so the emulator must be too: this server keeps moto's threaded HTTP
handling and serialises DynamoDB calls behind one lock. SQS and S3 stay concurrent,
so SQS long polls do not hold anything up.

    python -m infra.emulator --host 127.0.0.1 --port 5005
"""

from __future__ import annotations

import argparse
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from werkzeug.serving import run_simple

from .moto_transactions import install as install_fast_transactions


class Serialised:
    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("HTTP_X_AMZ_TARGET", "").startswith("DynamoDB"):
            return self.app(environ, start_response)
        with self.lock:
            return list(self.app(environ, start_response))


def main() -> None:
    install_fast_transactions()
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    run_simple(args.host, args.port, Serialised(DomainDispatcherApplication(create_backend_app)), threaded=True,
               use_reloader=False, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
