"""Pydantic models at the edge for API keys (published at /openapi.json)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class KeyRotated(BaseModel):
    api_key: str = Field(description="Shown once; only its hash is stored. The key used to ask now answers 401")
    principal_kind: Literal["source", "account"]
    principal_id: str
    rotated_at: str
