"""Pulling 10,000 readings from a partner over real HTTP into the emulator (moto server), across a failing
page and a puller killed between queueing a page and saving its cursor: every good reading queued once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import OPERATOR_KEY, Api, registered_fleet
from tests.integration.test_emulator import PREFIX, REPO, emulator  # noqa: F401  (the emulator fixture)
from tests.support.partner import Partner, hourly_rows, pull_body, serving

DEVICES = 20
HOURS = 500  # 20 devices × 500 hours = 10,000 rows, 20 pages of 500
BAD_AT = 503  # page 2, index 3: a device nobody registered
FAILING_PAGE_AT = 3500  # page 8 answers 500 the first time
SLOW_PAGE_AT = 1500  # page 4 takes 2 s (the read timeout is 30 s)
EVERY_MINUTES = 5


@pytest.fixture
def api_on_emulator(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:  # noqa: F811
    from chalice.test import Client

    import app
    from chalicelib import bootstrap

    for name, value in {"DREC_PREFIX": PREFIX, "DREC_OPERATOR_KEY": OPERATOR_KEY,
                        "DREC_PULL_ALLOW_PRIVATE": "1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("DREC_CHAIN_RPC", "DREC_LEDGER_ADDRESS", "DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    try:
        with Client(app.app) as client:
            yield Api(client)
    finally:
        bootstrap.reset()


def _pull_in_a_process_that_dies_after_page(page: int) -> int:
    """The scheduled handler in its own process, which exits right after `page` is queued (the test-only fault)."""
    env = {**os.environ, "DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE": str(page), "DREC_PULL_LEASE_S": "5"}
    code = ("import app\nfrom infra.dispatcher import LambdaContext, schedule_event\n"
            "app.app.handler_map['pull_sources'](schedule_event('pull_sources', 'us-east-1'), "
            "LambdaContext('pull_sources'))\n")
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=300,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode


def _queued_ids(emulator: Any) -> list[str]:  # noqa: F811
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-readings")["QueueUrl"]
    ids: list[str] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=600,
                                       WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            return ids
        ids += [i for m in messages for i in json.loads(m["Body"])["reading_ids"]]


def _stored_ids(emulator: Any) -> list[str]:  # noqa: F811
    pages = emulator.client("dynamodb").get_paginator("scan").paginate(
        TableName=f"{PREFIX}-readings", ProjectionExpression="id")
    return [item["id"]["S"] for page in pages for item in page["Items"]]


def _minutes_from_now(stamp: str) -> float:
    return (datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - time.time()) / 60


def test_ten_thousand_readings_are_queued_exactly_once_across_a_failing_page_and_a_crash(
        api_on_emulator: Api, emulator: Any) -> None:  # noqa: F811
    from chalicelib import bootstrap

    api = api_on_emulator
    # GIVEN 20 devices and a partner serving 10,000 readings of them in 20 pages, one row of an unknown device,
    # one page that fails once and one slow page
    source, _, fleet = registered_fleet(api, DEVICES)
    devices = [d["device_id"] for d in fleet]
    rows = hourly_rows(devices, HOURS)
    rows[BAD_AT] = {**rows[BAD_AT], "meter": {"id": "dev-not-registered"}}
    partner = Partner(rows, fail_once={FAILING_PAGE_AT}, slow={SLOW_PAGE_AT}, slow_s=2.0, token="partner-secret")
    path = f"/sources/{source['source_id']}/pull"
    with serving(partner):
        status, configured = api.post(path, pull_body(partner, every_minutes=EVERY_MINUTES), key=source["api_key"])
        assert status == 201, configured

        # WHEN the schedule runs: pages 1 to 7 are taken in, page 8 fails
        started = time.monotonic()
        first = bootstrap.container().puller().pull_due()
        first_s = time.monotonic() - started
        # THEN the run failed at page 8, the cursor stays before it, and the source backs off every × 2^1
        assert (first["runs"], first["failed"], first["queued"], first["refused"]) == (1, 1, 3499, 1), first
        shown = api.get(path, key=source["api_key"])[1]
        assert (shown["cursor"], shown["failures"], shown["last_status"]) == (str(FAILING_PAGE_AT), 1, "failed")
        assert 0.9 * 2 * EVERY_MINUTES - 0.1 <= _minutes_from_now(shown["next_due_at"]) <= 1.1 * 2 * EVERY_MINUTES
        assert "HTTP 500" in shown["last_error"]
        assert bootstrap.container().puller().pull_due()["runs"] == 0  # not due while backing off

        # WHEN pulled now, by a process that dies after its second page (page 9) is queued, before its cursor
        assert api.post(f"{path}/runs", key=source["api_key"])[0] == 202
        assert _pull_in_a_process_that_dies_after_page(2) == 75
        held = api.get(path, key=source["api_key"])[1]
        assert held["cursor"] == "4000"  # page 8's cursor saved, page 9's not
        assert held["running_until"] and held["last_status"] == "failed"  # the dead run's lease, never given back
        time.sleep(max(0.0, _minutes_from_now(held["running_until"]) * 60 + 1.0))
        # THEN once its lease lapses the next tick takes the source again, pulls page 9 again and catches up
        started = time.monotonic()
        last = bootstrap.container().puller().pull_due()
        last_s = time.monotonic() - started
    assert (last["runs"], last["ok"], last["queued"], last["refused"]) == (1, 1, 5500, 0), last

    offsets = partner.asked_offsets()
    assert offsets == [*range(0, 4000, 500), 3500, 4000, *range(4000, 10000, 500)], offsets
    assert all(r["headers"].get("x-partner-token") == "partner-secret" for r in partner.requests)
    # THEN every good reading is stored once and queued once: nothing missing, nothing twice
    stored = _stored_ids(emulator)
    queued = _queued_ids(emulator)
    assert len(stored) == len(set(stored)) == 9999
    assert len(queued) == len(set(queued)) == 9999, (len(queued), len(set(queued)))
    assert set(queued) == set(stored)
    # and the runs say so, newest first (the killed run recorded nothing: it never finished)
    runs = api.get(f"{path}/runs?limit=10", key=source["api_key"])[1]["items"]
    assert [r["status"] for r in runs] == ["ok", "failed"], runs
    done, failed = runs
    assert (done["pages"], done["readings"], done["queued"], done["cursor_before"], done["next_cursor"],
            done["caught_up"]) == (12, 6000, 5500, "4000", "9500", True), done
    assert (failed["pages"], failed["queued"], failed["refused"], failed["next_cursor"]) == (7, 3499, 1, "3500")
    bad, page_error = failed["errors"]
    assert (bad["page"], bad["index"], bad["field"]) == (2, 3, "device_id") and "dev-not-registered" in bad["error"]
    assert page_error["page"] == 8 and page_error["index"] is None and "HTTP 500" in page_error["error"]
    shown = api.get(path, key=source["api_key"])[1]
    assert (shown["failures"], shown["last_status"], shown["cursor"]) == (0, "ok", "9500")
    assert _minutes_from_now(shown["next_due_at"]) + 0.1 >= 0.9 * EVERY_MINUTES
    print(f"\npulled 3,500 rows in {first_s:.1f} s, then 6,000 in {last_s:.1f} s")
