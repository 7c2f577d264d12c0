"""Pydantic models at the edge: the API's published schema (`GET /openapi.json`)."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..domain.countries import country_names
from ..domain.errors import BadInput, RuleBroken
from ..domain.model import AccountKind, DeviceType, OfftakerType, SourceKind

T = TypeVar("T", bound=BaseModel)

SIGNATURE_HELP = ("65-byte hex EIP-712 signature of Reading(string device_id,string period_start,string period_end,"
                  "uint256 energy_wh), domain {name: 'D-REC Registry', version: '1'} (no chainId), times as "
                  "YYYY-MM-DDTHH:MM:SSZ; required when the device or its source registered a signing_address "
                  "(the device's key first), else dropped")


def eip55_address(value: str | None) -> str | None:
    """Mixed case must be the EIP-55 checksum (a typo in one digit then fails); one case carries none.

    The checksum is a rule no JSON Schema can state, so a wrong one is a 422 naming the field (the
    domain error passes through pydantic unchanged), not a 400.
    """
    from eth_utils import to_checksum_address

    if value is not None and value[2:] not in (value[2:].lower(), value[2:].upper()) \
            and to_checksum_address(value) != value:
        raise RuleBroken("the address's mixed case is not its EIP-55 checksum; copy it exactly",
                         field="signing_address")
    return value


def clean(value: Any) -> Any:
    """Refuse control characters in text and numbers too close to zero, at any depth of a field's value.

    NUL and other control characters in a name or id break logs, CSV exports and the stores' keys;
    a float with 0 < |x| < 1e-100 (subnormals included) is no physical quantity, overflows the physics
    that divides by it, and underflows DynamoDB, whose numbers stop at 1e-130.
    """
    if isinstance(value, str):
        if any(unicodedata.category(c) == "Cc" for c in value):
            raise ValueError("control characters (NUL, tab, newline, ...) are not allowed here")
    elif isinstance(value, float):
        if value != 0 and abs(value) < TINY:
            raise ValueError("a number this close to zero (under 1e-100) is not a measurement; "
                             "send 0 or a real value")
    elif isinstance(value, list | tuple):
        for item in value:
            clean(item)
    return value


# What `clean` refuses, as JSON Schema: a client generating from the document never sends it.
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]*$"
TINY = 1e-100
NOT_TINY = {"not": {"type": "number", "exclusiveMinimum": -TINY, "exclusiveMaximum": TINY, "not": {"const": 0}}}


def _publish_clean(schema: dict[str, Any]) -> None:
    """Add `clean`'s refusals to a field's JSON Schema (and its `anyOf` branches and array items)."""
    for branch in schema.get("anyOf", []):
        _publish_clean(branch)
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        schema["pattern"] = NO_CONTROL_CHARACTERS
    elif schema.get("type") == "number":
        schema.update(NOT_TINY)
    elif schema.get("type") == "array" and isinstance(schema.get("items"), dict):
        _publish_clean(schema["items"])


def _publish_strict(schema: dict[str, Any]) -> None:
    for field_schema in schema.get("properties", {}).values():
        _publish_clean(field_schema)


def whole_number(value: Any) -> Any:
    """An integer field's before-validator: JSON Schema counts 2.0 as an integer, so does the server (2.5 not)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


