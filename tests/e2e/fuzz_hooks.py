"""Schemathesis hooks for the fuzz run against the stack (loaded through SCHEMATHESIS_HOOKS).

A cursor is valid only if this server signed it for the same listing (an HMAC no schema can
express): a generated cursor of the published shape would be refused with a 400 although the
schema admits it, so it is dropped before the call; cursors of the wrong shape stay (400 expected).
Every answer's status is appended to DREC_FUZZ_LOG, so the test can count requests and 5xx.
"""

from __future__ import annotations

import os
import re
from typing import Any

import schemathesis

SIGNED_SHAPE = re.compile(r"[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{43}")


@schemathesis.hook
def before_call(ctx: Any, case: Any, kwargs: dict[str, Any]) -> None:
    query = case.query
    if isinstance(query, dict) and isinstance(query.get("cursor"), str) and SIGNED_SHAPE.fullmatch(query["cursor"]):
        del query["cursor"]


@schemathesis.hook
def after_call(ctx: Any, case: Any, response: Any) -> None:
    log = os.environ.get("DREC_FUZZ_LOG")
    if log:
        with open(log, "a") as out:
            out.write(f"{response.status_code} {case.method} {case.path}\n")
