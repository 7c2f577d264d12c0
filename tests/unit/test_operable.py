"""Operable: a request's correlation id from POST /readings to the anchored batch, EMF metrics, /stats operations.

GIVEN an in-memory AWS (moto) and the app through Chalice's test client; log lines and EMF
documents are read back from stdout as JSON, as CloudWatch Logs would read them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, registered_device

CID = "req-2026-11-27.abc:1"
NOON = ("2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z")  # Nairobi noon: an honest 1.2 kWh from 2 kW


def _lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    out = []
    for line in capsys.readouterr().out.splitlines():
        try:
            parsed = json.loads(line)
        except ValueError:
            continue
        if isinstance(parsed, dict):
            out.append(parsed)
    return out


def _metrics(lines: list[dict[str, Any]]) -> dict[str, float]:
    """Metric name -> summed value over the EMF documents among `lines`."""
    found: dict[str, float] = {}
    for doc in lines:
        for directive in doc.get("_aws", {}).get("CloudWatchMetrics", []):
            assert directive["Namespace"] == "Drec" and directive["Dimensions"][0][:1] == ["prefix"]
            for metric in directive["Metrics"]:
                found[metric["Name"]] = found.get(metric["Name"], 0.0) + sum(doc[metric["Name"]])
    return found


def _post(api: Api, path: str, body: Any, key: str, headers: dict[str, str] | None = None) -> Any:
    return api.client.http.post(path, body=json.dumps(body), headers={
        "Content-Type": "application/json", "X-Api-Key": key, **(headers or {})})


def _receive(aws: Any, logical: str) -> list[dict[str, Any]]:
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.settings.name(logical))["QueueUrl"]
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]).get("Messages", [])


def _deliver(aws: Any, logical: str, handler: str, messages: list[dict[str, Any]]) -> None:
    import app
    from infra.dispatcher import LambdaContext, sqs_event

    app.app.handler_map[handler](sqs_event(messages, f"arn:aws:sqs:us-east-1:123:{logical}", "us-east-1"),
                                 LambdaContext(handler))
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=aws.settings.name(logical))["QueueUrl"]
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                                                    for i, m in enumerate(messages)])


def test_a_requests_correlation_id_follows_its_reading_from_intake_to_the_anchored_batch(
        api: Api, aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from chalicelib.services.anchoring import anchor_pending
    from tests.fakes.ledger import FakeChain

    source, _, device = registered_device(api, capacity_w=2000, tilt_deg=10, azimuth_deg=0)
    capsys.readouterr()
    # WHEN a client pushes a reading with its own correlation id
    response = _post(api, "/readings", {"readings": [{"device_id": device["device_id"], "period_start": NOON[0],
                                                      "period_end": NOON[1], "energy_wh": 1200}]},
                     source["api_key"], {"X-Correlation-Id": CID})
    assert response.status_code == 202 and response.headers["X-Correlation-Id"] == CID
    reading_id = json.loads(response.body)["accepted"][0]["reading_id"]
    received = _lines(capsys)
    # THEN the stored reading, the message to the validator and the intake's line carry it
    assert aws.readings.readings([reading_id])[reading_id].correlation_id == CID
    messages = _receive(aws, "readings")
    assert [json.loads(m["Body"]) for m in messages] == [{"reading_ids": [reading_id], "correlation_id": CID}]
    assert messages[0]["MessageAttributes"]["correlation_id"]["StringValue"] == CID
    intake = [line for line in received if line.get("message") == "readings received"]
    assert intake and intake[0]["correlation_id"] == CID and intake[0]["reading_ids"] == [reading_id]
    assert _metrics(received)["ReadingsReceived"] == 1

    # WHEN the validator judges it: its line names the request, the accepted message carries it on
    _deliver(aws, "readings", "validate_readings", messages)
    judged = [line for line in _lines(capsys) if line.get("message") == "readings judged"]
    assert [(line["correlation_id"], line["reading_ids"], line.get("accepted")) for line in judged] == [
        (CID, [reading_id], 1)]
    accepted = _receive(aws, "accepted")
    assert json.loads(accepted[0]["Body"])["correlation_id"] == CID

    # WHEN the issuer pools it into a D-REC: its line names the request and the serial
    _deliver(aws, "accepted", "issue_drecs", accepted)
    lines = _lines(capsys)
    pooled = [line for line in lines if line.get("message") == "readings pooled"]
    assert len(pooled) == 1 and pooled[0]["correlation_id"] == CID and pooled[0]["reading_ids"] == [reading_id]
    assert len(pooled[0]["serials"]) == 1 and pooled[0]["pooled_wh"] == 1200
    assert _metrics(lines)["DrecsIssued"] == 1

    # WHEN the events are anchored: the batch's line for this request names its two events
    anchor_pending(aws.events, aws.batches, FakeChain(), aws.ledger_bucket)
    anchored = [line for line in _lines(capsys) if line.get("message") == "events anchored"]
    mine = [line for line in anchored if line["correlation_id"] == CID]
    # (its ReadingAccepted is in its device's shard, its DrecIssued in its pool's: a line per shard's batch)
    assert sum(len(line["event_ids"]) for line in mine) == 2 and all(line["tx_hash"] for line in mine)
    assert len(mine) == len({line["shard"] for line in mine})
    every = [e for shard in range(aws.events.shards)
             for e in aws.events.events_by_seq(shard, list(range(1, aws.events.current_seq(shard) + 1)))]
    types = {e.type for e in every if e.correlation_ids == (CID,)}
    assert types == {"ReadingAccepted", "DrecIssued"}
    # and the id stays beside the event: the anchored document does not hold it
    assert all(CID not in e.canonical_bytes().decode() for e in every)


def test_without_a_header_the_request_gets_an_id_and_a_malformed_one_is_refused(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    body = {"readings": [{"device_id": device["device_id"], "period_start": NOON[0], "period_end": NOON[1],
                          "energy_wh": 60}]}
    response = _post(api, "/readings", body, source["api_key"])
    given = response.headers["X-Correlation-Id"]
    reading_id = json.loads(response.body)["accepted"][0]["reading_id"]
    assert given and aws.readings.readings([reading_id])[reading_id].correlation_id == given
    refused = _post(api, "/readings", body, source["api_key"], {"X-Correlation-Id": "two words"})
    assert refused.status_code == 400
    assert json.loads(refused.body)["error"]["field"] == "X-Correlation-Id"
    assert _post(api, "/readings", body, source["api_key"], {"X-Correlation-Id": "x" * 129}).status_code == 400


def test_judged_metrics_count_held_readings_as_flagged_or_awaiting() -> None:
    from chalicelib.api.handlers import judged_metrics

    assert judged_metrics({"accepted": 3, "rejected": 2, "flagged": 1, "awaiting_peers": 4, "still_waiting": 7}) == {
        "ReadingsJudged": 10, "ReadingsAccepted": 3, "ReadingsRejected": 2, "ReadingsHeld": 5}


def test_emf_of_a_judged_batch_holds_each_verdict_count(api: Api, aws: Any,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    source, _, device = registered_device(api, capacity_w=100, tilt_deg=10, azimuth_deg=0)
    d = device["device_id"]
    api.post("/readings", {"readings": [
        {"device_id": d, "period_start": NOON[0], "period_end": NOON[1], "energy_wh": 60},
        {"device_id": d, "period_start": "2026-10-15T09:00:00Z", "period_end": "2026-10-15T10:00:00Z",
         "energy_wh": 300},  # 3x clear sky
        {"device_id": d, "period_start": "2026-10-15T21:00:00Z", "period_end": "2026-10-15T22:00:00Z",
         "energy_wh": 40},  # night
    ]}, key=source["api_key"])
    capsys.readouterr()
    _deliver(aws, "readings", "validate_readings", _receive(aws, "readings"))
    metrics = _metrics(_lines(capsys))
    assert (metrics["ReadingsJudged"], metrics["ReadingsAccepted"], metrics["ReadingsRejected"],
            metrics["ReadingsHeld"]) == (3, 1, 2, 0)


def test_stats_operations_show_queues_dead_letters_anchoring_lag_and_readings_by_status(
        api: Api, aws: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import app

    source, _, device = registered_device(api)
    api.post("/readings", {"readings": [{"device_id": device["device_id"], "period_start": NOON[0],
                                         "period_end": NOON[1], "energy_wh": 60}]}, key=source["api_key"])
    aws.queue("accepted-dlq").send_json([{"reading_ids": ["rdg-lost"]}])
    _, stats = api.get("/stats")
    ops = stats["operations"]
    depths = {q["queue"]: (q["depth"], q["dead_letter_depth"]) for q in ops["queues"]}
    # (uploads: S3 announced itself to the queue with a test event when its notification was set up)
    assert depths["readings"] == (1, 0) and depths["accepted"] == (0, 1) and depths["uploads"][1] == 0
    assert ops["readings_by_status"]["queued"] == 1 and ops["readings_by_status"]["accepted"] == 0
    lag = ops["anchoring"]
    assert lag["anchored_seq"] == 0 and lag["lag_events"] == lag["newest_seq"] >= 3  # source, account, device
    assert lag["lag_seconds"] >= 0
    # (each queue by its name under this test's prefix: conftest.pump takes the names app.py was imported with)
    for logical, handler in (("uploads", "ingest_upload"), ("readings", "validate_readings"),
                             ("accepted", "issue_drecs")):
        messages = _receive(aws, logical)
        if messages:
            _deliver(aws, logical, handler, messages)
    after = api.get("/stats")[1]["operations"]
    assert after["readings_by_status"]["accepted"] == 1 and after["readings_by_status"]["queued"] == 0
    assert after["anchoring"]["lag_events"] == lag["lag_events"] + 1  # its ReadingAccepted

    # WHEN the scheduled measure runs: the same figures go out as EMF, one document per queue
    capsys.readouterr()
    from infra.dispatcher import LambdaContext, schedule_event

    app.app.handler_map["measure_operations"](schedule_event("measure_operations", "us-east-1"),
                                              LambdaContext("measure_operations"))
    lines = _lines(capsys)
    per_queue = {doc["queue"]: (doc["QueueDepth"], doc["DeadLetterDepth"]) for doc in lines if "queue" in doc
                 and "_aws" in doc}
    assert per_queue == {"uploads": ([0.0], [0.0]), "readings": ([0.0], [0.0]), "accepted": ([0.0], [1.0])}
    metrics = _metrics(lines)
    assert metrics["AnchoringLagEvents"] == after["anchoring"]["lag_events"]
    assert "AnchoringLagSeconds" in metrics


def test_the_operations_queues_are_the_provisioned_ones_and_each_has_an_alarm() -> None:
    from chalicelib.services.operations import QUEUES
    from chalicelib.telemetry import NAMESPACE
    from infra.cloudformation import template
    from infra.resources import RESOURCES

    assert set(QUEUES) == {q.logical for q in RESOURCES.queues}
    resources = template("drec-prod")["Resources"]
    alarms = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::CloudWatch::Alarm"]
    dead = {a["Dimensions"][0]["Value"] for a in alarms if a["Namespace"] == "AWS/SQS"}
    assert dead == {f"drec-prod-{q}-dlq" for q in QUEUES}
    lag = [a for a in alarms if a["MetricName"] == "AnchoringLagSeconds"]
    assert len(lag) == 1 and lag[0]["Namespace"] == NAMESPACE and lag[0]["TreatMissingData"] == "breaching"
    assert lag[0]["Dimensions"] == [{"Name": "prefix", "Value": "drec-prod"}]
    errors = {a["Dimensions"][0]["Value"]["Fn::Sub"] for a in alarms if a["Namespace"] == "AWS/Lambda"}
    assert {"${FunctionPrefix}-validate_readings", "${FunctionPrefix}-issue_drecs"} <= errors
    assert all(a["AlarmActions"] == [{"Ref": "AlarmTopic"}] for a in alarms)
