"""Schemathesis over every operation of /openapi.json, and the hostile corpus, against the running stack.

Zero 5xx and zero schema violations: the fuzz run uses every check of schemathesis (status codes,
content types, headers, response schemas, positive data accepted, negative data refused, undeclared
methods, auth) with a fixed seed and bounded examples; it fails with schemathesis's own report,
which prints a curl command reproducing each failure. The figures for the README are printed.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import REPO, RunningStack, started_stack
from tests.support.hostile_corpus import Case, cases

SEED = 20261127
# `make test` keeps the run near two minutes; `make fuzz` goes deeper (DREC_FUZZ_EXAMPLES=8).
MAX_EXAMPLES = int(os.environ.get("DREC_FUZZ_EXAMPLES", "4"))

# Every check is on (`-c all`). Where the run is configured, the reason is beside it.
CONFIG = """\
seed = {seed}
workers = 1
request-timeout = 60
[cache]
# The same run every time: no crashes replayed from an earlier run, no files left in the work tree.
enabled = false
[generation]
max-examples = {max_examples}
database = "none"
[checks.positive_data_acceptance]
# A schema-valid request may still break a rule beyond any JSON Schema (quantity above holdings, an
# unregistered device, a period in the wrong order): that is a 422 (API.md), or 404/409; never a 400.
expected-statuses = ["2xx", 401, 403, 404, 409, 422]
[phases.coverage]
# Every undeclared method, TRACE included (infra/api_local.py hands it to the app), must be a 405.
unexpected-methods = ["get", "put", "post", "delete", "options", "patch", "trace"]
[phases.examples]
fill-missing = true
[dictionaries.accounts]
values = {accounts}
[dictionaries.devices]
values = {devices}
[dictionaries.sources]
values = {sources}
[parameters."path.account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."query.account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."query.owner_account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."body.owner_account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."body.from_account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."body.account_id"]
dictionary = "accounts"
probability = 0.5
[parameters."path.device_id"]
dictionary = "devices"
probability = 0.5
[parameters."body.device_id"]
dictionary = "devices"
probability = 0.5
[parameters."path.source_id"]
dictionary = "sources"
probability = 0.5
[[operations]]
include-path = "/uploads/url"
# Presigned upload URLs are for sources only: the operator's key is a 403 there.
headers = {{ "X-Api-Key" = "{source_key}" }}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """A stack of its own: the thousands of registrations the fuzzer makes stay out of the shared one."""
    with started_stack(tmp_path_factory.mktemp("fuzz-stack")) as running:
        yield running


@pytest.fixture(scope="module")
def world(stack: RunningStack) -> dict[str, str]:
    """A source, an account and a device, so generated ids sometimes hit real resources.

    The corpus runs first: the fuzz run may rotate or revoke these keys.
    """
    source = stack.post("/sources", {"name": "Fuzz source", "kind": "aggregator"}).json()
    account = stack.post("/accounts", {"name": "Fuzz account", "kind": "developer", "country": "KE"},
                         key=source["api_key"]).json()
    device = stack.post("/devices", {"owner_account_id": account["account_id"], "device_type": "solar_home_system",
                                     "capacity_w": 100, "latitude": -1.29, "longitude": 36.82, "country": "KE",
                                     "commissioning_date": "2025-01-15", "offtaker_type": "household"},
                        key=source["api_key"]).json()
    return {"source": source["source_id"], "source_key": source["api_key"], "account": account["account_id"],
            "device": device["device_id"]}


def _send(stack: RunningStack, world: dict[str, str], case: Case) -> requests.Response:
    def fill(text: str) -> str:
        return text.replace("{device}", world["device"]).replace("{account}", world["account"])

    headers = {"Content-Type": case.media}
    if case.key != "none":
        headers["X-Api-Key"] = world["source_key"] if case.key == "source" else stack.operator_key
    body = fill(case.body.decode("utf-8", "surrogatepass")).encode("utf-8", "surrogatepass") \
        if case.body is not None and len(case.body) < 1024 * 1024 else case.body
    return requests.request(case.method, stack.url + fill(case.path), data=body, headers=headers, timeout=120)


def _error_field(status: int, body: Any) -> str | None:
    """The field an answer refuses: the error's own, or (a 202 batch, a 200 report) its first item's."""
    if status == 202:
        return body["errors"][0]["error"]["field"]
    if status == 200:
        return body["errors"][0]["error"].get("field")
    assert set(body) == {"error"} and set(body["error"]) >= {"code", "message", "field"}, body
    assert body["error"]["message"]
    return body["error"]["field"]


def test_the_hostile_corpus_is_refused_in_the_error_schema(stack: RunningStack, world: dict[str, str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    corpus = cases()
    wrong: list[str] = []
    server_errors = 0
    for case in corpus:
        response = _send(stack, world, case)
        server_errors += response.status_code >= 500
        try:
            expected = case.status or response.status_code
            assert response.status_code == expected and (case.status or 400 <= response.status_code < 500)
            field = _error_field(response.status_code, response.json())
            assert case.field is None or field == case.field, field
        except (AssertionError, ValueError, KeyError, IndexError) as exc:
            wrong.append(f"{case.name}: {case.method} {case.path[:120]} -> {response.status_code} "
                         f"{response.text[:300]} ({exc})")
    with capsys.disabled():  # the README's figures, shown under plain `make test` too
        print(f"\nhostile corpus: {len(corpus)} cases replayed against the stack, {server_errors} 5xx seen")
    assert not wrong, "\n".join(wrong)


def test_schemathesis_finds_no_5xx_and_no_schema_violation(stack: RunningStack, world: dict[str, str],
                                                           tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG.format(seed=SEED, max_examples=MAX_EXAMPLES, accounts=json.dumps([world["account"]]),
                                    devices=json.dumps([world["device"]]), sources=json.dumps([world["source"]]),
                                    source_key=world["source_key"]))
    log = tmp_path / "responses.log"
    env = dict(os.environ, SCHEMATHESIS_HOOKS="tests.e2e.fuzz_hooks", DREC_FUZZ_LOG=str(log), NO_COLOR="1")
    run = subprocess.run(
        [str(Path(sys.executable).parent / "st"), "--config-file", str(config), "run", f"{stack.url}/openapi.json",
         "-H", f"X-Api-Key: {stack.operator_key}", "--checks", "all",
         "--phases", "examples,coverage,fuzzing,stateful", "--no-color"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    statuses = [int(line.split()[0]) for line in log.read_text().splitlines()] if log.exists() else []
    tested = re.search(r"Tested:\s+(\d+)", run.stdout)
    server_errors = sum(1 for s in statuses if s >= 500)
    with capsys.disabled():
        print(f"\nfuzz: {tested.group(1) if tested else '?'} operations fuzzed, {len(statuses)} requests sent, "
              f"{server_errors} 5xx seen (seed {SEED}, at most {MAX_EXAMPLES} examples per operation and phase)")
    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-3000:]
    assert server_errors == 0
    operations = sum(len(ops) for ops in stack.get("/openapi.json").json()["paths"].values())
    assert tested is not None and int(tested.group(1)) == operations, run.stdout[-3000:]
