"""The AWS profile: a CloudFormation template rendered from the same `infra.resources` list.

`python -m infra.cloudformation drec-prod > infra/cloudformation.json` regenerates the
committed template; a test checks it still matches the resource list. Deploy with
`aws cloudformation deploy --template-file infra/cloudformation.json --stack-name drec-prod`
then `chalice deploy --stage aws`.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from .provision import table_definition
from .resources import RESOURCES, Resources, bucket_policy, dead_letter, physical


def _logical_id(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[-_]", name))


def template(prefix: str, resources: Resources = RESOURCES) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table in resources.tables:
        table_properties: dict[str, Any] = table_definition(prefix, table)
        if table.ttl_attribute:
            table_properties["TimeToLiveSpecification"] = {"AttributeName": table.ttl_attribute, "Enabled": True}
        out[_logical_id(f"table-{table.logical}")] = {"Type": "AWS::DynamoDB::Table", "Properties": table_properties}
    for queue in resources.queues:
        name = physical(prefix, queue.logical)
        dlq_id = _logical_id(f"queue-{queue.logical}-dlq")
        out[dlq_id] = {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": dead_letter(name)}}
        out[_logical_id(f"queue-{queue.logical}")] = {"Type": "AWS::SQS::Queue", "Properties": {
            "QueueName": name,
            "VisibilityTimeout": queue.visibility_timeout_s,
            "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
                              "maxReceiveCount": queue.max_receive_count},
        }}
    for bucket in resources.buckets:
        name = physical(prefix, bucket.logical)
        properties: dict[str, Any] = {"BucketName": name}
        depends = []
        if bucket.notifications:
            properties["NotificationConfiguration"] = {"QueueConfigurations": [
                {"Event": "s3:ObjectCreated:*",
                 "Queue": {"Fn::GetAtt": [_logical_id(f"queue-{n.queue}"), "Arn"]},
                 "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": n.prefix},
                                                 {"Name": "suffix", "Value": n.suffix}]}}}
                for n in bucket.notifications]}
            for n in bucket.notifications:
                policy_id = _logical_id(f"policy-{n.queue}-from-{bucket.logical}")
                depends.append(policy_id)
                out[policy_id] = {"Type": "AWS::SQS::QueuePolicy", "Properties": {
                    "Queues": [{"Ref": _logical_id(f"queue-{n.queue}")}],
                    "PolicyDocument": {"Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": {"Fn::GetAtt": [_logical_id(f"queue-{n.queue}"), "Arn"]},
                        "Condition": {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{name}"}}}]}}}
        resource: dict[str, Any] = {"Type": "AWS::S3::Bucket", "Properties": properties}
        if depends:
            resource["DependsOn"] = depends
        out[_logical_id(f"bucket-{bucket.logical}")] = resource
        policy = bucket_policy(name, bucket, {"Ref": "ApiRoleArn"})
        if policy:
            out[_logical_id(f"bucket-{bucket.logical}-policy")] = {"Type": "AWS::S3::BucketPolicy", "Properties": {
                "Bucket": {"Ref": _logical_id(f"bucket-{bucket.logical}")}, "PolicyDocument": policy}}
    out.update(alarms(prefix, resources))
    return {"AWSTemplateFormatVersion": "2010-09-09",
            "Description": f"D-REC platform data resources and alarms ({prefix})",
            "Parameters": {"ApiRoleArn": {
                "Type": "String",
                "Description": "ARN of the API's Lambda execution role (chalice deploy --stage aws makes "
                               "arn:aws:iam::<account>:role/drec-platform-aws): the only principal that may "
                               "write incoming/ in the uploads bucket, through the URLs it presigns"},
                "AlarmEmail": {"Type": "String", "Default": "",
                               "Description": "An address the alarms are mailed to (confirm the subscription "
                                              "mail); empty: subscribe to the AlarmTopic yourself"},
                "FunctionPrefix": {"Type": "String", "Default": "drec-platform-aws",
                                   "Description": "Lambda names are <FunctionPrefix>-<handler> (chalice: "
                                                  "<app_name>-<stage>)"},
                "AnchoringLagLimitSeconds": {"Type": "Number", "Default": ANCHORING_LAG_LIMIT_S, "MinValue": 60,
                                             "Description": "Alarm when the oldest unanchored event is older"}},
            "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
            "Resources": out}


ANCHORING_LAG_LIMIT_S = 900
#: Handlers whose errors page the operator (app.py's names; their Lambdas are <FunctionPrefix>-<name>).
WATCHED_FUNCTIONS = ("validate_readings", "issue_drecs", "ingest_upload", "anchor_events")


def _alarm(description: str, namespace: str, metric: str, dimensions: list[dict[str, Any]], statistic: str,
           threshold: float | dict[str, Any], missing: str, unit_period_s: int = 300) -> dict[str, Any]:
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": {
        "AlarmDescription": description, "Namespace": namespace, "MetricName": metric, "Dimensions": dimensions,
        "Statistic": statistic, "Period": unit_period_s, "EvaluationPeriods": 1, "Threshold": threshold,
        "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": missing,
        "AlarmActions": [{"Ref": "AlarmTopic"}], "OKActions": [{"Ref": "AlarmTopic"}]}}


def alarms(prefix: str, resources: Resources = RESOURCES) -> dict[str, Any]:
    """An SNS topic and the alarms that publish to it: dead letters, anchoring lag, handler errors."""
    out: dict[str, Any] = {
        "AlarmTopic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": f"{prefix}-alarms"}},
        "AlarmEmailSubscription": {"Type": "AWS::SNS::Subscription", "Condition": "HasAlarmEmail", "Properties": {
            "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}, "TopicArn": {"Ref": "AlarmTopic"}}},
        # Emitted every minute by the measure_operations schedule: no data means nobody measures, so it breaches.
        "AlarmAnchoringLag": _alarm(
            f"{prefix}: the oldest event not anchored on the chain is older than the limit (chain down, "
            "anchorer failing, or no metrics at all)", "Drec", "AnchoringLagSeconds",
            [{"Name": "prefix", "Value": prefix}], "Maximum", {"Ref": "AnchoringLagLimitSeconds"}, "breaching"),
    }
    for queue in resources.queues:
        dlq = dead_letter(physical(prefix, queue.logical))
        out[_logical_id(f"alarm-{queue.logical}-dead-letters")] = _alarm(
            f"{dlq}: messages failed {queue.max_receive_count} times and wait for an operator (see the "
            "handler's log lines by correlation_id; redrive once fixed)", "AWS/SQS",
            "ApproximateNumberOfMessagesVisible", [{"Name": "QueueName", "Value": dlq}], "Maximum", 0,
            "notBreaching")
    for function in WATCHED_FUNCTIONS:
        out[_logical_id(f"alarm-{function}-errors")] = _alarm(
            f"{prefix}: the {function} handler raised (its batch is redelivered, then dead-lettered)",
            "AWS/Lambda", "Errors", [{"Name": "FunctionName", "Value": {"Fn::Sub": f"${{FunctionPrefix}}-{function}"}}],
            "Sum", 0, "notBreaching")
    return out


def render(prefix: str) -> str:
    return json.dumps(template(prefix), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render(sys.argv[1] if len(sys.argv) > 1 else "drec-prod"))
