"""The emulator's journal: SSM parameter writes are told apart by header alone, and a snapshot keeps parameters."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from infra.journal import _dump_parameters, _load_parameters, _ssm_backend, changes_state, service_of

REGION = "us-east-1"


class Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("the body was read to route the request")


def _request(target: str = "", method: str = "POST", scope: str = "") -> dict[str, Any]:
    environ: dict[str, Any] = {"REQUEST_METHOD": method, "wsgi.input": Unreadable(), "CONTENT_LENGTH": "12"}
    if target:
        environ["HTTP_X_AMZ_TARGET"] = target
    if scope:
        environ["HTTP_AUTHORIZATION"] = f"AWS4-HMAC-SHA256 Credential=testing/20260101/{REGION}/{scope}/aws4_request"
    return environ


@pytest.mark.parametrize(("environ", "service", "writes"), [
    (_request("AmazonSSM.PutParameter", scope="ssm"), "ssm", True),
    (_request("AmazonSSM.DeleteParameters", scope="ssm"), "ssm", True),
    (_request("AmazonSSM.LabelParameterVersion", scope="ssm"), "ssm", True),
    (_request("AmazonSSM.GetParameter", scope="ssm"), "ssm", False),
    (_request("AmazonSSM.GetParametersByPath", scope="ssm"), "ssm", False),
    (_request("AmazonSQS.SendMessage", scope="sqs"), "sqs", False),
    (_request("DynamoDB_20120810.PutItem", scope="dynamodb"), "dynamodb", True),
    (_request("DynamoDB_20120810.GetItem", scope="dynamodb"), "dynamodb", False),
    (_request(method="PUT", scope="s3"), "s3", True),
    (_request(method="GET", scope="s3"), "s3", False),
    (_request(method="POST", scope="sts"), "other", False),
])
def test_requests_are_routed_by_header_without_reading_the_body(environ: dict[str, Any], service: str,
                                                               writes: bool) -> None:
    assert service_of(environ) == service
    assert changes_state(environ, service) is writes


@pytest.fixture
def ssm() -> Iterator[Any]:
    with mock_aws():
        yield boto3.client("ssm", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def test_a_snapshot_keeps_each_parameters_latest_version_and_drops_nothing_else(ssm: Any, tmp_path: Path) -> None:
    # GIVEN a SecureString overwritten and labelled and tagged, a String, and a parameter deleted
    ssm.put_parameter(Name="/drec/pull/a/auth", Value="Bearer 1", Type="SecureString", Description="pull auth",
                      Tags=[{"Key": "source", "Value": "a"}])
    ssm.put_parameter(Name="/drec/pull/a/auth", Value="Bearer 2", Type="SecureString", Overwrite=True)
    ssm.label_parameter_version(Name="/drec/pull/a/auth", Labels=["current"])
    ssm.put_parameter(Name="/drec/plain", Value="v", Type="String")
    ssm.put_parameter(Name="/drec/gone", Value="v", Type="String")
    ssm.delete_parameter(Name="/drec/gone")
    ssm.get_parameters(Names=["/drec/never"])  # a read leaving an empty slot in moto's defaultdict

    # WHEN the parameters are dumped, moto emptied, and they are loaded back
    path = tmp_path / "parameters.jsonl"
    assert _dump_parameters(path, REGION) == 2
    assert "Bearer 2" in path.read_text() and path.stat().st_mode & 0o077 == 0
    backend = _ssm_backend(REGION)
    backend._parameters.clear()
    backend._resource_tags.clear()
    assert _load_parameters(path, REGION) == 2

    # THEN the latest versions are back as they were; history is not
    got = ssm.get_parameter(Name="/drec/pull/a/auth", WithDecryption=True)["Parameter"]
    assert (got["Value"], got["Type"], got["Version"]) == ("Bearer 2", "SecureString", 2)
    assert ssm.get_parameter(Name="/drec/pull/a/auth:current", WithDecryption=True)["Parameter"]["Value"] == "Bearer 2"
    assert ssm.list_tags_for_resource(ResourceType="Parameter", ResourceId="/drec/pull/a/auth")["TagList"] == [
        {"Key": "source", "Value": "a"}]
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": ["/drec/pull/a/auth"]}])
    assert (described["Parameters"][0]["Description"], described["Parameters"][0]["KeyId"]) == ("pull auth",
                                                                                                "alias/aws/ssm")
    assert ssm.get_parameter(Name="/drec/plain")["Parameter"]["Value"] == "v"
    assert ssm.get_parameters(Names=["/drec/gone", "/drec/never"])["InvalidParameters"] == ["/drec/gone", "/drec/never"]
    assert len(ssm.get_parameter_history(Name="/drec/pull/a/auth")["Parameters"]) == 1
