"""A client of the registry's HTTP API for aggregators: `from chalicelib.client import DrecClient`.

Submits readings from CSV or JSON files in batches, signed per reading with an EIP-712 key when
one is given, retried safely (the API answers the same reading_id for the same reading), and
reports every line's fate; lists and follows readings, D-RECs and redemptions across pages;
verifies a D-REC against the chain. `python -m chalicelib.client --help` is its command line.
"""

from .core import MAX_BATCH, DrecClient, LineResult, SubmitResult
from .files import KeyFileError, load_signing_key, read_rows
from .http import ApiError, Backoff, ClientError, Unreachable

__all__ = ["MAX_BATCH", "ApiError", "Backoff", "ClientError", "DrecClient", "KeyFileError", "LineResult",
           "SubmitResult", "Unreachable", "load_signing_key", "read_rows"]
