"""The one wiring module: settings from the environment, adapters built lazily once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import config


@dataclass
class Container:
    settings: config.Settings = field(default_factory=config.load)

    @cached_property
    def session(self) -> Any:
        import boto3

        # boto3 reads AWS_ENDPOINT_URL itself: the emulator, LocalStack or AWS.
        return boto3.session.Session()

    def client(self, service: str) -> Any:
        return self._clients.setdefault(service, self.session.client(service))

    @cached_property
    def _clients(self) -> dict[str, Any]:
        return {}

    @cached_property
    def registry(self) -> Any:
        from .adapters.registry_store import DynamoRegistry

        return DynamoRegistry(self.client("dynamodb"), self.settings.name)

    @cached_property
    def events(self) -> Any:
        from .adapters.event_store import DynamoEvents

        return DynamoEvents(self.client("dynamodb"), self.settings.name)


    @cached_property
    def site_lookup(self) -> Any:
        from .domain.twin import site_constants

        def lookup(latitude: float, longitude: float) -> dict[str, Any]:
            site = site_constants(latitude, longitude)
            return {"altitude_m": site.altitude_m, "linke_turbidity": list(site.linke_turbidity)}

        return lookup


_container: Container | None = None


def container() -> Container:
    global _container
    if _container is None:
        _container = Container()
    return _container


def reset() -> None:
    """Forget built adapters (tests change the environment between stacks)."""
    global _container
    _container = None
