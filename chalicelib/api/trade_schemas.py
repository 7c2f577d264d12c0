"""Pydantic models at the edge for transfers, redemptions and holdings (published at /openapi.json)."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from ..domain.certificates import DrecSelection
from ..domain.model import DeviceType, OfftakerType
from ..domain.moves import RedeemDrecs, SponsorShare, TransferDrecs
from ..services.holdings import MAX_DRECS_PER_REQUEST
from .schemas import Strict, _publish_strict, whole_number

VINTAGE_PATTERN = r"^\d{4}-(0[1-9]|1[0-2])$"
SERIALS_DESCRIPTION = "Explicit D-RECs by serial; give either serials or quantity"
QUANTITY_DESCRIPTION = "How many D-RECs (1 kWh each), the oldest generation first among those matching filter"


def _serials_or_quantity(schema: dict[str, Any]) -> None:
    """Published as `holdings.select_drecs` takes them: exactly one of serials (distinct, at most 5000) and
    quantity (at most 5000); filter only with a quantity."""
    _publish_strict(schema)
    properties = schema["properties"]
    serials = next(b for b in properties["serials"]["anyOf"] if b.get("type") == "array")
    serials.update({"uniqueItems": True, "maxItems": MAX_DRECS_PER_REQUEST})
    quantity = next(b for b in properties["quantity"]["anyOf"] if b.get("type") == "integer")
    quantity["maximum"] = MAX_DRECS_PER_REQUEST
    # Each branch repeats the whole constraint: a generator that merges a branch into the object must not lose it.
    schema["oneOf"] = [
        {"required": ["serials"], "properties": {"serials": dict(serials), "quantity": {"type": "null"},
                                                 "filter": {"type": "null"}}},
        {"required": ["quantity"], "properties": {"quantity": dict(quantity), "serials": {"type": "null"}}},
    ]


class DrecFilter(Strict):
    """Which of the account's active D-RECs a quantity is taken from."""

    country: str | None = Field(default=None, min_length=2, max_length=2, description="ISO 3166-1 alpha-2")
    device_type: DeviceType | None = None
    offtaker_type: OfftakerType | None = None
    vintage: str | None = Field(default=None, pattern=VINTAGE_PATTERN, description="Generation month, 2026-11")
    vintage_from: str | None = Field(default=None, pattern=VINTAGE_PATTERN)
    vintage_to: str | None = Field(default=None, pattern=VINTAGE_PATTERN)

    def to_selection(self) -> DrecSelection:
        return DrecSelection(country=self.country,
                             device_type=self.device_type.value if self.device_type else None,
                             offtaker_type=self.offtaker_type.value if self.offtaker_type else None,
                             vintage=self.vintage, vintage_from=self.vintage_from, vintage_to=self.vintage_to)


class TransferIn(Strict):
    model_config = ConfigDict(json_schema_extra=_serials_or_quantity)

    from_account_id: str = Field(min_length=1, max_length=100)
    to_account_id: str = Field(min_length=1, max_length=100)
    serials: list[str] | None = Field(default=None, min_length=1, description=SERIALS_DESCRIPTION)
    quantity: int | None = Field(default=None, gt=0, description=QUANTITY_DESCRIPTION)
    filter: DrecFilter | None = None

    _whole_quantity = field_validator("quantity", mode="before")(whole_number)

    def to_command(self) -> TransferDrecs:
        return TransferDrecs(from_account_id=self.from_account_id, to_account_id=self.to_account_id,
                             serials=tuple(self.serials) if self.serials is not None else None,
                             quantity=self.quantity, selection=self.filter.to_selection() if self.filter else None,
                             request=self.model_dump(mode="json"))


class SponsorIn(Strict):
    name: str = Field(min_length=1, max_length=200)
    share: float = Field(gt=0, le=1, description="Fraction of the D-RECs; shares sum to 1")


class RedemptionIn(Strict):
    model_config = ConfigDict(json_schema_extra=_serials_or_quantity)

    account_id: str = Field(min_length=1, max_length=100)
    serials: list[str] | None = Field(default=None, min_length=1, description=SERIALS_DESCRIPTION)
    quantity: int | None = Field(default=None, gt=0, description=QUANTITY_DESCRIPTION)
    filter: DrecFilter | None = None

    _whole_quantity = field_validator("quantity", mode="before")(whole_number)
    beneficiary: str = Field(min_length=1, max_length=200, description="On whose behalf the D-RECs are redeemed")
    purpose: str = Field(min_length=1, max_length=1000)
    claim_period_start: date | AwareDatetime = Field(
        description="Rule: the claim period must contain the generation period of every D-REC redeemed "
                    "(start at or before the earliest generation start; a date means 00:00 UTC)")
    claim_period_end: date | AwareDatetime = Field(
        description="Rule: at or after the latest generation end; a date includes that whole day (UTC)")
    country_of_consumption: str | None = Field(default=None, min_length=2, max_length=2,
                                               description="ISO 3166-1 alpha-2")
    sponsors: list[SponsorIn] | None = Field(
        default=None, min_length=1, max_length=100,
        description="D-RECs are dealt to sponsors by share in small contiguous batches, recorded per D-REC")

    def to_command(self) -> RedeemDrecs:
        return RedeemDrecs(account_id=self.account_id, beneficiary=self.beneficiary, purpose=self.purpose,
                           claim_period_start=self.claim_period_start, claim_period_end=self.claim_period_end,
                           serials=tuple(self.serials) if self.serials is not None else None,
                           quantity=self.quantity, selection=self.filter.to_selection() if self.filter else None,
                           country_of_consumption=self.country_of_consumption,
                           sponsors=tuple(SponsorShare(s.name, s.share) for s in self.sponsors or ()),
                           request=self.model_dump(mode="json"))


class TransferOut(BaseModel):
    transfer_id: str
    from_account_id: str
    to_account_id: str
    status: str
    quantity: int
    serials: list[str]
    serial_ranges: list[str]
    created_at: str
    completed_at: str | None = None
    failure: dict[str, Any] | None = None


class SponsorOut(BaseModel):
    name: str
    share: float
    count: int
    serial_ranges: list[str]


class RedemptionOut(BaseModel):
    """The retirement statement; `ledger_url` carries the download token only in the POST answer."""

    redemption_id: str
    account_id: str
    status: str
    serials: list[str]
    serial_ranges: list[str]
    total_kwh: int
    memo: str | None = None
    ledger_url: str
    ledger_sha256: str
    beneficiary: str
    purpose: str
    claim_period_start: str
    claim_period_end: str
    country_of_consumption: str | None = None
    devices_count: int | None = None
    countries: list[str] | None = None
    generation_start: str | None = None
    generation_end: str | None = None
    avoided_co2_kg: float | None = None
    sponsors: list[SponsorOut] = []
    created_at: str
    completed_at: str | None = None
    failure: dict[str, Any] | None = None


class HoldingGroup(BaseModel):
    status: str
    country: str
    device_type: str
    vintage: str
    count: int


class HoldingsOut(BaseModel):
    account_id: str
    active: int
    redeemed: int
    groups: list[HoldingGroup]
