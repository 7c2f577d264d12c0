"""A bucket of objects (`adapters.s3.S3Bucket`; `tests/fakes/buckets.py`)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Protocol


class ObjectGone(Exception):
    """The object was deleted, or replaced by another version, since it was notified."""


class Bucket(Protocol):
    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def etag(self, key: str) -> str | None: ...
    def last_modified(self, key: str) -> datetime | None: ...
    def presigned_put(self, key: str, expires_s: int) -> str: ...
    def presigned_get(self, key: str, expires_s: int) -> str: ...

    def lines(self, key: str, chunk_bytes: int = 1 << 20, etag: str | None = None) -> Iterator[str]:
        """The object's text line by line (line ends kept); with `etag`, that version only, else ObjectGone."""

    def keys(self, prefix: str) -> Iterator[str]: ...
