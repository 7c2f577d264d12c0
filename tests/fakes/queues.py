"""A queue in memory: what was sent, in order (implements services.ports.queues.Queue)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any


class FakeQueue:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    def send_json(self, bodies: Sequence[Any]) -> None:
        # Through JSON, as SQS carries them: a body that would not serialise fails here too.
        self.messages += [json.loads(json.dumps(body, separators=(",", ":"))) for body in bodies]

    def in_queue(self) -> int:
        return len(self.messages)

    def reading_ids(self) -> list[str]:
        return [i for body in self.messages for i in body.get("reading_ids", [])]
