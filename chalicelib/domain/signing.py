"""What a meter or a source signs: EIP-712 typed data for a reading or a payment.

The registry stores a signature only after recovering its signer, and publishes both
in the events, so anyone can rebuild the message from an event body and check it.
That only works if signer, registry and verifier build the same message byte for
byte; hence one builder for all three, a fixed domain without chainId (a reading is
not bound to any chain) and every time in one canonical form, `YYYY-MM-DDTHH:MM:SSZ`.

The builders return the `full_message` dict that eth-account's `encode_typed_data`
takes; hashing and key recovery live in `services/signatures.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .errors import BadInput
from .time import iso

DOMAIN: dict[str, str] = {"name": "D-REC Registry", "version": "1"}
DOMAIN_TYPE = [{"name": "name", "type": "string"}, {"name": "version", "type": "string"}]
READING_TYPE = [{"name": "device_id", "type": "string"}, {"name": "period_start", "type": "string"},
                {"name": "period_end", "type": "string"}, {"name": "energy_wh", "type": "uint256"}]
PAYMENT_TYPE = [{"name": "device_id", "type": "string"}, {"name": "paid_from", "type": "string"},
                {"name": "paid_until", "type": "string"}]


def canonical_time(moment: datetime | str, field: str = "period_start") -> str:
    """`moment` as `YYYY-MM-DDTHH:MM:SSZ` in UTC; a datetime or any ISO 8601 text with a zone.

    Sub-second times are refused rather than truncated: truncating would let two
    different periods share one signature.
    """
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment)
        except ValueError as exc:
            raise BadInput(f"{field} is not an ISO 8601 time like 2026-11-01T10:00:00Z", field=field) from exc
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadInput(f"{field} has no time zone; send UTC like 2026-11-01T10:00:00Z", field=field)
    if moment.microsecond:
        raise BadInput(f"{field} has a fraction of a second; signed times are whole seconds "
                       "(YYYY-MM-DDTHH:MM:SSZ)", field=field)
    return iso(moment)


def _typed(primary: str, fields: list[dict[str, str]], message: dict[str, Any]) -> dict[str, Any]:
    return {"types": {"EIP712Domain": DOMAIN_TYPE, primary: fields}, "primaryType": primary,
            "domain": dict(DOMAIN), "message": message}


def reading_message(device_id: str, period_start: datetime | str, period_end: datetime | str,
                    energy_wh: int) -> dict[str, Any]:
    """`Reading(string device_id,string period_start,string period_end,uint256 energy_wh)`; energy in [Wh]."""
    if isinstance(energy_wh, bool) or not isinstance(energy_wh, int) or energy_wh < 0:
        raise BadInput("energy_wh must be a non-negative integer number of Wh", field="energy_wh")
    return _typed("Reading", READING_TYPE, {
        "device_id": device_id, "period_start": canonical_time(period_start, "period_start"),
        "period_end": canonical_time(period_end, "period_end"), "energy_wh": energy_wh})


def payment_message(device_id: str, paid_from: datetime | str, paid_until: datetime | str) -> dict[str, Any]:
    """`Payment(string device_id,string paid_from,string paid_until)`."""
    return _typed("Payment", PAYMENT_TYPE, {
        "device_id": device_id, "paid_from": canonical_time(paid_from, "paid_from"),
        "paid_until": canonical_time(paid_until, "paid_until")})
