"""Objects in S3: streamed reads, whole writes, presence checks, presigned upload URLs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from ..domain.stores import ObjectGone


class S3Bucket:
    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, body: bytes, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    def get(self, key: str) -> bytes | None:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return None
            raise

    def etag(self, key: str) -> str | None:
        try:
            return str(self.client.head_object(Bucket=self.bucket, Key=key)["ETag"])
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def last_modified(self, key: str) -> datetime | None:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=key)["LastModified"]  # type: ignore[no-any-return]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def presigned_put(self, key: str, expires_s: int) -> str:
        """A URL anyone holding it may PUT `key` with, for `expires_s` seconds, as this client's identity.

        It is signed locally with the client's credentials and endpoint (the emulator's when
        AWS_ENDPOINT_URL is set), so it costs no request.
        """
        return str(self.client.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s, HttpMethod="PUT"))

    def presigned_get(self, key: str, expires_s: int) -> str:
        return str(self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=expires_s))

    def chunks(self, key: str, chunk_bytes: int = 1 << 20, etag: str | None = None) -> Iterator[bytes]:
        """The object's bytes in pieces of at most `chunk_bytes`, never held whole in memory.

        With `etag`, only that version is read (else `ObjectGone`): a notification vouches for the
        object it names, not its successor. Splitting into lines is the reader's business
        (`services.uploads.text_lines`), which bounds a line however the bytes fall.
        """
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": key}
        if etag:
            request["IfMatch"] = etag
        try:
            body = self.client.get_object(**request)["Body"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404", "PreconditionFailed", "412"):
                raise ObjectGone(key) from exc
            raise
        try:
            yield from body.iter_chunks(chunk_bytes)
        finally:
            body.close()  # a file stopped early must not leave its connection half read

    def keys(self, prefix: str) -> Iterator[str]:
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            for obj in page.get("Contents", []):
                yield obj["Key"]
