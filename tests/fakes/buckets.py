"""A bucket in memory (implements services.ports.buckets.Bucket)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime

from chalicelib.domain.stores import ObjectGone


class FakeBucket:
    def __init__(self, name: str = "fake-bucket") -> None:
        self.name = name
        self.objects: dict[str, tuple[bytes, str, datetime]] = {}  # key -> (body, content type, written at)

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.objects[key] = (body, content_type, datetime.now(UTC))

    def get(self, key: str) -> bytes | None:
        return self.objects[key][0] if key in self.objects else None

    def etag(self, key: str) -> str | None:
        return f'"{hashlib.md5(self.objects[key][0]).hexdigest()}"' if key in self.objects else None

    def last_modified(self, key: str) -> datetime | None:
        return self.objects[key][2] if key in self.objects else None

    def presigned_put(self, key: str, expires_s: int) -> str:
        return f"https://{self.name}.invalid/{key}?method=PUT&X-Amz-Expires={expires_s}"

    def presigned_get(self, key: str, expires_s: int) -> str:
        return f"https://{self.name}.invalid/{key}?X-Amz-Expires={expires_s}"

    def chunks(self, key: str, chunk_bytes: int = 1 << 20, etag: str | None = None) -> Iterator[bytes]:
        if key not in self.objects or (etag is not None and etag != self.etag(key)):
            raise ObjectGone(key)
        body = self.objects[key][0]
        for start in range(0, len(body), chunk_bytes):
            yield body[start:start + chunk_bytes]

    def keys(self, prefix: str) -> Iterator[str]:
        yield from sorted(k for k in self.objects if k.startswith(prefix))
