"""Pydantic models at the edge: the API's published schema (`GET /openapi.json`)."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from .domain.errors import BadInput
from .domain.model import AccountKind, DeviceType, OfftakerType, SourceKind

T = TypeVar("T", bound=BaseModel)


class Strict(BaseModel):
    """Request bodies: no coercion of wrong types, no unknown fields."""

    model_config = ConfigDict(strict=True, extra="forbid")


class SourceIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: SourceKind
    signing_address: str | None = Field(default=None, pattern=r"^0x[0-9a-fA-F]{40}$",
                                        description="Ethereum address whose EIP-191 signatures the source sends")


class SourceOut(BaseModel):
    source_id: str
    name: str
    kind: SourceKind
    signing_address: str | None = None
    registered_at: str
    registered_by: str


class SourceCreated(SourceOut):
    api_key: str = Field(description="Shown once; only its hash is stored")


class AccountIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    kind: AccountKind
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
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
    contact: str | None = None


class AccountCreated(AccountOut):
    api_key: str = Field(description="Shown once; only its hash is stored")


class DeviceIn(Strict):
    owner_account_id: str = Field(min_length=1)
    device_type: DeviceType
    capacity_w: float = Field(gt=0, description="Nameplate capacity [W]")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    country: str = Field(min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    commissioning_date: date
    offtaker_type: OfftakerType
    grid_connected: bool = False
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    tilt_deg: float | None = Field(default=None, ge=0, le=90, description="Panel tilt from horizontal [deg]")
    azimuth_deg: float | None = Field(default=None, ge=0, lt=360, description="Panel azimuth, 180 = south [deg]")
    battery_wh: float | None = Field(default=None, ge=0, description="Usable battery capacity [Wh]")


class DeviceOut(BaseModel):
    device_id: str
    owner_account_id: str
    device_type: DeviceType
    capacity_w: float
    latitude: float
    longitude: float
    country: str
    commissioning_date: date
    offtaker_type: OfftakerType
    grid_connected: bool = False
    external_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    battery_wh: float | None = None
    registered_at: str
    registered_by: str
    status: str = "active"


class AnchorOut(BaseModel):
    batch_id: int
    root: str
    tx_hash: str
    block_number: int


class EventOut(BaseModel):
    event_id: str
    seq: int
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
        raise BadInput("the request needs a JSON body", field=None)
    try:
        return model.model_validate_json(raw_body)
    except ValidationError as exc:
        raise bad_input_from(exc) from exc


def bad_input_from(exc: ValidationError, prefix: str = "") -> BadInput:
    first = exc.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    field_name = f"{prefix}{location}" if location else (prefix.rstrip(".") or None)
    if first["type"] == "json_invalid":
        return BadInput(f"the body is not valid JSON: {first['msg']}", field=None)
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
    energy_wh: int = Field(ge=0, description="Energy generated in the period [Wh], an integer")
    external_id: str | None = Field(default=None, min_length=1, max_length=200)
    signature: str | None = Field(default=None, description="EIP-712 signature of this reading (hex)")


class ReadingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    readings: list[Any] = Field(min_length=1, max_length=1000)
    signature: str | None = Field(default=None, description="EIP-191 signature of the canonical JSON of `readings`")


class PaymentIn(Strict):
    device_id: str = Field(min_length=1)
    paid_from: AwareDatetime
    paid_until: AwareDatetime
    external_id: str | None = Field(default=None, min_length=1, max_length=200)


class ReviewIn(Strict):
    decision: Literal["accept", "reject"]
    note: str | None = Field(default=None, max_length=1000)


class ReadingOut(BaseModel):
    reading_id: str
    device_id: str
    period_start: str
    period_end: str
    energy_wh: int
    status: Literal["queued", "accepted", "rejected", "flagged"]
    rule: str | None = None
    reason: str | None = None
    expected_wh: float | None = None
    sigma_wh: float | None = None
    ceiling_wh: float | None = None
    derived: bool = False
    source_id: str | None = None
    signer: str | None = None
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
    rpc_hint: str | None


class MonthCount(BaseModel):
    month: str
    count: int


class StatsOut(BaseModel):
    devices: int
    accounts: int
    accepted_wh: int
    drecs_active: int
    drecs_redeemed: int
    issuance_by_month: list[MonthCount]
