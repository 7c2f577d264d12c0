"""Readings as they arrive from outside (items of a JSON body, rows of a CSV file) → domain `Reading`.

One parser for every path, so a reading is refused with the same message and field whichever way it
came. It validates with the edge's published `ReadingIn` schema (strict JSON types, ISO timestamps),
then the domain's period rule; the intake receives it as a function (wired in `bootstrap`), so the
use cases never see an edge schema.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError

from ..domain.errors import BadInput
from ..domain.readings import Reading, check_period
from .schemas import ReadingIn, bad_input_from


def parse_reading(raw: Any, field_prefix: str = "") -> Reading:
    if isinstance(raw, Reading):
        return raw
    if not isinstance(raw, dict):
        raise BadInput("each reading is an object with device_id, period_start, period_end, energy_wh",
                       field=field_prefix.rstrip(".") or None)
    if raw.get("signature") == "":
        raw = {k: v for k, v in raw.items() if k != "signature"}  # an empty CSV cell is no signature
    try:
        # JSON mode: strict types, ISO timestamps parsed as in a request body.
        parsed = ReadingIn.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise bad_input_from(exc, field_prefix) from exc
    check_period(parsed.period_start, parsed.period_end, field_prefix)
    return Reading(parsed.device_id, parsed.period_start, parsed.period_end, parsed.energy_wh, parsed.external_id,
                   parsed.signature)
