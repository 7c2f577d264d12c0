"""Chain failures as exceptions, and revert data decoded into the contract's custom errors.

A revert carries a 4-byte selector and ABI-encoded arguments; `RevertDecoder` names the
selector from the contract's ABI (`DrecLedgerSequenceMismatch(expected=5, given=3)`) so a
caller can branch on `ChainReverted.error_name` and a person can read the message.
"""

from __future__ import annotations

from typing import Any

from eth_abi import decode as abi_decode
from eth_abi.exceptions import DecodingError
from eth_utils import function_signature_to_4byte_selector, to_checksum_address
from web3.exceptions import ContractLogicError

from ...domain.stores import ChainError

_ERROR_STRING = function_signature_to_4byte_selector("Error(string)")
_PANIC = function_signature_to_4byte_selector("Panic(uint256)")


class ChainUnavailable(ChainError):
    """The node did not answer: connection refused, timeout, or no receipt in time."""


class ChainReverted(ChainError):
    """The contract refused the call; `reason` names its custom error when it is known.

    `error_name` and `error_args` carry the decoded custom error, e.g.
    `DrecLedgerSequenceMismatch` and `{"expected": 5, "given": 3}`.
    """

    def __init__(
        self,
        reason: str,
        error_name: str | None = None,
        error_args: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.error_name = error_name
        self.error_args = error_args or {}


class RevertDecoder:
    """Decodes the revert data of one contract, from its ABI's `error` entries."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._errors = _error_decoders(abi)

    def reverted(self, exc: ContractLogicError) -> ChainReverted:
        """The `ChainReverted` that web3's `exc` stands for, named when its data can be decoded."""
        data = exc.data if isinstance(exc.data, str) else None
        if data is None or not data.startswith("0x") or len(data) < 10:
            return ChainReverted(str(exc.message or "execution reverted"))
        try:
            decoded = self.decode(bytes.fromhex(data[2:]))
        except (DecodingError, ValueError):
            decoded = None
        return decoded or ChainReverted(f"execution reverted with unknown data {data}")

    def decode(self, raw: bytes) -> ChainReverted | None:
        """The error in revert data `raw`: Error(string), Panic(uint256) or one of the ABI's custom errors."""
        selector, payload = raw[:4], raw[4:]
        if selector == _ERROR_STRING:
            (message,) = abi_decode(["string"], payload)
            return ChainReverted(f"Error({message!r})", "Error", {"message": message})
        if selector == _PANIC:
            (code,) = abi_decode(["uint256"], payload)
            return ChainReverted(f"Panic(0x{code:02x})", "Panic", {"code": code})
        if selector not in self._errors:
            return None
        name, names, types = self._errors[selector]
        values = [
            _readable(t, v)
            for t, v in zip(types, abi_decode(types, payload), strict=True)
        ]
        args = dict(zip(names, values, strict=True))
        shown = ", ".join(f"{key}={value}" for key, value in args.items())
        return ChainReverted(f"{name}({shown})", name, args)


def _error_decoders(
    abi: list[dict[str, Any]],
) -> dict[bytes, tuple[str, list[str], list[str]]]:
    decoders = {}
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [item["type"] for item in entry["inputs"]]
        names = [item["name"] or f"arg{i}" for i, item in enumerate(entry["inputs"])]
        selector = function_signature_to_4byte_selector(
            f"{entry['name']}({','.join(types)})"
        )
        decoders[selector] = (entry["name"], names, types)
    return decoders


def _readable(abi_type: str, value: Any) -> Any:
    if abi_type == "address":
        return to_checksum_address(value)
    return "0x" + value.hex() if isinstance(value, bytes) else value
