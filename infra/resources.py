"""The one list of cloud resources: every profile (moto, LocalStack, AWS) is made from it.

`infra.provision` creates these through boto3 for the emulator and LocalStack;
`infra.cloudformation` renders the same list as a CloudFormation template for AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.index_keys import key_attribute


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str = "S"  # DynamoDB scalar type: S | N


@dataclass(frozen=True)
class Index:
    name: str
    hash_key: Attribute
    range_key: Attribute | None = None
    # ALL copies every attribute, so every write of the item rewrites the index entry; KEYS_ONLY
    # holds the keys (the table's and the index's) and changes only when they do; INCLUDE adds the
    # attributes named in `include`, and its entry is rewritten only when one of them (or a key) changes.
    projection: str = "ALL"
    include: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    logical: str
    hash_key: Attribute
    indexes: tuple[Index, ...] = ()
    range_key: Attribute | None = None
    ttl_attribute: str | None = None  # DynamoDB deletes items once this epoch-seconds attribute has passed

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
    # Prefixes no one but the API's role may PUT to; uploaders use the URLs the API presigns.
    api_only_prefixes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParameterPath:
    """SSM Parameter Store names under `/<prefix>/<logical>/`, written by the app at run time (SecureStrings,
    encrypted with the account's default key alias/aws/ssm): nothing to create, only to permit."""

    logical: str


@dataclass(frozen=True)
class Resources:
    tables: tuple[Table, ...]
    queues: tuple[Queue, ...]
    buckets: tuple[Bucket, ...]
    parameters: tuple[ParameterPath, ...] = ()


S = Attribute
K = key_attribute  # a write-sharded index key (`status` -> `status_key`): chalicelib/domain/index_keys.py
N = lambda name: Attribute(name, "N")  # noqa: E731

RESOURCES = Resources(
    tables=(
        Table("sources", S("id")),
        Table("accounts", S("id"), (Index("by_entity", S("entity"), S("id")),)),
        Table(
            "devices",
            S("id"),
            (
                Index("by_entity", S(K("entity")), S("id")),
                Index("by_owner", S("owner_account_id"), S("id")),
                Index("by_country", S(K("country")), S("id")),
                Index("by_type", S(K("device_type")), S("id")),
            ),
        ),
        # API key hashes, external ids and other uniqueness guards.
        Table("lookups", S("k")),
        # Each event its own partition (`id`, the event id `ev-<shard>-<seq>`), never the shard: a shard
        # as partition key would be one hot partition again. By type, per shard (`type_shard`).
        Table(
            "events",
            S("id"),
            (Index("by_type", S("type_shard"), N("seq")),),
        ),
        # Which events concern a subject: its own, and e.g. a device's share in an issued D-REC;
        # sorted by `position` (occurred_at#shard#seq), unique across shards.
        Table("event_links", S("subject_id"), range_key=S("position")),
        Table("counters", S("name")),
        Table(
            "readings",
            S("id"),
            (
                # The status a device's listing filters on, not the whole reading: the listing reads its page's
                # readings by id, and judging, pooling and linking leave the entry alone unless the status moves.
                Index("by_device", S("device_id"), S("period_start"), projection="INCLUDE", include=("status",)),
                # Keys only: a listing reads the page's readings by id; a verdict, pooling and linking then
                # leave the entry alone instead of copying the whole reading into it again.
                Index("by_status", S(K("status")), S("id"), projection="KEYS_ONLY"),
                # Sparse: only readings waiting for the validator ("queued") or issuance ("pooling"); the
                # sweep needs their ids only.
                Index("by_pipeline", S(K("pipeline")), S("received_at"), projection="KEYS_ONLY"),
            ),
        ),
        # Per device: accepted period ranges (the overlap guard), history, version.
        Table("device_state", S("device_id")),
        # Neighbours: per geohash cell and period, a histogram of reporting devices' ratios (sharded), and
        # per cell how many devices report there. Updated in the validator's transactions, never scanned.
        Table("peers", S("key"), ttl_attribute="expires_at"),
        Table("pools", S("id")),
        Table(
            "drecs",
            S("serial"),
            (
                # Per owner, not write-sharded: an owner holding a tenth of a 10-million-device fleet
                # would need two partitions' write units if these copied whole D-RECs (about 10 KB
                # each, rewritten on issuance and linking). They hold what the holdings and the
                # trading filters read; listings fetch the D-RECs themselves by serial.
                Index("by_owner", S("owner_account_id"), S("serial"), projection="INCLUDE",
                      include=("status", "country", "device_type", "offtaker_type", "vintage", "period_start")),
                Index("by_owner_status", S("owner_status"), S("serial"), projection="INCLUDE",
                      include=("country", "device_type", "offtaker_type", "vintage", "period_start", "locked_by")),
                Index("by_country", S(K("country")), S("serial")),
                Index("by_device_type", S(K("device_type")), S("serial")),
                Index("by_offtaker_type", S(K("offtaker_type")), S("serial")),
                Index("by_status", S(K("status")), S("serial")),
                # Sparse: D-RECs whose device and reading links are still to be written.
                Index("by_linking", S(K("linking")), S("serial")),
            ),
        ),
        # (device or reading, serial) pairs: which D-RECs a device's or a reading's Wh went into.
        Table("drec_links", S("subject_id"), range_key=S("serial")),
        Table("transfers", S("id"), (Index("by_account", S("account_id"), S("id")),)),
        Table("redemptions", S("id"), (Index("by_account", S("account_id"), S("id")),)),
        # Anchored batches of events, by shard (`ledger` = shard-<n>) and first sequence number.
        Table("batches", S("ledger"), range_key=N("first_seq")),
        # Pull configurations and their state, one item per source. Sparse and keys only: the active ones
        # by `due_shard` and `next_due_at`, so a tick reads what is due, never every source.
        Table("pulls", S("source_id"), (Index("by_due", S("due_shard"), S("next_due_at"), projection="KEYS_ONLY"),)),
        # Each run of a pull, newest last by `run_id` (which starts with its time); kept 90 days.
        Table("pull_runs", S("source_id"), range_key=S("run_id"), ttl_attribute="expires_at"),
    ),
    queues=(
        Queue("uploads", visibility_timeout_s=900, max_receive_count=3),
        Queue("readings"),
        Queue("accepted"),
    ),
    buckets=(
        Bucket("uploads", (Notification("uploads", "incoming/", ".csv"),), api_only_prefixes=("incoming/",)),
        Bucket("ledger"),
    ),
    # The auth header values of pull configurations: /<prefix>/pull/<source_id>/auth-<token>.
    parameters=(ParameterPath("pull"),),
)


def physical(prefix: str, logical: str) -> str:
    """Physical name of a resource: `<prefix>-<logical>` (tables, queues, buckets alike)."""
    return f"{prefix}-{logical}".replace("_", "-")


def parameter_path(prefix: str, logical: str) -> str:
    """The names of a parameter path: `/<prefix>/<logical>/` (chalicelib.config.Settings.parameter)."""
    return f"/{prefix}/{logical}/"


def dead_letter(queue_name: str) -> str:
    return f"{queue_name}-dlq"


def bucket_policy(bucket_name: str, bucket: Bucket, api_role_arn: Any) -> dict[str, Any] | None:
    """The bucket policy: deny PutObject under `api_only_prefixes` to every principal but the API's role.

    A presigned URL acts as the role that signed it, so only URLs from `POST /uploads/url` can
    write there; the prefix `incoming/<source_id>/` then means what it says. `api_role_arn` is an
    ARN, or a CloudFormation reference to one.
    """
    if not bucket.api_only_prefixes:
        return None
    return {"Version": "2012-10-17", "Statement": [{
        "Sid": "OnlyPresignedUploads",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:PutObject",
        "Resource": [f"arn:aws:s3:::{bucket_name}/{prefix}*" for prefix in bucket.api_only_prefixes],
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": api_role_arn}},
    }]}


def provisioned_api_role_arn() -> str | None:
    """The role `infra.provision` writes into bucket policies: `DREC_API_ROLE_ARN`, else none.

    Unset for the moto emulator on purpose: moto 5.2.5 does not ignore this policy, it misjudges
    it. It evaluates the condition without any request context, so the Deny hits every PutObject
    under incoming/, presigned URLs included, and nothing could be uploaded. Locally the uploads
    handler's announcement check is what refuses unannounced files. Set it for LocalStack (or
    boto3 provisioning of AWS) to get the same policy as the CloudFormation template.
    """
    return os.environ.get("DREC_API_ROLE_ARN") or None
