"""`chalice local`, with every HTTP method handed to the app.

Python's http.server answers a method its handler has no `do_<METHOD>` for with a bare 501
before the app is asked; `chalice local` declares only the methods routes may use, so TRACE
(or QUERY) got a 5xx outside the error schema. Here they reach chalice's local gateway, which
answers 405 as for any method a route does not take (API Gateway refuses them itself).

    python -m infra.api_local local --host 127.0.0.1 --port 8000 --no-autoreload --stage local
"""

from __future__ import annotations

import sys
import time
from typing import Any

from chalice.cli import main
from chalice.local import ChaliceRequestHandler

from .usage import Invocations

EXTRA_METHODS = ("TRACE", "QUERY", "CONNECT", "PROPFIND", "COPY", "LOCK", "MKCOL", "MOVE", "UNLOCK")

for method in EXTRA_METHODS:
    setattr(ChaliceRequestHandler, f"do_{method}", ChaliceRequestHandler._generic_handle)

CALLS = Invocations("api")  # requests and their durations per method and first path segment, for the benchmarks
_handle = ChaliceRequestHandler._generic_handle


def _timed(self: Any) -> None:
    started = time.monotonic()
    try:
        _handle(self)
    finally:
        route = "/" + self.path.split("?")[0].strip("/").split("/")[0]
        CALLS.record(f"{self.command} {route}", time.monotonic() - started)


ChaliceRequestHandler._generic_handle = _timed  # type: ignore[method-assign]
for method in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", *EXTRA_METHODS):
    if hasattr(ChaliceRequestHandler, f"do_{method}"):
        setattr(ChaliceRequestHandler, f"do_{method}", _timed)


if __name__ == "__main__":
    sys.exit(main())
