"""Per-reading EIP-712 signatures: who must sign, and who did.

The rule (the verifier re-applies it from the registration events, so it stays this
simple): a device's readings are signed by the device's own `signing_address` if it
registered one; else by the `signing_address` of the device's source, which is the
device's `registered_by` if that is a source, else its owner account's
`registered_by` if that is a source; else nobody need sign. The caller's identity
plays no part: an operator or account key gets no exemption.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from eth_account import Account as EthAccount
from eth_account.messages import encode_typed_data

from ..domain.errors import Unauthorized
from ..domain.registry import Account, Device, Source, signing_source_id
from ..domain.signing import payment_message, reading_message

SIGNATURE = re.compile(r"^0x[0-9a-fA-F]{130}$")  # r, s, v: 65 bytes


def _recover(message: dict[str, Any], signature: str, field: str) -> str:
    if not isinstance(signature, str) or not SIGNATURE.match(signature):
        raise Unauthorized("signature must be 65 bytes as 0x-prefixed hex (130 hex digits)", field=field)
    try:
        return str(EthAccount.recover_message(encode_typed_data(full_message=message), signature=signature)).lower()
    except Exception as exc:  # a bad v or a point off the curve raise several kinds of errors
        raise Unauthorized(f"signature is not a valid EIP-712 signature ({exc})", field=field) from exc


def recover_reading(device_id: str, period_start: datetime | str, period_end: datetime | str, energy_wh: int,
                    signature: str, field: str = "signature") -> str:
    """The lowercase address that signed this Reading."""
    return _recover(reading_message(device_id, period_start, period_end, energy_wh), signature, field)


def recover_payment(device_id: str, paid_from: datetime | str, paid_until: datetime | str, signature: str,
                    field: str = "signature") -> str:
    """The lowercase address that signed this Payment."""
    return _recover(payment_message(device_id, paid_from, paid_until), signature, field)


def _sign(message: dict[str, Any], private_key: Any) -> str:
    signed = EthAccount.sign_message(encode_typed_data(full_message=message), private_key=private_key)
    return "0x" + signed.signature.hex().removeprefix("0x")


def sign_reading(private_key: Any, device_id: str, period_start: datetime | str, period_end: datetime | str,
                 energy_wh: int) -> str:
    """What a meter or source does before sending a reading (for tools and tests)."""
    return _sign(reading_message(device_id, period_start, period_end, energy_wh), private_key)


def sign_payment(private_key: Any, device_id: str, paid_from: datetime | str, paid_until: datetime | str) -> str:
    return _sign(payment_message(device_id, paid_from, paid_until), private_key)


def required_signer(device: Device, owner_account: Account | None,
                    source_of: Callable[[str], Source | None]) -> str | None:
    """The lowercase address whose signature this device's readings need, or None."""
    if device.signing_address:
        return device.signing_address.lower()
    source_id = signing_source_id(device, owner_account)
    source = source_of(source_id) if source_id else None
    return source.signing_address.lower() if source and source.signing_address else None
