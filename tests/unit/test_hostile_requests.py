"""The replay corpus of hostile requests: each answers a precise 4xx in the error schema, never a 5xx.

Every class the reliability issue listed is here, driven through the in-process Chalice client on an
in-memory AWS: empty filters, absurd `limit`/`cursor`, forged cursors on every list endpoint,
out-of-range numbers and dates, control characters in names and ids, wrong media types, huge bodies.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import OPERATOR_KEY, Api, device_body, registered_device
from tests.support.hostile_corpus import ABSURD_LIMITS, FORGED_CURSORS

LISTS = ["/sources", "/accounts", "/devices", "/drecs", "/events", "/readings?status=accepted",
         "/devices/D/readings", "/transfers?account_id=A", "/redemptions?account_id=A"]


def refused(status: int, body: Any, field: str | None = None, code: int | None = None) -> None:
    """A 4xx in the error schema, naming `field` when given."""
    assert 400 <= status < 500, (status, body)
    if code is not None:
        assert status == code, (status, body)
    assert set(body) == {"error"}, body
    assert set(body["error"]) >= {"code", "message", "field"}, body
    assert body["error"]["message"]
    if field is not None:
        assert body["error"]["field"] == field, body


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _with(path: str, query: str) -> str:
    return path + ("&" if "?" in path else "?") + query


# -- paging ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("limit", list(ABSURD_LIMITS.values()), ids=list(ABSURD_LIMITS))
def test_an_absurd_limit_is_a_400_naming_limit(api: Api, path: str, limit: str) -> None:
    refused(*api.get(_with(path, f"limit={limit}")), field="limit", code=400)


FORGED = list(FORGED_CURSORS.values())  # shared with the replay against the running stack


@pytest.mark.parametrize("path", LISTS)
@pytest.mark.parametrize("cursor", FORGED, ids=list(FORGED_CURSORS))
def test_a_cursor_the_server_did_not_issue_is_a_400_naming_cursor(api: Api, path: str, cursor: str) -> None:
    if "/devices/D/" in path:  # the device must exist, else its 404 comes first
        path = path.replace("/D/", f"/{registered_device(api)[2]['device_id']}/")
    refused(*api.get(_with(path, f"cursor={cursor}")), field="cursor", code=400)


def test_an_issued_cursor_pages_on_and_cannot_be_replayed_elsewhere(api: Api) -> None:
    for i in range(3):
        assert api.post("/sources", {"name": f"S{i}", "kind": "aggregator"})[0] == 201
    status, first = api.get("/sources?limit=2")
    assert status == 200 and len(first["items"]) == 2 and first["next_cursor"]
    status, second = api.get(f"/sources?limit=2&cursor={first['next_cursor']}")
    assert status == 200 and len(second["items"]) == 1
    assert {s["source_id"] for s in first["items"]}.isdisjoint(s["source_id"] for s in second["items"])
    refused(*api.get(f"/accounts?cursor={first['next_cursor']}"), field="cursor", code=400)
    tampered = first["next_cursor"][:-2] + ("AA" if not first["next_cursor"].endswith("AA") else "BB")
    refused(*api.get(f"/sources?cursor={tampered}"), field="cursor", code=400)


# -- empty filters -------------------------------------------------------------------------------
@pytest.mark.parametrize("query", ["owner_account_id=", "country=", "device_type=", "owner_account_id=&country=",
                                   "country=%00%00", "device_type=%01"])
def test_an_empty_or_control_filter_on_devices_is_a_400(api: Api, query: str) -> None:
    refused(*api.get(f"/devices?{query}"), code=400)


@pytest.mark.parametrize("query", ["owner_account_id=", "country=", "device_type=", "status=", "vintage=",
                                   "offtaker_type=", "owner_account_id=%00"])
def test_an_empty_or_control_filter_on_drecs_is_a_400(api: Api, query: str) -> None:
    refused(*api.get(f"/drecs?{query}"), code=400)


# -- control characters in names and ids -----------------------------------------------------------
@pytest.mark.parametrize("name", ["a\u0000b", "tab\there", "bell\u0007", "del\u007f", "nl\nname", "\u0085"])
def test_control_characters_in_a_source_name_are_refused(api: Api, name: str) -> None:
    refused(*api.post("/sources", {"name": name, "kind": "aggregator"}), field="name", code=400)


@pytest.mark.parametrize("field,value", [("name", "x\u0000"), ("external_id", "e\u0001"), ("contact", "c\u0000")])
def test_control_characters_in_an_account_are_refused(api: Api, field: str, value: str) -> None:
    body = {"name": "Dev", "kind": "developer", "country": "KE", field: value}
    refused(*api.post("/accounts", body), field=field, code=400)


def test_control_characters_in_device_ids_are_refused(api: Api) -> None:
    source, account, _ = registered_device(api)
    body = device_body(account["account_id"], external_id="m\u0000")
    refused(*api.post("/devices", body, key=source["api_key"]), field="external_id", code=400)
    refused(*api.post("/devices", device_body("a\u0000b"), key=source["api_key"]), field="owner_account_id")


@pytest.mark.parametrize("path", ["/sources/a%00b", "/accounts/a%00b", "/devices/a%00b", "/drecs/a%00b",
                                  "/events/a%00b", "/readings/a%00b", "/redemptions/a%00b",
                                  "/accounts/a%00b/holdings", "/devices/a%00b/readings"])
def test_a_nul_in_a_path_id_is_a_4xx(api: Api, path: str) -> None:
    refused(*api.get(path, key=OPERATOR_KEY))


def test_a_40000_character_path_id_is_a_4xx(api: Api) -> None:
    for path in ("/sources/", "/accounts/", "/devices/", "/drecs/", "/events/", "/readings/"):
        refused(*api.get(path + "x" * 40_000, key=OPERATOR_KEY))


# -- numbers ------------------------------------------------------------------------------------
@pytest.mark.parametrize("field,raw", [
    ("battery_wh", "1e308"), ("battery_wh", "Infinity"), ("battery_wh", "NaN"), ("battery_wh", "1" + "0" * 400),
    ("battery_wh", "1e400"), ("capacity_w", "5e-324"), ("capacity_w", "1e308"), ("latitude", "5e-324"),
    ("tilt_deg", "5e-324"), ("longitude", "-Infinity"), ("azimuth_deg", "2.2250738585072014e-309"),
])
def test_out_of_range_device_numbers_are_a_400_naming_the_field(api: Api, field: str, raw: str) -> None:
    source, account, _ = registered_device(api)
    text = json.dumps(device_body(account["account_id"], **{field: 1.0}))
    text = text.replace(f'"{field}": 1.0', f'"{field}": {raw}')
    status, body = api.post("/devices", key=source["api_key"], raw=text)
    refused(status, body, field=field, code=400)


def _reading(device_id: str, start: str = "2026-10-14T09:00:00Z", end: str = "2026-10-14T10:00:00Z",
             energy_wh: Any = 60) -> dict[str, Any]:
    return {"device_id": device_id, "period_start": start, "period_end": end, "energy_wh": energy_wh}


def test_a_huge_energy_refuses_only_that_item(api: Api) -> None:
    source, _, device = registered_device(api)
    d = device["device_id"]
    status, body = api.post("/readings", {"readings": [_reading(d, energy_wh=10**38), _reading(d)]},
                            key=source["api_key"])
    assert status == 202, body
    assert len(body["accepted"]) == 1
    [error] = body["errors"]
    assert error["index"] == 0 and error["error"]["field"].endswith("energy_wh"), error


@pytest.mark.parametrize("start,end", [
    ("0001-01-01T00:00:00+01:00", "0001-01-01T02:00:00+01:00"),     # year 0 in UTC
    ("9999-12-31T23:00:00-02:00", "9999-12-31T23:30:00-02:00"),     # year 10000 in UTC
    ("9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59-23:59"),
])
def test_a_period_outside_years_1_to_9999_in_utc_refuses_only_that_item(api: Api, start: str, end: str) -> None:
    source, _, device = registered_device(api)
    d = device["device_id"]
    status, body = api.post("/readings", {"readings": [_reading(d, start, end), _reading(d)]}, key=source["api_key"])
    assert status == 202, body
    assert len(body["accepted"]) == 1 and len(body["errors"]) == 1, body
    assert body["errors"][0]["index"] == 0 and body["errors"][0]["error"]["field"].endswith("period_start"), body


@pytest.mark.parametrize("start,end", [
    ("0001-01-01T00:00:00+01:00", "0001-01-01T02:00:00+01:00"),
    ("9999-12-31T23:00:00-02:00", "9999-12-31T23:30:00-02:00"),
])
def test_a_payment_outside_years_1_to_9999_in_utc_is_a_422(api: Api, start: str, end: str) -> None:
    # A date-time the schema admits, refused by a rule beyond it: 422, not 400 (400 is "does not match the schema").
    source, _, device = registered_device(api)
    refused(*api.post("/payments", {"device_id": device["device_id"], "paid_from": start, "paid_until": end},
                      key=source["api_key"]), code=422)


def test_a_csv_row_outside_years_1_to_9999_in_utc_is_reported_alone(api: Api) -> None:
    source, _, device = registered_device(api)
    d = device["device_id"]
    csv = ("device_id,period_start,period_end,energy_wh\n"
           f"{d},0001-01-01T00:00:00+01:00,0001-01-01T02:00:00+01:00,10\n"
           f"{d},2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,60\n")
    status, report = api.post("/uploads?name=x.csv", key=source["api_key"], raw=csv)
    assert status == 200, report
    assert report["queued"] == 1 and report["error_count"] == 1, report
    assert report["errors"][0]["line"] == 2 and report["errors"][0]["error"]["field"].endswith("period_start"), report


# -- media types and sizes -------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/sources", "/accounts", "/devices", "/readings", "/transfers", "/redemptions"])
@pytest.mark.parametrize("media", ["text/plain", "application/xml", "image/png", "multipart/form-data; boundary=x"])
def test_an_unsupported_media_type_is_a_415_in_the_error_schema(api: Api, path: str, media: str) -> None:
    response = api.client.http.post(path, headers={"Content-Type": media, "X-Api-Key": OPERATOR_KEY}, body="{}")
    body = json.loads(response.body)
    refused(response.status_code, body, code=415)


@pytest.mark.parametrize("path,media", [("/sources", "application/json"), ("/uploads?name=x.csv", "text/csv")])
def test_a_body_over_10_mb_is_a_413_in_the_error_schema(api: Api, path: str, media: str) -> None:
    response = api.client.http.post(path, headers={"Content-Type": media, "X-Api-Key": OPERATOR_KEY},
                                    body="x" * (10 * 1024 * 1024 + 1))
    refused(response.status_code, json.loads(response.body), code=413)


@pytest.mark.parametrize("raw", ["", "null", "[]", "\"s\"", "{", "{\"name\": \"a\u0000\"", "\x00", "\ud800"])
def test_a_malformed_body_is_a_400_naming_the_body(api: Api, raw: str) -> None:
    response = api.client.http.post("/sources", headers={"Content-Type": "application/json",
                                                         "X-Api-Key": OPERATOR_KEY},
                                    body=raw.encode("utf-8", "surrogatepass"))
    refused(response.status_code, json.loads(response.body), code=400)
