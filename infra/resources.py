"""The one list of cloud resources: every profile (moto, LocalStack, AWS) is made from it.

`infra.provision` creates these through boto3 for the emulator and LocalStack;
`infra.cloudformation` renders the same list as a CloudFormation template for AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str = "S"  # DynamoDB scalar type: S | N


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: Attribute
    range_key: Attribute | None = None


@dataclass(frozen=True)
class Table:
    logical: str
    hash_key: Attribute
    indexes: tuple[Index, ...] = ()
    range_key: Attribute | None = None

    def attributes(self) -> list[Attribute]:
        seen: dict[str, Attribute] = {}
        keys = [self.hash_key, self.range_key]
        for index in self.indexes:
            keys += [index.hash_key, index.range_key]
        for attribute in keys:
            if attribute is not None:
                seen.setdefault(attribute.name, attribute)
        return list(seen.values())


@dataclass(frozen=True)
class Queue:
    logical: str
    visibility_timeout_s: int = 120
    max_receive_count: int = 5  # then the message moves to `<name>-dlq`


@dataclass(frozen=True)
class Notification:
    queue: str
    prefix: str
    suffix: str


@dataclass(frozen=True)
class Bucket:
    logical: str
    notifications: tuple[Notification, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Resources:
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    buckets: tuple[Bucket, ...]


S = Attribute
N = lambda name: Attribute(name, "N")  # noqa: E731

RESOURCES = Resources(
    tables=(
        Table("sources", S("id")),
        Table("accounts", S("id"), (Index("by_entity", S("entity"), S("id")),)),
        Table(
            "devices",
            S("id"),
            (
                Index("by_entity", S("entity"), S("id")),
                Index("by_owner", S("owner_account_id"), S("id")),
                Index("by_country", S("country"), S("id")),
                Index("by_type", S("device_type"), S("id")),
            ),
        ),
        # API key hashes, external ids and other uniqueness guards.
        Table("lookups", S("k")),
        Table(
            "events",
            N("seq"),
            (Index("by_type", S("type"), N("seq")),),
        ),
        # Which events concern a subject: its own, and e.g. a device's share in an issued D-REC.
        Table("event_links", S("subject_id"), range_key=N("seq")),
        Table("counters", S("name")),
        Table(
            "readings",
            S("id"),
            (
                Index("by_device", S("device_id"), S("period_start")),
                Index("by_status", S("status"), S("id")),
                # Sparse: only readings waiting for the validator ("queued") or issuance ("pooling").
                Index("by_pipeline", S("pipeline"), S("received_at")),
            ),
        ),
        # Per device: accepted period ranges (the overlap guard), history, version.
        Table("device_state", S("device_id")),
        Table("pools", S("id")),
        Table(
            "drecs",
            S("serial"),
            (
                Index("by_owner", S("owner_account_id"), S("serial")),
                Index("by_owner_status", S("owner_status"), S("serial")),
                Index("by_country", S("country"), S("serial")),
                Index("by_device_type", S("device_type"), S("serial")),
                Index("by_offtaker_type", S("offtaker_type"), S("serial")),
                Index("by_status", S("status"), S("serial")),
                # Sparse: D-RECs whose device and reading links are still to be written.
                Index("by_linking", S("linking"), S("serial")),
            ),
        ),
        # (device or reading, serial) pairs: which D-RECs a device's or a reading's Wh went into.
        Table("drec_links", S("subject_id"), range_key=S("serial")),
        Table("transfers", S("id"), (Index("by_account", S("account_id"), S("id")),)),
        Table("redemptions", S("id"), (Index("by_account", S("account_id"), S("id")),)),
        # Anchored batches of events, by first sequence number (one partition: batches are few).
        Table("batches", S("ledger"), range_key=N("first_seq")),
    ),
    queues=(
        Queue("uploads", visibility_timeout_s=900, max_receive_count=3),
        Queue("readings"),
        Queue("accepted"),
    ),
    buckets=(
        Bucket("uploads", (Notification("uploads", "incoming/", ".csv"),)),
        Bucket("ledger"),
    ),
)


def physical(prefix: str, logical: str) -> str:
    """Physical name of a resource: `<prefix>-<logical>` (tables, queues, buckets alike)."""
    return f"{prefix}-{logical}".replace("_", "-")


def dead_letter(queue_name: str) -> str:
    return f"{queue_name}-dlq"
