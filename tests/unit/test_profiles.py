"""The emulator, LocalStack and AWS profiles describe the same resources."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.cloudformation import render, template
from infra.provision import provision
from infra.resources import RESOURCES, dead_letter, physical

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::123456789012:role/drec-platform-aws"


def _described(aws: Any, prefix: str) -> dict[str, Any]:
    """What the emulator really holds after provisioning (the local and LocalStack path)."""
    dynamodb, sqs, s3 = aws.client("dynamodb"), aws.client("sqs"), aws.client("s3")
    tables = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        tables[name] = {
            "keys": [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]],
            "indexes": sorted((g["IndexName"], tuple((k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]),
                               g["Projection"]["ProjectionType"]) for g in table.get("GlobalSecondaryIndexes", [])),
        }
    queues = {}
    for url in sqs.list_queues()["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        queues[url.rsplit("/", 1)[1]] = (redrive["deadLetterTargetArn"].rsplit(":", 1)[1], int(
            redrive["maxReceiveCount"])) if redrive else None
    buckets = {}
    for bucket in s3.list_buckets()["Buckets"]:
        configuration = s3.get_bucket_notification_configuration(Bucket=bucket["Name"])
        buckets[bucket["Name"]] = sorted(
            (q["QueueArn"].rsplit(":", 1)[1], tuple(sorted((r["Name"].lower(), r["Value"])
                                                           for r in q["Filter"]["Key"]["FilterRules"])))
            for q in configuration.get("QueueConfigurations", []))
    policies = {}
    for bucket in s3.list_buckets()["Buckets"]:
        try:
            policies[bucket["Name"]] = json.loads(s3.get_bucket_policy(Bucket=bucket["Name"])["Policy"])
        except s3.exceptions.ClientError:
            pass  # no policy on this bucket
    return {"tables": tables, "queues": queues, "buckets": buckets, "policies": policies}


def _from_template(prefix: str) -> dict[str, Any]:
    resources = template(prefix)["Resources"]
    tables, queues, buckets = {}, {}, {}
    by_id = {rid: r for rid, r in resources.items()}
    for resource in resources.values():
        p = resource["Properties"]
        if resource["Type"] == "AWS::DynamoDB::Table":
            tables[p["TableName"]] = {
                "keys": [(k["AttributeName"], k["KeyType"]) for k in p["KeySchema"]],
                "indexes": sorted((g["IndexName"], tuple((k["AttributeName"], k["KeyType"]) for k in g["KeySchema"]),
                                   g["Projection"]["ProjectionType"]) for g in p.get("GlobalSecondaryIndexes", [])),
            }
        elif resource["Type"] == "AWS::SQS::Queue":
            redrive = p.get("RedrivePolicy")
            queues[p["QueueName"]] = (by_id[redrive["deadLetterTargetArn"]["Fn::GetAtt"][0]]["Properties"][
                "QueueName"], redrive["maxReceiveCount"]) if redrive else None
        elif resource["Type"] == "AWS::S3::Bucket":
            buckets[p["BucketName"]] = sorted(
                (by_id[q["Queue"]["Fn::GetAtt"][0]]["Properties"]["QueueName"],
                 tuple(sorted((r["Name"], r["Value"]) for r in q["Filter"]["S3Key"]["Rules"])))
                for q in p.get("NotificationConfiguration", {}).get("QueueConfigurations", []))
    # The template takes the role as its ApiRoleArn parameter; provisioning takes DREC_API_ROLE_ARN.
    role = json.dumps({"Ref": "ApiRoleArn"})
    policies = {by_id[r["Properties"]["Bucket"]["Ref"]]["Properties"]["BucketName"]: json.loads(
        json.dumps(r["Properties"]["PolicyDocument"]).replace(role, json.dumps(ROLE)))
        for r in resources.values() if r["Type"] == "AWS::S3::BucketPolicy"}
    return {"tables": tables, "queues": queues, "buckets": buckets, "policies": policies}


def test_emulator_and_cloudformation_hold_the_same_resources(aws: Any) -> None:
    # GIVEN the emulator provisioned by infra.provision (local and LocalStack profiles)
    described = _described(aws, "drec-test")
    # THEN the AWS profile's template, rendered from the same list, describes the same things,
    # except the uploads bucket policy, which the moto emulator is provisioned without: moto would
    # evaluate its condition without the caller's role and deny every upload
    expected = _from_template("drec-test")
    assert described["policies"] == {} and expected.pop("policies")
    described.pop("policies")
    assert described == expected
    assert len(described["tables"]) == len(RESOURCES.tables)
    assert len(described["queues"]) == 2 * len(RESOURCES.queues)
    assert described["queues"][physical("drec-test", "readings")] == (
        dead_letter(physical("drec-test", "readings")), 5)


def test_provisioning_with_a_role_applies_the_templates_bucket_policy(
        aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN provisioning told the API's role (as for LocalStack)
    monkeypatch.setenv("DREC_API_ROLE_ARN", ROLE)
    provision("drec-test")
    # THEN the uploads bucket holds the policy the template describes
    described = _described(aws, "drec-test")["policies"]
    assert described == _from_template("drec-test")["policies"]
    # AND it denies PutObject on incoming/ to everyone but that role
    statement = described[physical("drec-test", "uploads")]["Statement"][0]
    assert (statement["Effect"], statement["Principal"], statement["Action"], statement["Resource"]) == (
        "Deny", "*", "s3:PutObject", ["arn:aws:s3:::drec-test-uploads/incoming/*"])
    assert statement["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": ROLE}}
    assert template("drec-test")["Parameters"]["ApiRoleArn"]["Type"] == "String"


def test_committed_template_matches_the_resource_list() -> None:
    committed = (REPO / "infra" / "cloudformation.json").read_text()
    assert committed == render("drec-prod"), "run: python -m infra.cloudformation drec-prod > infra/cloudformation.json"


def test_chalice_stages_share_one_prefix_rule() -> None:
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    assert set(config["stages"]) == {"local", "localstack", "aws"}
    prefixes = {stage: s["environment_variables"]["DREC_PREFIX"] for stage, s in config["stages"].items()}
    assert prefixes["aws"] == "drec-prod"
    assert config["stages"]["localstack"]["environment_variables"]["AWS_ENDPOINT_URL"].endswith(":4566")
    assert "AWS_ENDPOINT_URL" not in config["stages"]["aws"]["environment_variables"]
