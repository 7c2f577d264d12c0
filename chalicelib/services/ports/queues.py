"""A queue of JSON messages (`adapters.sqs.SqsQueue`; `tests/fakes/queues.py`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol


class Queue(Protocol):
    def send_json(self, bodies: Sequence[Any]) -> None:
        """Send each body as one message."""

    def in_queue(self) -> int:
        """Messages waiting or being handled."""