class Strict(BaseModel):
    """Request bodies: no coercion of wrong types, no unknown fields, only finite numbers, no control characters."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, json_schema_extra=_publish_strict)

    @field_validator("*")
    @classmethod
    def _clean(cls, value: Any) -> Any:
        return clean(value)


def country_field() -> Any:
    """A country the registry checks against ISO 3166-1 (a code outside the list is a 422)."""
    return Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2",
                 json_schema_extra={"enum": list(sorted(country_names()))})


class SourceIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: SourceKind
    signing_address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$",
                                        description="EIP-55 address whose per-reading EIP-712 signatures the "
                                                    "readings of this source's devices must carry")

    @field_validator("signing_address")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        return eip55_address(value)


class SourceOut(BaseModel):
    source_id: str
    name: str
    kind: SourceKind
    signing_address: str | None = None
    registered_at: str
    registered_by: str
    revoked_at: str | None = Field(default=None, description="Set when the operator revoked it: its keys answer 401")
    revoked_by: str | None = None


class SourceCreated(SourceOut):
    api_key: str = Field(description="Shown once; only its hash is stored")


class AccountIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: AccountKind
    country: str = country_field()
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    contact: str | None = Field(default=None, max_length=320)


class AccountOut(BaseModel):
    account_id: str
    name: str
    kind: AccountKind
    country: str
    registered_at: str
    registered_by: str
    external_id: str | None = None
    contact: str | None = Field(default=None, description="Only for the account itself, the sources that may "
                                "act for it and the operator (sent as X-Api-Key); never in an event")
    revoked_at: str | None = Field(default=None, description="Set when the operator revoked it: its keys answer 401")
    revoked_by: str | None = None


class AccountCreated(AccountOut):
    api_key: str = Field(description="Shown once; only its hash is stored")


class DeviceIn(Strict):
    owner_account_id: str = Field(min_length=1)
    device_type: DeviceType
    capacity_w: float = Field(gt=0, le=1e9, description="Nameplate capacity [W]")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    country: str = country_field()
    commissioning_date: date
    offtaker_type: OfftakerType
    grid_connected: bool = False
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    tilt_deg: float | None = Field(default=None, ge=0, le=90, description="Panel tilt from horizontal [deg]")
    azimuth_deg: float | None = Field(default=None, ge=0, lt=360, description="Panel azimuth, 180 = south [deg]")
    battery_wh: float | None = Field(default=None, ge=0, le=1e9, description="Usable battery capacity [Wh]")
    signing_address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$",
                                        description="EIP-55 address of the meter's own key: its readings must carry "
                                                    "EIP-712 signatures by it (before the source's key)")

    @field_validator("signing_address")
    @classmethod
    def _checksum(cls, value: str | None) -> str | None:
        return eip55_address(value)


class DeviceReviewOut(BaseModel):
    state: Literal["open", "cleared", "suspended"]
    opened_at: str | None = None
    reason: str | None = Field(default=None, description="Why the validator opened the review, with its figures")
    reference: Any = Field(default=None, description="What the device was compared with (neighbours or climatology)")
    cusum: float | None = Field(default=None, description="The sequential test's statistic when it crossed")
    days: int | None = Field(default=None, description="Days the test had seen when it crossed")
    last_day_ratio: float | None = Field(default=None, description="The last day's output over its reference")
    review_epoch: int | None = Field(default=None, description="The review epoch the test belonged to")
    decision: Literal["clear", "suspend"] | None = None
    decided_at: str | None = None
    decided_by: str | None = None
    note: str | None = None


class MaintenanceOut(BaseModel):
    since: str | None = None
    reason: str | None = None
    ratio: float | None = Field(default=None, description="Output over its reference (below 1: low)")


class DeviceReviewIn(Strict):
    decision: Literal["clear", "suspend"]
    note: str = Field(min_length=1, max_length=1000, description="Why: kept in the device's review and its event")


class DeviceDecisionOut(BaseModel):
    device_id: str
    status: Literal["active", "under_review", "suspended"]
    review_epoch: int
    review: DeviceReviewOut
    held_readings: int = Field(description="Held readings this request sent back to the validator (clear) or "
                                           "rejected (suspend)")


class DeviceOut(BaseModel):
    device_id: str
    owner_account_id: str
    device_type: DeviceType
    capacity_w: float
    latitude: float = Field(description="[deg] exact for the owner account, its sources and the operator "
                            "(X-Api-Key); rounded to 0.01 for everyone else and in events")
    longitude: float = Field(description="[deg] exact for the owner account, its sources and the operator "
                             "(X-Api-Key); rounded to 0.01 for everyone else and in events")
    country: str
    commissioning_date: date
    offtaker_type: OfftakerType
    grid_connected: bool = False
    external_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    battery_wh: float | None = None
    signing_address: str | None = None
    registered_at: str
    registered_by: str
    status: Literal["active", "under_review", "suspended"] = Field(default="active", description=(
        "active; under_review (steadily above its reference: its new readings are held until the operator "
        "decides); suspended (takes no readings)"))
    review: DeviceReviewOut | None = Field(default=None, description=(
        "Why the device went under review and what the operator decided; only for the owner account, its "
        "sources and the operator"))
    review_epoch: int | None = Field(default=None, description=(
        "Reviews cleared so far (the validator starts its test afresh after each); owner's side only"))
    maintenance: MaintenanceOut | None = Field(default=None, description=(
        "Output steadily below its reference: a note for the owner (nothing is held); owner's side only"))
    location_commitment: str | None = Field(default=None, description=(
        "SHA-256 hex of the canonical JSON {latitude, longitude, salt} of the exact coordinates and "
        "location_salt; anchored in DeviceRegistered, so the owner can prove the exact location later "
        "(python -m chalicelib.domain.privacy LATITUDE LONGITUDE SALT COMMITMENT)"))
    location_salt: str | None = Field(default=None, description=(
        "64 hex digits opening location_commitment; only for the owner account, its sources and the operator"))
    readings_accepted: int = Field(default=0, description=(
        "Daylight readings the validator accepted for this device: the count its twin keeps with every verdict "
        "(a flagged reading the operator accepts later is not in it); read with the page, never counted"))
    drecs_issued: int = Field(default=0, description=(
        "D-RECs this device's readings went into (each D-REC pools Wh of many devices), counted as they are linked"))
    drec_energy_wh: int = Field(default=0, description=(
        "Wh of this device's readings in issued D-RECs (Wh still waiting in a pool are not in it)"))


class AnchorOut(BaseModel):
    batch_id: int
    root: str
    tx_hash: str
    block_number: int


class EventOut(BaseModel):
    event_id: str = Field(description="ev-<shard>-<seq>")
    shard: int = Field(description="The event sequence (shard) the event is numbered in; see GET /ledger")
    seq: int = Field(description="Gap-free position in its shard's sequence")
    type: str
    subject_id: str
    source_id: str
    occurred_at: str
    body: dict[str, Any]
    leaf: str | None = None
    anchor: AnchorOut | None = None



class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None = None


class ErrorOut(BaseModel):
    error: ErrorBody


def parse(model: type[T], raw_body: bytes | str | None) -> T:
    """Validate a JSON request body; the first problem becomes a BadInput naming its field."""
    if not raw_body:
        raise BadInput("the request needs a JSON body", field="body")
    try:
        return model.model_validate_json(raw_body)
    except ValidationError as exc:
        raise bad_input_from(exc) from exc


def bad_input_from(exc: ValidationError, prefix: str = "") -> BadInput:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    field_name = f"{prefix}{location}" if location else (prefix.rstrip(".") or None)
    if first["type"] == "json_invalid":
        return BadInput(f"the body is not valid JSON: {first['msg']}", field=prefix.rstrip(".") or "body")
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown field; see GET /openapi.json for the fields this endpoint takes"
    elif first["type"] == "missing":
        message = "this field is required"
    return BadInput(f"{field_name}: {message}" if field_name else message, field=field_name)




class ReadingIn(Strict):
    device_id: str = Field(min_length=1, max_length=100)
    period_start: AwareDatetime
    period_end: AwareDatetime
    # At most 1 TWh: far above any device's month (5 MW x 744 h = 3.7 GWh), and storable (DynamoDB numbers).
    energy_wh: int = Field(ge=0, le=10**12, description="Energy generated in the period [Wh], an integer")
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    signature: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{130}$", description=SIGNATURE_HELP)

    _whole_energy = field_validator("energy_wh", mode="before")(whole_number)


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # Items are parsed one by one (a bad item is refused alone, the batch still answers 202): the request
    # takes any item, and the document shows the shape an item must have to be accepted.
    readings: list[Any] = Field(min_length=1, max_length=1000, json_schema_extra={"items": {
        "description": "A reading (ReadingIn). Each item is checked alone: one that is not a valid ReadingIn is "
                       "refused in errors[] with its index, and the others proceed",
        "anyOf": [{"$ref": "#/components/schemas/ReadingIn"}, {}]}})


class PaymentIn(Strict):
    device_id: str = Field(min_length=1)
    paid_from: AwareDatetime
    paid_until: AwareDatetime
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    signature: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{130}$",
                                  description="65-byte hex EIP-712 signature of Payment(string device_id,string "
                                              "paid_from,string paid_until), domain {name: 'D-REC Registry', "
                                              "version: '1'}, times as YYYY-MM-DDTHH:MM:SSZ; required when the "
                                              "device or its source registered a signing_address, else dropped")


class ReviewIn(Strict):
    decision: Literal["accept", "reject"]
    note: str | None = Field(default=None, max_length=1000)


class ReadingOut(BaseModel):
    reading_id: str
    device_id: str
    period_start: str
    period_end: str
    energy_wh: int
    status: Literal["queued", "accepted", "rejected", "flagged", "awaiting_peers"] = Field(description=(
        "queued → accepted | rejected | flagged | awaiting_peers (waits, bounded, for enough neighbours to "
        "report the same hour, then is judged)"))
    rule: str | None = Field(default=None, description=(
        "The rule that decided, e.g. above_peers (far above its neighbours' normalised yield; the reason names "
        "their count and median), device_under_review (held while its device is under review), "
        "device_suspended (held, then rejected when the operator suspended the device)"))
    reason: str | None = None
    expected_wh: float | None = None
    sigma_wh: float | None = None
    ceiling_wh: float | None = None
    derived: bool = False
    source_id: str | None = None
    signer: str | None = Field(default=None, description="Lowercase address recovered from `signature`; "
                                                         "present only when verified")
    signature: str | None = None
    serials: list[str] | None = None


class IndexedId(BaseModel):
    index: int
    reading_id: str


class IndexedError(BaseModel):
    index: int
    error: ErrorBody


class ReadingsAccepted(BaseModel):
    accepted: list[IndexedId]
    errors: list[IndexedError]


class UploadReport(BaseModel):
    rows: int
    queued: int
    duplicates: int = 0
    error_count: int = 0
    errors: list[dict[str, Any]]


class UploadUrlOut(BaseModel):
    url: str = Field(description="Presigned URL: PUT the CSV file to it (no other header needed)")
    key: str = Field(description="incoming/<source_id>/<name>.csv in the uploads bucket")
    expires_at: AwareDatetime = Field(description="The URL is refused after this; at most 15 minutes away")
    method: Literal["PUT"] = "PUT"
    report_key: str = Field(description="reports/<source_id>/<name>.json, written once the file is handled")
    report_url: str = Field(description="Presigned GET of the report (valid an hour); 404 until it is written")


class ContributionOut(BaseModel):
    device_id: str
    reading_id: str
    energy_wh: int
    period_start: str
    period_end: str
    source_id: str | None = None
    signer: str | None = None
    signature: str | None = None


class DrecOut(BaseModel):
    serial: str
    owner_account_id: str
    status: Literal["active", "redeemed"]
    energy_wh: int = 1000
    period_start: str
    period_end: str
    vintage: str
    country: str
    device_type: str
    offtaker_type: str
    avoided_co2_kg: float
    contributions_root: str
    device_ids: list[str] = []
    contributions: list[ContributionOut] | None = None
    hourly_wh: dict[str, int] | None = None
    events: list[EventOut] | None = None


class ProofOut(BaseModel):
    event_id: str
    shard: int
    seq: int
    leaf: str
    proof: list[str]
    root: str
    batch_id: int
    tx_hash: str
    block_number: int
    chain_id: int | None
    contract_address: str | None


class LedgerOut(BaseModel):
    chain_id: int | None
    contract_address: str | None
    rpc_hint: str | None = Field(description="A public JSON-RPC endpoint of the chain: DREC_CHAIN_RPC_PUBLIC, "
                                 "else the configured RPC URL as scheme://host[:port] only (no key, path or query)")
    event_shards: int = Field(description="How many event sequences (shards 0 .. event_shards - 1) the registry "
                              "numbers and anchors separately; the contract keeps each shard's nextSeq")


class MonthCount(BaseModel):
    month: str
    count: int


class QueueDepthOut(BaseModel):
    queue: str = Field(description="Logical queue name: uploads, readings (to the validator), accepted (to the issuer)")
    depth: int = Field(description="Messages waiting or in flight (SQS's approximate counts)")
    dead_letter_depth: int = Field(description="Messages in the queue's dead-letter queue `<queue>-dlq`: each is a "
                                   "batch that failed max_receive_count times and waits for an operator")


class AnchoringLagOut(BaseModel):
    newest_seq: int = Field(description="Events appended, summed over the event shards (each shard's newest seq)")
    anchored_seq: int = Field(description="Events anchored on the chain, summed over the event shards")
    lag_events: int = Field(description="Events not anchored yet (newest_seq - anchored_seq)")
    lag_seconds: float = Field(description="Age of the oldest event not anchored yet [s]; 0 when none waits")


class ReadingsByStatusOut(BaseModel):
    queued: int
    accepted: int
    rejected: int
    flagged: int
    awaiting_peers: int


class OperationsOut(BaseModel):
    queues: list[QueueDepthOut]
    anchoring: AnchoringLagOut
    readings_by_status: ReadingsByStatusOut = Field(description="Readings now in each status (counters)")


class StatsOut(BaseModel):
    devices: int
    accounts: int
    readings: int
    accepted_wh: int
    drecs_active: int
    drecs_redeemed: int
    transfers: int
    redemptions: int
    issuance_by_month: list[MonthCount]
    operations: OperationsOut
