"""The one wiring module: settings from the environment, adapters built lazily once."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, cast

from . import config

if TYPE_CHECKING:
    from .services.intake import Intake, ReadingParser
    from .services.ports.buckets import Bucket
    from .services.ports.certificates import Drecs
    from .services.ports.ledger import Batches, Events
    from .services.ports.pull import PullStore, Secrets
    from .services.ports.queues import Queue
    from .services.ports.readings import ReadingStore
    from .services.ports.registry import KeyStore, RegistryStore, UploadAnnouncements
    from .services.ports.trading import Trades
    from .services.pulling import Puller
    from .services.registry import SiteLookup
    from .services.validation import Validator


@dataclass
class Container:
    settings: config.Settings = field(default_factory=config.load)

    @cached_property
    def session(self) -> Any:
        import boto3

        # boto3 reads AWS_ENDPOINT_URL itself: the emulator, LocalStack or AWS.
        return boto3.session.Session()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            from botocore.config import Config

            # boto3 presigns S3 URLs with SigV2 unless told otherwise; AWS deprecated SigV2.
            # One client serves every thread of the process (the local dispatcher's pollers): a pool
            # smaller than them drops and reopens connections. Parameters are checked by the service
            # (a ValidationException names the field), not again by botocore on every call.
            config = Config(max_pool_connections=32, parameter_validation=False,
                            **({"signature_version": "s3v4"} if service == "s3" else {}))
            self._clients[service] = self.session.client(service, config=config)
        return self._clients[service]

    @cached_property
    def _clients(self) -> dict[str, Any]:
        return {}

    @cached_property
    def registry(self) -> RegistryStore:
        from .adapters.registry_store import DynamoRegistry

        return DynamoRegistry(self.client("dynamodb"), self.settings.name)

    @cached_property
    def keys(self) -> KeyStore:
        from .adapters.key_store import DynamoKeys

        return DynamoKeys(self.client("dynamodb"), self.settings.name)

    @cached_property
    def events(self) -> Events:
        from .adapters.event_store import DynamoEvents

        return DynamoEvents(self.client("dynamodb"), self.settings.name)


    @cached_property
    def readings(self) -> ReadingStore:
        from .adapters.reading_store import DynamoReadings

        return DynamoReadings(self.client("dynamodb"), self.settings.name)

    def queue(self, logical: str) -> Queue:
        from .adapters.sqs import SqsQueue

        if logical not in self._queues:
            self._queues[logical] = SqsQueue(self.client("sqs"), self.settings.name(logical))
        return self._queues[logical]

    @cached_property
    def _queues(self) -> dict[str, Queue]:
        return {}

    @cached_property
    def uploads_bucket(self) -> Bucket:
        from .adapters.s3 import S3Bucket

        return S3Bucket(self.client("s3"), self.settings.uploads_bucket)

    @cached_property
    def upload_announcements(self) -> UploadAnnouncements:
        from .adapters.upload_store import DynamoUploads

        return DynamoUploads(self.client("dynamodb"), self.settings.name)

    @cached_property
    def ledger_bucket(self) -> Any:
        from .adapters.s3 import S3Bucket

        return S3Bucket(self.client("s3"), self.settings.ledger_bucket)

    def intake(self, parse: ReadingParser) -> Intake:
        """A fresh intake per request or file (it caches the devices it has looked up); the edge
        hands it the parser of raw readings (JSON items, CSV rows). Its readings carry the
        correlation id of the request or upload being handled."""
        from .services.intake import Intake
        from .telemetry import correlation_id

        return Intake(self.registry, self.readings, self.queue("readings"), parse, correlation_id())

    @cached_property
    def pulls(self) -> PullStore:
        from .adapters.pull_store import DynamoPulls

        return DynamoPulls(self.client("dynamodb"), self.settings.name)

    @cached_property
    def secrets(self) -> Secrets:
        from .adapters.ssm import SsmSecrets

        return SsmSecrets(self.client("ssm"))

    def pull_destination_check(self, url: str) -> None:
        """BadInput (field `url`) for a partner URL that is malformed or internal (unless allowed)."""
        from .adapters.partner_http import check_destination

        check_destination(url, self.settings.pull_allow_private)

    def puller(self) -> Puller:
        from .adapters.partner_http import PartnerClient
        from .api.reading_input import parse_reading
        from .services.pulling import Puller, PullLimits

        s = self.settings
        fetch = PartnerClient(s.pull_allow_private, s.pull_connect_timeout_s, s.pull_read_timeout_s,
                              s.pull_max_response_bytes)
        limits = PullLimits(max_pages=s.pull_max_pages, run_s=s.pull_run_s, lease_s=s.pull_lease_s)
        return Puller(self.pulls, self.secrets, self.registry, lambda: self.intake(parse_reading), fetch, limits,
                      after_queued=_exit_after(s.test_pull_exit_after_queued_page))

    @cached_property
    def validator(self) -> Validator:
        from .services.validation import PeerSettings, Validator

        settings = self.settings
        peers = PeerSettings(settings.peer_min, settings.peer_radius_km, settings.peer_wait_s, settings.peer_shards)
        return Validator(self.registry, self.readings, self.queue("accepted"), peers, self.queue("readings"))

    @cached_property
    def batches(self) -> Batches:
        from .adapters.batch_store import DynamoBatches

        return DynamoBatches(self.client("dynamodb"), self.settings.name)

    @cached_property
    def chain(self) -> Any:
        """The ledger contract, or None when no chain is configured (DREC_CHAIN_RPC, DREC_LEDGER_ADDRESS)."""
        from .adapters.chain import ChainLedger

        s = self.settings
        if not (s.chain_rpc and s.ledger_address):
            return None
        if s.chain_private_key:
            return ChainLedger(s.chain_rpc, s.chain_private_key, s.ledger_address)
        return ChainLedger.reader(s.chain_rpc, s.ledger_address)

    @cached_property
    def proofs(self) -> Any:
        from .services.anchoring import Proofs

        return Proofs(self.events, self.batches, self.ledger_bucket)

    @cached_property
    def drecs(self) -> Drecs:
        from .adapters.drec_store import DynamoDrecs

        return DynamoDrecs(self.client("dynamodb"), self.settings.name)

    @cached_property
    def trades(self) -> Trades:
        from .adapters.trade_store import DynamoTrades

        return DynamoTrades(self.client("dynamodb"), self.settings.name)

    @cached_property
    def issuer(self) -> Any:
        from .adapters.registry_store import DynamoRegistry
        from .domain.issuance.keys import PoolingConfig
        from .services.issuance import Issuer

        # The issuer still reads device items (DynamoRegistry.devices) until it takes the registry port.
        return Issuer(cast(DynamoRegistry, self.registry), self.drecs,
                      PoolingConfig.from_env_value(self.settings.pooling))

    @cached_property
    def site_lookup(self) -> SiteLookup:
        from .domain.twin.site import site_constants

        def lookup(latitude: float, longitude: float) -> dict[str, Any]:
            site = site_constants(latitude, longitude)
            return {"altitude_m": site.altitude_m, "linke_turbidity": list(site.linke_turbidity)}

        return lookup


def _exit_after(page: int | None) -> Any:
    """The test-only fault (DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE): the process dies after that page is
    queued and before its cursor is saved. None (the default) installs nothing."""
    if page is None:
        return None

    def exit_after(queued_page: int) -> None:
        if queued_page == page:
            import os

            os._exit(75)

    return exit_after


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
