"""Secrets as SSM Parameter Store SecureStrings (encrypted at rest with the account's default key, aws/ssm)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class SsmSecrets:
    def __init__(self, client: Any) -> None:
        self.client = client

    def put(self, name: str, value: str) -> None:
        self.client.put_parameter(Name=name, Value=value, Type="SecureString", Overwrite=True)

    def get(self, name: str) -> str:
        return str(self.client.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])

    def delete(self, names: Sequence[str]) -> None:
        """Delete these parameters; ones already gone are no error (a retried delete)."""
        for start in range(0, len(names), 10):
            if names[start:start + 10]:
                self.client.delete_parameters(Names=list(names[start:start + 10]))
