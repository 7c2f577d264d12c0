"""The portal's static assets: served with the right types and never outside static/; vendored copies pinned."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice
from chalice.test import Client

from chalicelib.portal import STATIC, portal

REPO = Path(__file__).resolve().parents[2]
VENDORED = {  # served name → file inside node_modules
    "preact.mjs": "preact/dist/preact.mjs",
    "preact-hooks.mjs": "preact/hooks/dist/hooks.mjs",
    "htm.mjs": "htm/dist/htm.module.js",
    "chart.umd.min.js": "chart.js/dist/chart.umd.min.js",
    "d3-array.mjs": "d3-array/dist/d3-array.min.mjs",
    "d3-geo.mjs": "d3-geo/dist/d3-geo.min.mjs",
    "topojson-client.min.js": "topojson-client/dist/topojson-client.min.js",
    "countries-110m.json": "world-atlas/countries-110m.json",
    "countries-50m.json": "world-atlas/countries-50m.json",
}


@pytest.fixture
def client() -> Iterator[Any]:
    app = Chalice(app_name="portal-test")
    app.register_blueprint(portal)
    with Client(app) as test_client:
        yield test_client


class _References(HTMLParser):
    """src/href of index.html and the import map's targets."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self._in_import_map = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self._in_import_map = tag == "script" and values.get("type") == "importmap"
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))

    def handle_data(self, data: str) -> None:
        if self._in_import_map:
            self.urls.extend(json.loads(data)["imports"].values())
            self._in_import_map = False


def _static_path(url: str) -> Path:
    relative = url.removeprefix("./")
    assert relative.startswith("portal/"), f"{url} is not a portal asset"
    return STATIC / relative.removeprefix("portal/")


def test_index_is_served_at_the_root_as_html(client: Any) -> None:
    # GIVEN an app with the portal blueprint WHEN the browser asks for /
    response = client.http.get("/")
    # THEN it gets index.html, as HTML, with an ETag to revalidate against
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b'<div id="root">' in response.body
    again = client.http.get("/", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize(("path", "content_type"), [
    ("/portal/app.js", "text/javascript; charset=utf-8"),
    ("/portal/pages/drecs.js", "text/javascript; charset=utf-8"),
    ("/portal/vendor/preact.mjs", "text/javascript; charset=utf-8"),
    ("/portal/portal.css", "text/css; charset=utf-8"),
    ("/portal/icon.svg", "image/svg+xml; charset=utf-8"),
])
def test_assets_carry_their_content_type(client: Any, path: str, content_type: str) -> None:
    response = client.http.get(path)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("path", [
    "/portal/..%2F__init__.py", "/portal/%2E%2E/__init__.py", "/portal/../__init__.py", "/portal/.hidden",
    "/portal/other/app.js", "/portal/pages/..", "/portal/nothing.js", "/portal/vendor.js",
])
def test_nothing_outside_the_static_folder_is_served(client: Any, path: str) -> None:
    response = client.http.get(path)
    assert response.status_code in (403, 404)
    assert b"Blueprint" not in response.body and b"require(" not in response.body


def test_index_references_only_existing_assets() -> None:
    parser = _References()
    parser.feed((STATIC / "index.html").read_text())
    local = [url for url in parser.urls if not url.startswith(("http:", "https:"))]
    assert "portal/app.js" in local and "./portal/vendor/preact.mjs" in local
    for url in local:
        assert _static_path(url).is_file(), f"index.html references missing {url}"


def test_module_imports_resolve_to_existing_files() -> None:
    imports = re.compile(r"""^\s*import\s[^'"]*['"]([^'"]+)['"]""", re.MULTILINE)
    bare = {"preact", "preact/hooks", "htm", "d3-geo"}  # the import map in index.html names these
    modules = [p for p in STATIC.rglob("*.js") if p.parent.name != "vendor"]
    assert len(modules) >= 8
    for module in modules:
        for target in imports.findall(module.read_text()):
            if target in bare:
                continue
            assert (module.parent / target).resolve().is_file(), f"{module.name} imports missing {target}"


def test_vendored_files_equal_the_pinned_node_modules() -> None:
    modules = REPO / "node_modules"
    if not (modules / "preact").is_dir():
        pytest.skip("node_modules is not installed (run `make deps`)")
    pins = json.loads((REPO / "package.json").read_text())["dependencies"]
    assert json.loads((STATIC / "vendor" / "versions.json").read_text()) == {
        name: pins[name] for name in ("chart.js", "d3-array", "d3-geo", "htm", "preact", "topojson-client",
                                      "world-atlas")}
    for served, source in VENDORED.items():
        assert (STATIC / "vendor" / served).read_bytes() == (modules / source).read_bytes(), served


def test_browser_is_root_selector_matches_the_contract_abi() -> None:
    from eth_hash.auto import keccak

    abi = json.loads((REPO / "chalicelib" / "contracts_build" / "DrecLedger.json").read_text())["abi"]
    is_root = next(item for item in abi if item.get("name") == "isRoot")
    signature = f"isRoot({','.join(i['type'] for i in is_root['inputs'])})"
    selector = "0x" + keccak(signature.encode()).hex()[:8]
    assert f"IS_ROOT_SELECTOR = '{selector}'" in (STATIC / "chain.js").read_text()
