"""The replay corpus of hostile requests (reliability issue 12), as data: replayed against the running stack.

Each case is one HTTP request and what it must answer: a 4xx in the error schema naming `field`
(`status` exact when given), never a 5xx. Placeholders in paths and bodies are filled from a small
world registered first: {device} a device, {account} an account, {source_key} its source's key.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

LISTS = ["/sources", "/accounts", "/devices", "/drecs", "/events", "/readings?status=accepted",
         "/devices/{device}/readings", "/transfers?account_id={account}", "/redemptions?account_id={account}"]
MB = 1024 * 1024


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    body: bytes | None = None
    media: str = "application/json"
    status: int | None = None  # None: any 4xx
    field: str | None = None
    key: str = "operator"  # "operator", "source" or "none"


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode()


def _with(path: str, query: str) -> str:
    return path + ("&" if "?" in path else "?") + query


FORGED_CURSORS = {
    "5001 digits": "9" * 5001,
    "not base64": "not%20base64%20at%20all!",
    "json list": _b64([1, 2]),
    "wrong entity": _b64({"pk": {"S": "x"}}),
    "types swapped": _b64({"source_id": {"N": "1"}}),
    "key removed": _b64({}),
    "key extra": _b64({"source_id": {"S": "x"}, "extra": {"S": "y"}}),
    "lone surrogate": base64.urlsafe_b64encode(b'{"source_id": {"S": "\\ud800"}}').decode(),
    "plain value": _b64({"source_id": "plain"}),
    "nul in id": _b64({"source_id": {"S": "a\u0000b"}}),
    "signed shape, forged mac": "eyJwayI6IjEifQ." + "A" * 43,
    "40000-char id": _b64({"source_id": {"S": "x" * 40_000}}),
}
ABSURD_LIMITS = {"5001 digits": "9" * 5001, "empty": "", "exponent": "1e3", "plus": "%2B5",
                 "arabic-indic": "%D9%A3", "hex": "0x10", "zero": "0", "1001": "1001"}


def _json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _device(**overrides: Any) -> dict[str, Any]:
    body = {"owner_account_id": "{account}", "device_type": "solar_home_system", "capacity_w": 100,
            "latitude": -1.29, "longitude": 36.82, "country": "KE", "commissioning_date": "2025-01-15",
            "offtaker_type": "household"}
    body.update(overrides)
    return body


def _raw_device(name: str, raw: str) -> bytes:
    text = json.dumps(_device(**{name: 1.5}))
    return text.replace(f'"{name}": 1.5', f'"{name}": {raw}').encode()


def cases() -> list[Case]:
    out: list[Case] = []
    for path in LISTS:
        for label, limit in ABSURD_LIMITS.items():
            out.append(Case(f"limit {label} on {path}", "GET", _with(path, f"limit={limit}"), status=400,
                            field="limit"))
        for label, cursor in FORGED_CURSORS.items():
            out.append(Case(f"cursor {label} on {path}", "GET", _with(path, f"cursor={cursor}"), status=400,
                            field="cursor"))
    for query, name in [("owner_account_id=", "owner_account_id"), ("country=", "country"),
                        ("device_type=", "device_type"), ("country=%00%00", "country"), ("device_type=%01",
                                                                                          "device_type")]:
        out.append(Case(f"devices filter {query}", "GET", f"/devices?{query}", status=400, field=name))
    for name in ("owner_account_id", "country", "device_type", "status", "offtaker_type", "device_id"):
        out.append(Case(f"drecs empty {name}", "GET", f"/drecs?{name}=", status=400, field=name))
    out.append(Case("events empty subject", "GET", "/events?subject_id=", status=400, field="subject_id"))
    for name in ("a\u0000b", "tab\there", "bell\u0007", "del\u007f", "nl\nname", "\u0085"):
        out.append(Case(f"source name {name!r}", "POST", "/sources", _json({"name": name, "kind": "aggregator"}),
                        status=400, field="name"))
    for path in ("/sources/a%00b", "/accounts/a%00b", "/devices/a%00b", "/drecs/a%00b", "/events/a%00b",
                 "/readings/a%00b", "/redemptions/a%00b", "/accounts/a%00b/holdings", "/devices/a%00b/readings"):
        out.append(Case(f"NUL in {path}", "GET", path))
    for name, raw in [("battery_wh", "1e308"), ("battery_wh", "Infinity"), ("battery_wh", "NaN"),
                      ("battery_wh", "1" + "0" * 400), ("battery_wh", "1e400"), ("capacity_w", "5e-324"),
                      ("latitude", "5e-324"), ("tilt_deg", "2.2250738585072014e-309"), ("longitude", "-Infinity")]:
        out.append(Case(f"device {name}={raw[:12]}", "POST", "/devices", _raw_device(name, raw), status=400,
                        field=name, key="source"))
    out.append(Case("device owner with NUL", "POST", "/devices", _json(_device(owner_account_id="a\u0000b")),
                    status=400, field="owner_account_id", key="source"))
    for start, end in [("0001-01-01T00:00:00+01:00", "0001-01-01T02:00:00+01:00"),
                       ("9999-12-31T23:00:00-02:00", "9999-12-31T23:30:00-02:00")]:
        out.append(Case(f"payment {start}", "POST", "/payments", _json({"device_id": "{device}", "paid_from": start,
                                                                        "paid_until": end}),
                        status=422, field="period_start", key="source"))
        # In a batch only the item is refused: the answer is a 202 whose errors name the item's field.
        out.append(Case(f"reading {start}", "POST", "/readings", _json({"readings": [
            {"device_id": "{device}", "period_start": start, "period_end": end, "energy_wh": 5}]}),
            status=202, field="readings.0.period_start", key="source"))
    out.append(Case("reading energy_wh 1e38", "POST", "/readings", _json({"readings": [
        {"device_id": "{device}", "period_start": "2026-10-14T09:00:00Z", "period_end": "2026-10-14T10:00:00Z",
         "energy_wh": 1e38}]}), status=202, field="readings.0.energy_wh", key="source"))
    for path in ("/sources", "/accounts", "/devices", "/readings", "/transfers", "/redemptions"):
        for media in ("text/plain", "application/xml", "multipart/form-data; boundary=x"):
            out.append(Case(f"{media} to {path}", "POST", path, b"{}", media=media, status=415,
                            field="Content-Type"))
    big = b"x" * (10 * MB + 1)
    out.append(Case("10 MB JSON body", "POST", "/sources", big, status=413, field="body"))
    out.append(Case("10 MB CSV body", "POST", "/uploads?name=big.csv", big, media="text/csv", status=413,
                    field="body"))
    for raw in (b"", b"null", b"[]", b'"s"', b"{", b'{"name": "a\x00"', b"\x00", "\ud800".encode("utf-8",
                                                                                                "surrogatepass")):
        out.append(Case(f"malformed body {raw[:8]!r}", "POST", "/sources", raw, status=400))
    # A 5 MB line in a CSV upload: refused in the report, line by line, never a 5xx.
    line = b"device_id,period_start,period_end,energy_wh\n" + b"x" * (5 * MB) + b"\n"
    out.append(Case("5 MB line upload", "POST", "/uploads?name=long.csv", line, media="text/csv", status=200,
                    key="source"))
    return out
