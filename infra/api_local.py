"""`chalice local`, with every HTTP method handed to the app.

Python's http.server answers a method its handler has no `do_<METHOD>` for with a bare 501
before the app is asked; `chalice local` declares only the methods routes may use, so TRACE
(or QUERY) got a 5xx outside the error schema. Here they reach chalice's local gateway, which
answers 405 as for any method a route does not take (API Gateway refuses them itself).

    python -m infra.api_local local --host 127.0.0.1 --port 8000 --no-autoreload --stage local
"""

from __future__ import annotations

import sys

from chalice.cli import main
from chalice.local import ChaliceRequestHandler

EXTRA_METHODS = ("TRACE", "QUERY", "CONNECT", "PROPFIND", "COPY", "LOCK", "MKCOL", "MOVE", "UNLOCK")

for method in EXTRA_METHODS:
    setattr(ChaliceRequestHandler, f"do_{method}", ChaliceRequestHandler._generic_handle)


if __name__ == "__main__":
    sys.exit(main())
