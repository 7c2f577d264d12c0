"""The ledger contract on an EVM chain (`ledger`), and the chain's failures decoded (`reverts`).

This face only hands their names on; patch module attributes in `ledger` itself.
"""

from ...domain.stores import ChainError
from .ledger import (
    AnchorReceipt,
    ChainLedger,
    OnChainBatch,
    load_artifact,
)
from .reverts import ChainReverted, ChainUnavailable, RevertDecoder

__all__ = [
    "AnchorReceipt",
    "ChainError",
    "ChainLedger",
    "ChainReverted",
    "ChainUnavailable",
    "OnChainBatch",
    "RevertDecoder",
    "load_artifact",
]
