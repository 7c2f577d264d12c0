"""Pull configuration through the API (in-process moto, SSM included) and the puller against a real HTTP partner."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

import pytest

from chalicelib.domain.pull import backoff_minutes, mapped_reading, page_url, private_address
from chalicelib.domain.time import now_utc
from tests.conftest import Api, registered_device
from tests.support.partner import Partner, hourly_rows, pull_body, serving

PUBLIC = "https://93.184.215.14/api/readings"  # an IP literal: checked without DNS


@pytest.fixture
def pulls(api: Api, monkeypatch: pytest.MonkeyPatch) -> Api:
    """The API with private partner addresses allowed (the partner in these tests is on loopback)."""
    from chalicelib import bootstrap

    monkeypatch.setenv("DREC_PULL_ALLOW_PRIVATE", "1")
    monkeypatch.setenv("DREC_PULL_LEASE_S", "2")
    bootstrap.reset()
    return api


def _config(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"url": PUBLIC, "every_minutes": 10, "signed": False,
                            "mapping": {"device_id": "d", "period_start": "s", "period_end": "e", "energy_wh": "wh"}}
    body.update(overrides)
    return body


@pytest.mark.parametrize("url", [
    "http://169.254.169.254/latest/meta-data/", "http://127.0.0.1:8000/x", "http://localhost/x",
    "http://10.1.2.3/x", "http://192.168.0.9/x", "http://[::1]/x", "http://[::ffff:169.254.169.254]/x",
    "http://[fe80::1]/x", "http://100.64.0.1/x", "http://0.0.0.0/x",
])
def test_internal_addresses_are_refused_naming_url(api: Api, url: str) -> None:
    # GIVEN a source WHEN it points its pull at an internal address (private addresses not allowed)
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    status, body = api.post(f"/sources/{source['source_id']}/pull", _config(url=url), key=source["api_key"])
    # THEN 422 (the document admits any URL string; the registry's rule refuses it) naming url
    assert status == 422, body
    assert body["error"]["field"] == "url" and "internal" in body["error"]["message"]


@pytest.mark.parametrize(("overrides", "field"), [
    ({"url": "ftp://93.184.215.14/x"}, "url"),
    ({"url": "https://user:secret@93.184.215.14/x"}, "url"),
    ({"url": "not a url at all"}, "url"),
    ({"url": "http://93.184.215.14/api/readings"}, "url"),  # public, but not https
    ({"signed": True}, "mapping.signature"),
])
def test_configurations_the_document_admits_but_the_rules_refuse_are_422_naming_the_field(
        api: Api, overrides: dict[str, Any], field: str) -> None:
    # (a 400 says "does not match the document": schema-driven clients rely on it; see the fuzz test)
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    status, body = api.post(f"/sources/{source['source_id']}/pull", _config(**overrides))
    assert status == 422, body
    assert body["error"]["field"] == field, body
    assert "secret" not in json.dumps(body)


@pytest.mark.parametrize(("overrides", "field"), [
    ({"mapping": {"device_id": "d", "period_start": "s", "period_end": "e"}}, "mapping.energy_wh"),
    ({"mapping": {"device_id": "d", "period_start": "s", "period_end": "e", "energy_wh": "a..b"}}, "mapping.energy_wh"),
    ({"every_minutes": 0}, "every_minutes"),
    ({"every_minutes": 1441}, "every_minutes"),
    ({"page_size": 1001}, "page_size"),
    ({"cursor_param": "limit"}, "cursor_param"),
    ({"auth_header": {"name": "Host", "value": "x"}}, "auth_header.name"),
    ({"auth_header": {"name": "X-Token", "value": "a\nb"}}, "auth_header.value"),
])
def test_bad_configurations_are_400_naming_the_field(api: Api, overrides: dict[str, Any], field: str) -> None:
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    status, body = api.post(f"/sources/{source['source_id']}/pull", _config(**overrides))
    assert status == 400, body
    assert body["error"]["field"] == field, body
    assert "secret" not in json.dumps(body)


def test_who_may_configure_and_the_auth_value_is_never_shown(api: Api, aws: Any) -> None:
    # GIVEN two sources and an account
    source, account, _ = registered_device(api)
    _, other = api.post("/sources", {"name": "Other", "kind": "aggregator"})
    secret = "Bearer s3cr3t-partner-token"
    body = _config(auth_header={"name": "Authorization", "value": secret})
    path = f"/sources/{source['source_id']}/pull"
    answers: list[Any] = []
    # THEN others are refused, an unknown source is 404, no key is 401
    for key, expected in ((other["api_key"], 403), (account["api_key"], 403), (None, 401)):
        status, answer = api.post(path, body, key=key)
        answers.append(answer)
        assert status == expected, answer
    status, answer = api.post("/sources/src-nope/pull", body)
    assert status == 404 and answer["error"]["field"] == "source_id"
    assert api.get(path, key=other["api_key"])[0] == 403
    # WHEN the source sets it, then again, then changed
    status, created = api.post(path, body, key=source["api_key"])
    assert (status, created["change"]) == (201, "created"), created
    status, same = api.post(path, body, key=source["api_key"])
    assert (status, same["change"], same["generation"]) == (200, "unchanged", 1), same
    status, replaced = api.post(path, {**body, "every_minutes": 30}, key=source["api_key"])
    assert (status, replaced["change"], replaced["generation"]) == (200, "replaced", 2), replaced
    status, shown = api.get(path, key=source["api_key"])
    assert status == 200 and shown["every_minutes"] == 30 and shown["auth_header"]["name"] == "Authorization"
    operator_view = api.get(path, key="drec_test_operator_key")[1]
    answers += [created, same, replaced, shown, operator_view]
    # THEN the value sits in one SecureString under the stack's prefix, and in no answer or event
    ssm = aws.client("ssm")
    (parameter,) = ssm.describe_parameters()["Parameters"]
    assert parameter["Type"] == "SecureString"
    assert parameter["Name"].startswith(f"/drec-test/pull/{source['source_id']}/auth-")
    assert ssm.get_parameter(Name=parameter["Name"], WithDecryption=True)["Parameter"]["Value"] == secret
    events = api.every_event()["items"]
    kinds = [e["type"] for e in events if e["subject_id"] == source["source_id"]]
    assert kinds == ["SourceRegistered", "PullConfigured", "PullReconfigured"], kinds
    assert "s3cr3t" not in json.dumps(answers) + json.dumps(events)
    stored = aws.client("dynamodb").scan(TableName="drec-test-pulls")["Items"]
    assert "s3cr3t" not in json.dumps(stored)
    # WHEN it is removed (twice) THEN the secret is gone and GET is 404
    status, removed = api.call("delete", path, key=source["api_key"])
    assert (status, removed["removed"]) == (200, True), removed
    assert api.call("delete", path, key=source["api_key"])[1]["removed"] is False
    assert ssm.describe_parameters()["Parameters"] == []
    assert api.get(path, key=source["api_key"])[0] == 404
    assert [e["type"] for e in api.every_event()["items"] if e["type"].startswith("Pull")][-1] == "PullRemoved"


def test_a_revoked_source_cannot_be_configured(api: Api) -> None:
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    api.post(f"/sources/{source['source_id']}/revoke")
    status, body = api.post(f"/sources/{source['source_id']}/pull", _config())
    assert status == 422 and body["error"]["field"] == "source_id", body


def test_the_puller_takes_pages_in_refuses_bad_rows_and_records_the_run(pulls: Api, aws: Any) -> None:
    from chalicelib import bootstrap

    api = pulls
    # GIVEN a partner with 25 readings of two devices, one of them of an unknown device, behind a token
    source, _, device = registered_device(api)
    _, _, second = registered_device(api)
    rows = hourly_rows([device["device_id"]], 24)
    rows.insert(7, {**rows[0], "meter": {"id": "dev-unknown"}})
    with serving(Partner(rows, token="tok-123")) as partner:
        path = f"/sources/{source['source_id']}/pull"
        assert api.post(path, pull_body(partner, page_size=10), key=source["api_key"])[0] == 201
        # WHEN the schedule runs
        counts = bootstrap.container().puller().pull_due()
    # THEN 24 readings are queued, the unknown device is refused with its page and index, the run is partial
    assert counts["runs"] == 1 and counts["queued"] == 24, counts
    assert all(r["headers"].get("x-partner-token") == "tok-123" for r in partner.requests)
    assert [r["query"].get("limit") for r in partner.requests] == ["10", "10", "10"]
    (run,) = api.get(f"{path}/runs", key=source["api_key"])[1]["items"]
    assert (run["status"], run["pages"], run["readings"], run["queued"], run["refused"]) == ("partial", 3, 25, 24, 1)
    (error,) = run["errors"]
    assert (error["page"], error["index"], error["field"]) == (1, 7, "device_id") and "dev-unknown" in error["error"]
    assert run["caught_up"] and run["cursor_before"] is None and run["next_cursor"] == "20"
    # and the source's other device is untouched; the source is due again in every_minutes
    assert second["device_id"] not in json.dumps(run)
    shown = api.get(path, key=source["api_key"])[1]
    assert shown["cursor"] == "20" and shown["failures"] == 0 and shown["last_status"] == "partial"


def test_two_pullers_never_hold_one_source_and_a_lapsed_lease_is_taken_again(pulls: Api) -> None:
    from chalicelib import bootstrap

    api = pulls
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    assert api.post(f"/sources/{source['source_id']}/pull", _config())[0] == 201
    store = bootstrap.container().pulls
    now = now_utc()
    stamp = (now + timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (now + timedelta(seconds=300)).strftime("%Y-%m-%dT%H:%M:%SZ")
    won: list[Any] = []
    barrier = threading.Barrier(8)

    def take(owner: str) -> None:
        barrier.wait()
        won.append(store.take_lease(source["source_id"], owner, stamp, later))

    threads = [threading.Thread(target=take, args=(f"p{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    held = [lease for lease in won if lease is not None]
    assert len(held) == 1, won
    assert store.due(stamp, 10) == []
    # WHEN the holder dies and its lease runs out THEN another takes it
    assert store.due(later, 10) == [source["source_id"]]
    assert store.take_lease(source["source_id"], "p-late", later, later) is not None
    assert store.save_cursor(held[0], "stale") is False  # the dead puller's lease no longer moves the cursor


def test_a_revoked_source_is_not_pulled(pulls: Api) -> None:
    from chalicelib import bootstrap

    api = pulls
    source, _, device = registered_device(api)
    with serving(Partner(hourly_rows([device["device_id"]], 3))) as partner:
        assert api.post(f"/sources/{source['source_id']}/pull", pull_body(partner))[0] == 201
        api.post(f"/sources/{source['source_id']}/revoke")
        counts = bootstrap.container().puller().pull_due()
    assert counts["runs"] == 0 and partner.requests == []
    assert bootstrap.container().pulls.due("9999-01-01T00:00:00Z", 10) == []


def test_pull_now_marks_the_source_due(pulls: Api) -> None:
    from chalicelib import bootstrap

    api = pulls
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    path = f"/sources/{source['source_id']}/pull"
    assert api.post(f"{path}/runs")[0] == 404
    api.post(path, _config())
    store = bootstrap.container().pulls
    lease = store.take_lease(source["source_id"], "p", "9999-01-01T00:00:00Z", "9999-01-01T00:00:10Z")
    assert lease is not None
    status, body = api.post(f"{path}/runs", key=source["api_key"])
    assert status == 202 and body["running"] is True, body


def test_rules_of_the_partner_protocol() -> None:
    assert page_url("https://p.example/r?key=1&limit=9", "after", "a b", 500) == \
        "https://p.example/r?key=1&after=a+b&limit=500"
    assert page_url("https://p.example/r", "after", None, 5) == "https://p.example/r?limit=5"
    assert mapped_reading({"m": {"id": "d"}, "wh": 5, "x": None}, {"device_id": "m.id", "energy_wh": "wh",
                                                                     "external_id": "x"}) == {"device_id": "d",
                                                                                              "energy_wh": 5}
    assert all(private_address(a) for a in ("127.0.0.1", "169.254.169.254", "::ffff:10.0.0.1", "fd00::1", "224.0.0.1"))
    assert not private_address("93.184.215.14")
    for failures in range(0, 12):
        minutes = backoff_minutes(10, failures)
        assert 0.9 * min(1440, 10 * 2 ** failures) <= minutes <= 1.1 * min(1440, 10 * 2 ** failures)


def test_a_partner_that_resolves_to_an_internal_address_is_refused_at_pull_time(
        pulls: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import bootstrap

    api = pulls
    # GIVEN a pull configured while private addresses were allowed, to a name that resolves to loopback
    source, _, device = registered_device(api)
    with serving(Partner(hourly_rows([device["device_id"]], 3))) as partner:
        url = partner.url.replace("127.0.0.1", "localhost")
        assert api.post(f"/sources/{source['source_id']}/pull", pull_body(partner, url=url))[0] == 201
        # WHEN they are no longer allowed and the schedule runs
        monkeypatch.delenv("DREC_PULL_ALLOW_PRIVATE")
        bootstrap.reset()
        counts = bootstrap.container().puller().pull_due()
    # THEN the partner is never asked, the run failed naming the address, and the source backs off
    assert counts["failed"] == 1 and partner.requests == []
    (run,) = api.get(f"/sources/{source['source_id']}/pull/runs", key=source["api_key"])[1]["items"]
    assert run["status"] == "failed" and "internal address" in run["errors"][0]["error"], run
    assert api.get(f"/sources/{source['source_id']}/pull", key=source["api_key"])[1]["failures"] == 1


def test_pulled_readings_queued_again_change_nothing_in_the_validator(pulls: Api, aws: Any) -> None:
    from chalicelib import bootstrap
    from chalicelib.domain.readings import id_messages
    from tests.conftest import pump

    api = pulls
    # GIVEN pulled readings, judged
    source, _, device = registered_device(api)
    with serving(Partner(hourly_rows([device["device_id"]], 12))) as partner:
        api.post(f"/sources/{source['source_id']}/pull", pull_body(partner))
        assert bootstrap.container().puller().pull_due()["queued"] == 12
    pump(aws)
    readings = api.get(f"/devices/{device['device_id']}/readings?limit=100")[1]["items"]
    events = api.every_event()["items"]
    assert len(readings) == 12 and all(r["status"] != "queued" for r in readings)
    # WHEN their ids are queued again (a page pulled twice whose intake queued them again)
    bootstrap.container().queue("readings").send_json(id_messages([r["reading_id"] for r in readings]))
    pump(aws)
    # THEN no verdict and no event changes
    assert api.get(f"/devices/{device['device_id']}/readings?limit=100")[1]["items"] == readings
    assert api.every_event()["items"] == events
