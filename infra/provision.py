"""Create every resource of `infra.resources` through boto3, idempotently.

Used for the moto server and LocalStack profiles; boto3 finds the endpoint in
`AWS_ENDPOINT_URL` (unset: AWS itself).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import boto3
from botocore.exceptions import ClientError

from .resources import RESOURCES, Bucket, Queue, Resources, Table, dead_letter, physical


def _key_schema(hash_name: str, range_name: str | None) -> list[dict[str, str]]:
    schema = [{"AttributeName": hash_name, "KeyType": "HASH"}]
    if range_name:
        schema.append({"AttributeName": range_name, "KeyType": "RANGE"})
    return schema


def table_definition(prefix: str, table: Table) -> dict[str, Any]:
    """The CreateTable request for a table (also the source of the CloudFormation form)."""
    definition: dict[str, Any] = {
        "TableName": physical(prefix, table.logical),
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": a.name, "AttributeType": a.type} for a in table.attributes()
        ],
        "KeySchema": _key_schema(
            table.hash_key.name, table.range_key.name if table.range_key else None
        ),
    }
    if table.indexes:
        definition["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(
                    index.hash_key.name, index.range_key.name if index.range_key else None
                ),
                "Projection": {"ProjectionType": index.projection,
                               **({"NonKeyAttributes": list(index.include)} if index.include else {})},
            }
            for index in table.indexes
        ]
    return definition


def _create_table(dynamodb: Any, prefix: str, table: Table) -> None:
    try:
        dynamodb.create_table(**table_definition(prefix, table))
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    dynamodb.get_waiter("table_exists").wait(TableName=physical(prefix, table.logical))
    if table.ttl_attribute:
        name = physical(prefix, table.logical)
        status = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"].get("TimeToLiveStatus")
        if status not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(TableName=name, TimeToLiveSpecification={
                "AttributeName": table.ttl_attribute, "Enabled": True})


def _create_queue(sqs: Any, prefix: str, queue: Queue) -> str:
    name = physical(prefix, queue.logical)
    dlq_url = sqs.create_queue(QueueName=dead_letter(name))["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout_s),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receive_count)}
        ),
    }
    try:
        url: str = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "QueueAlreadyExists":
            raise
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def _create_bucket(s3: Any, prefix: str, bucket: Bucket, region: str) -> None:
    name = physical(prefix, bucket.logical)
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(
                Bucket=name, CreateBucketConfiguration={"LocationConstraint": region}
            )
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    from .resources import bucket_policy, provisioned_api_role_arn

    role = provisioned_api_role_arn()  # None on the moto emulator: see there why
    policy = bucket_policy(name, bucket, role) if role else None
    if policy:
        s3.put_bucket_policy(Bucket=name, Policy=json.dumps(policy))


def _configure_notifications(s3: Any, sqs: Any, prefix: str, bucket: Bucket) -> None:
    if not bucket.notifications:
        return
    name = physical(prefix, bucket.logical)
    configurations = []
    for notification in bucket.notifications:
        queue_url = sqs.get_queue_url(QueueName=physical(prefix, notification.queue))["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sqs.set_queue_attributes(
            QueueUrl=queue_url,
            Attributes={"Policy": json.dumps(_queue_policy(queue_arn, name))},
        )
        configurations.append(
            {
                "QueueArn": queue_arn,
                "Events": ["s3:ObjectCreated:*"],
                "Filter": {
                    "Key": {
                        "FilterRules": [
                            {"Name": "prefix", "Value": notification.prefix},
                            {"Name": "suffix", "Value": notification.suffix},
                        ]
                    }
                },
            }
        )
    s3.put_bucket_notification_configuration(
        Bucket=name, NotificationConfiguration={"QueueConfigurations": configurations}
    )


def _queue_policy(queue_arn: str, bucket_name: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "s3.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket_name}"}},
            }
        ],
    }


def provision(prefix: str, session: boto3.session.Session | None = None,
              resources: Resources = RESOURCES, notifications: bool = True) -> None:
    """Create tables, queues (each with its dead-letter queue), buckets and notifications.

    `notifications=False` leaves bucket notifications for `configure_notifications`, so that
    restoring saved objects does not announce them as new uploads.
    """
    session = session or boto3.session.Session()
    region = session.region_name or "us-east-1"
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    s3 = session.client("s3")
    for table in resources.tables:
        _create_table(dynamodb, prefix, table)
    for queue in resources.queues:
        _create_queue(sqs, prefix, queue)
    for bucket in resources.buckets:
        _create_bucket(s3, prefix, bucket, region)
    if notifications:
        configure_notifications(prefix, session, resources)


def configure_notifications(prefix: str, session: boto3.session.Session | None = None,
                            resources: Resources = RESOURCES) -> None:
    session = session or boto3.session.Session()
    for bucket in resources.buckets:
        _configure_notifications(session.client("s3"), session.client("sqs"), prefix, bucket)


if __name__ == "__main__":
    provision(sys.argv[1] if len(sys.argv) > 1 else "drec-localstack")
    print("provisioned")
