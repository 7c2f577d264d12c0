"""Shared words of the registry: kinds, principals, ids and the clock (records live in `registry.py`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from enum import Enum, StrEnum
from uuid import uuid4


class SourceKind(str, Enum):
    AGGREGATOR = "aggregator"
    DEVELOPER_BACKEND = "developer_backend"
    WEB_PORTAL = "web_portal"


class AccountKind(str, Enum):
    DEVELOPER = "developer"
    BUYER = "buyer"
    INTERMEDIARY = "intermediary"
    BROKER = "broker"


class DeviceType(str, Enum):
    SOLAR_HOME_SYSTEM = "solar_home_system"
    MINI_GRID = "mini_grid"
    MICROGRID = "microgrid"
    ROOFTOP_PV = "rooftop_pv"
    OTHER = "other"


class OfftakerType(str, Enum):
    HOUSEHOLD = "household"
    BUSINESS = "business"
    PUBLIC_SERVICE = "public_service"
    INDUSTRIAL = "industrial"
    OTHER = "other"


OPERATOR_ID = "operator"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:20]}"


def new_api_key() -> str:
    return "drec_" + secrets.token_urlsafe(32)


class PrincipalKind(StrEnum):
    OPERATOR = "operator"
    SOURCE = "source"
    ACCOUNT = "account"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator, a source, or an account."""

    kind: str  # a PrincipalKind value
    id: str

    @property
    def is_operator(self) -> bool:
        return self.kind == PrincipalKind.OPERATOR
