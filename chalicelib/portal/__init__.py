"""The web portal: index.html at `/` and its static assets at `/portal/...`, served by the API's own app.

Assets are text (HTML, JS modules, CSS, SVG, licences), so API Gateway needs no binary
media types for them. Names are checked against a strict pattern and must resolve inside
`static/`, so no request can read any other file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from chalice import Blueprint, Response

from ..api.request import incoming

STATIC = Path(__file__).resolve().parent / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml; charset=utf-8",
    ".json": "application/json; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
}

# One path segment: letters, digits, dot, dash, underscore; never starting with a dot.
_SEGMENT = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,120}$")
_FOLDERS = frozenset({"pages", "vendor"})

portal = Blueprint(__name__)


# Read on every request (no cache): an edited asset is served at once, and files are small.
def _asset(relative: str) -> tuple[str, str, str] | None:
    """(text, content type, etag) of a static file, or None when it is not a servable asset."""
    path = (STATIC / relative).resolve()
    if STATIC not in path.parents or not path.is_file() or path.suffix not in CONTENT_TYPES:
        return None
    text = path.read_text(encoding="utf-8")
    etag = '"' + hashlib.sha256(text.encode("utf-8")).hexdigest()[:32] + '"'
    return text, CONTENT_TYPES[path.suffix], etag


def asset_response(relative: str, if_none_match: str | None = None) -> Response:
    """The asset at `relative` (inside static/), a 304 when the browser's copy is current, or a 404."""
    parts = relative.split("/")
    valid = all(_SEGMENT.match(part) for part in parts) and (len(parts) == 1 or parts[0] in _FOLDERS)
    found = _asset(relative) if valid and len(parts) <= 2 else None
    if found is None:
        return Response(body="not found\n", status_code=404, headers={"Content-Type": "text/plain; charset=utf-8"})
    text, content_type, etag = found
    # no-cache: the browser revalidates every time (cheap with the ETag), so a deploy is seen at once.
    headers: dict[str, str | list[str]] = {"Content-Type": content_type, "ETag": etag,
                                           "Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    if if_none_match == etag:
        return Response(body="", status_code=304, headers=headers)
    return Response(body=text, status_code=200, headers=headers)


def _if_none_match() -> str | None:
    return incoming(portal).header("if-none-match")


@portal.route("/", methods=["GET"])
def index() -> Response:
    return asset_response("index.html", _if_none_match())


@portal.route("/portal/{name}", methods=["GET"])
def asset(name: str) -> Response:
    return asset_response(name, _if_none_match())


@portal.route("/portal/{folder}/{name}", methods=["GET"])
def nested_asset(folder: str, name: str) -> Response:
    return asset_response(f"{folder}/{name}", _if_none_match())
