"""Routes for transfers, redemptions and holdings."""

from __future__ import annotations

from chalice import Blueprint

trading = Blueprint(__name__)
