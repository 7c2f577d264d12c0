"""Source signatures: EIP-191 personal messages over the canonical JSON of what was sent."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from eth_account.messages import encode_defunct

from ..domain.canonical import canonical_json
from ..domain.errors import Unauthorized


def signer_of(payload: Any, signature: str) -> str:
    try:
        return str(Account.recover_message(encode_defunct(primitive=canonical_json(payload)),
                                           signature=signature)).lower()
    except Exception as exc:  # malformed signatures raise many kinds of errors
        raise Unauthorized("signature is not a valid EIP-191 signature of the canonical JSON of `readings`",
                           field="signature") from exc


def check_signature(source: dict[str, Any] | None, payload: Any, signature: str | None) -> str | None:
    """The verified signer, or None when the source registered no signing address."""
    address = (source or {}).get("signing_address")
    if not address:
        return None
    if not signature:
        raise Unauthorized(f"source {source['id'] if source else ''} registered signing address {address}: "
                           "sign the canonical JSON of `readings` (EIP-191) and send it as `signature`",
                           field="signature")
    signer = signer_of(payload, signature)
    if signer != address.lower():
        raise Unauthorized(f"signature was made by {signer}, not by the source's signing address {address}",
                           field="signature")
    return signer


def sign(payload: Any, private_key: str) -> str:
    """What a source does before sending (used by tools and tests)."""
    signed = Account.sign_message(encode_defunct(primitive=canonical_json(payload)), private_key=private_key)
    return "0x" + signed.signature.hex().removeprefix("0x")
