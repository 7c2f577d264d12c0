"""What a pipeline run consumed, per stage and per 1,000 readings, priced with `infra/aws_prices.json`.

Inputs are tallies taken before and after the measured run: the emulator's (`GET /_drec/usage`,
`infra.usage.Counting`), the dispatcher's Lambda handlers and `chalice local`'s API calls
(`<stack>/usage/{lambda,api}.json`). Pure arithmetic; the benchmark prints it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PRICES = Path(__file__).resolve().parents[2] / "infra" / "aws_prices.json"
GB = 1024 ** 3
HOURS_A_YEAR = 8760  # a device reporting hourly sends this many readings a year
AWS_SCHEDULE_S = 60.0  # the schedules' Rate on AWS (chalicelib/api/handlers.py): every minute
TARGET_PER_DEVICE_YEAR = 0.01  # USD, the target


def difference(after: Any, before: Any) -> Any:
    """`after - before`, number by number, through nested mappings (missing before = 0)."""
    if isinstance(after, dict):
        before = before if isinstance(before, dict) else {}
        return {k: difference(v, before.get(k)) for k, v in after.items()}
    if isinstance(after, int | float) and not isinstance(after, bool):
        return after - (before if isinstance(before, int | float) else 0)
    return after


def scaled(tally: Any, factor: float) -> Any:
    if isinstance(tally, dict):
        return {k: scaled(v, factor) for k, v in tally.items()}
    if isinstance(tally, int | float) and not isinstance(tally, bool):
        return tally * factor
    return tally


def stage_of(handler: str) -> str:
    """The pipeline stage a handler (queue or schedule name) or API route belongs to."""
    if handler.endswith("-readings"):
        return "judge (validator, readings queue)"
    if handler.endswith("-accepted"):
        return "issue (issuer, accepted queue)"
    if handler.endswith("-uploads"):
        return "CSV ingest (uploads queue)"
    if handler == "anchor_events":
        return "anchor (schedule)"
    if handler == "sweep":
        return "upkeep sweep (schedule)"
    if handler == "POST /readings":
        return "intake (POST /readings)"
    return f"other API ({handler})"


def stage_seconds(lambdas: dict[str, dict[str, float]], api: dict[str, dict[str, float]]) -> dict[str, float]:
    seconds: dict[str, float] = {}
    for handler, calls in [*lambdas.items(), *api.items()]:
        stage = stage_of(handler)
        seconds[stage] = seconds.get(stage, 0.0) + calls.get("seconds", 0.0)
    return seconds


@dataclass
class Consumption:
    """What the platform used for `readings` readings (and `drecs` D-RECs issued)."""

    readings: int
    drecs: int
    read_units: float = 0.0
    write_units: float = 0.0
    storage_bytes: float = 0.0
    sqs_requests: float = 0.0
    s3_put: float = 0.0
    s3_get: float = 0.0
    s3_bytes: float = 0.0
    lambda_invocations: float = 0.0
    lambda_billed_ms: float = 0.0
    api_requests: float = 0.0
    tables: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def of(cls, readings: int, drecs: int, emulator: dict[str, Any], lambdas: dict[str, dict[str, float]],
           api: dict[str, dict[str, float]]) -> Consumption:
        requests = emulator.get("requests", {})
        sqs = {op: n for op, n in requests.get("sqs", {}).items() if op != "ReceiveMessage (empty)"}
        s3 = requests.get("s3", {})
        dynamodb = emulator.get("dynamodb", {})
        return cls(readings=readings, drecs=drecs, read_units=dynamodb.get("read_units", 0.0),
                   write_units=dynamodb.get("write_units", 0.0), storage_bytes=dynamodb.get("storage_bytes", 0.0),
                   sqs_requests=sum(sqs.values()), s3_put=s3.get("PUT", 0) + s3.get("LIST", 0),
                   s3_get=s3.get("GET", 0), s3_bytes=emulator.get("extra", {}).get("s3_bytes_put", 0.0),
                   lambda_invocations=sum(c.get("invocations", 0.0) for c in lambdas.values()),
                   lambda_billed_ms=sum(c.get("billed_ms", 0.0) for c in lambdas.values()),
                   api_requests=sum(c.get("invocations", 0.0) for c in api.values()),
                   tables=dynamodb.get("tables", {}))


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    prices: dict[str, Any] = json.loads(path.read_text())
    return prices


def costs(used: Consumption, prices: dict[str, Any], memory_mb: int, arch: str = "x86_64") -> dict[str, float]:
    """USD per service for what `used` counts (request and duration charges; storage apart)."""
    d, q, s, lam, api = (prices[k] for k in ("dynamodb", "sqs", "s3", "lambda", "api_gateway"))
    gb_s = used.lambda_billed_ms / 1000 * memory_mb / 1024
    return {
        "DynamoDB writes": used.write_units / 1e6 * d["write_request_unit_per_million"],
        "DynamoDB reads": used.read_units / 1e6 * d["read_request_unit_per_million"],
        "SQS requests": used.sqs_requests / 1e6 * q["standard_requests_per_million"],
        "S3 requests": used.s3_put / 1000 * s["put_copy_post_list_per_1000"]
        + used.s3_get / 1000 * s["get_select_per_1000"],
        "Lambda requests": used.lambda_invocations / 1e6 * lam["requests_per_million"],
        f"Lambda duration ({memory_mb} MB, {arch})": gb_s * lam[f"gb_second_{arch}"],
        "API Gateway (REST) requests": used.api_requests / 1e6 * api["rest_requests_per_million"],
    }


def storage_year_one(bytes_per_reading: float, prices: dict[str, Any]) -> float:
    """USD of DynamoDB storage over a device's first year: what it stores grows linearly, kept for ever."""
    year_end_gb = bytes_per_reading * HOURS_A_YEAR / GB
    return year_end_gb / 2 * 12 * float(prices["dynamodb"]["storage_gb_month"])


def per_device_year(used: Consumption, prices: dict[str, Any], memory_mb: int) -> dict[str, float]:
    """USD a 100 W device reporting hourly costs in a year: requests at this run's rate per reading, plus storage."""
    per_reading = sum(costs(used, prices, memory_mb).values()) / used.readings
    storage = storage_year_one(used.storage_bytes / used.readings, prices)
    kept = used.storage_bytes / used.readings * HOURS_A_YEAR / GB * 12 * float(prices["dynamodb"]["storage_gb_month"])
    return {"requests": per_reading * HOURS_A_YEAR, "storage (year one)": storage,
            "total (year one)": per_reading * HOURS_A_YEAR + storage, "each further year kept adds": kept}
