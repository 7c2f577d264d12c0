"""A second submission racing the validator, on the emulator server: the judged energy is the one issued."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from chalicelib.adapters.reading_store import DynamoReadings
from chalicelib.domain.readings import ReadingContent, ReceivedReading
from tests.conftest import OPERATOR_KEY, Api, registered_fleet
from tests.integration.test_emulator import PREFIX, emulator  # noqa: F401  (the emulator fixture)

DAY = "2026-10-14"


class ReadThenRace(DynamoReadings):
    """The validator's store: right after its first read of the readings, another writer runs."""

    def __init__(self, inner: DynamoReadings, competitor: Callable[[], None]) -> None:
        super().__init__(inner.client, inner.name)
        self.competitor: Callable[[], None] | None = competitor

    def readings(self, reading_ids: Sequence[str]) -> dict[str, ReceivedReading]:
        found = super().readings(reading_ids)
        if self.competitor is not None:
            competitor, self.competitor = self.competitor, None
            competitor()
        return found


class ReadBeforeTheFirstWrite(DynamoReadings):
    """Another request's store whose existence check ran before the first write landed: it saw nothing."""

    def __init__(self, inner: DynamoReadings) -> None:
        super().__init__(inner.client, inner.name)
        self.stale = True

    def contents(self, reading_ids: Sequence[str]) -> dict[str, ReadingContent]:
        if self.stale:
            self.stale = False
            return {}
        return super().contents(reading_ids)


@pytest.fixture
def api_on_emulator(emulator: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:  # noqa: F811
    from chalice.test import Client

    import app
    from chalicelib import bootstrap

    monkeypatch.setenv("DREC_PREFIX", PREFIX)
    monkeypatch.setenv("DREC_OPERATOR_KEY", OPERATOR_KEY)
    for name in ("DREC_CHAIN_RPC", "DREC_LEDGER_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    bootstrap.reset()
    try:
        with Client(app.app) as client:
            yield Api(client)
    finally:
        bootstrap.reset()


def test_other_energy_sent_while_the_validator_judges_is_refused_and_never_issued(
        api_on_emulator: Api, emulator: Any) -> None:  # noqa: F811
    from chalicelib import bootstrap
    from chalicelib.api.reading_input import parse_reading
    from chalicelib.domain.model import Principal
    from chalicelib.services.intake import Intake
    from chalicelib.services.validation import Validator

    api = api_on_emulator
    # GIVEN three devices with 400 Wh each stored and queued
    source, account, fleet = registered_fleet(api, 3)
    devices = [d["device_id"] for d in fleet]
    readings = [{"device_id": d, "period_start": f"{DAY}T05:00:00Z", "period_end": f"{DAY}T13:00:00Z",
                 "energy_wh": 400} for d in devices]
    status, body = api.post("/readings", {"readings": readings}, key=source["api_key"])
    assert status == 202 and not body["errors"], body
    ids = [a["reading_id"] for a in body["accepted"]]
    raced = ids[2]

    # WHEN, between the validator's read and its commit, the same period of the third device is sent with 900 Wh:
    # once through the API, once by a request that checked for the reading before it was first written
    c = bootstrap.container()
    competing: list[Any] = []
    stale = Intake(c.registry, ReadBeforeTheFirstWrite(c.readings), c.queue("readings"), parse_reading)

    def compete() -> None:
        competing.append(api.post("/readings", {"readings": [{**readings[2], "energy_wh": 900}]},
                                  key=source["api_key"]))
        competing.append(stale.submit(Principal("source", source["source_id"]), [(0, {**readings[2],
                                                                                       "energy_wh": 900})]))

    validator = Validator(c.registry, ReadThenRace(c.readings, compete), c.queue("accepted"))
    assert validator.validate(ids) == {"accepted": 3}
    c.issuer.issue(ids)

    # THEN both competing writes were refused naming the reading, and only the judged 400 Wh was recorded and issued
    (status, answer), late = competing
    assert status == 202 and answer["accepted"] == [], answer
    (error,) = answer["errors"]
    assert error["error"]["code"] == "conflict" and raced in error["error"]["message"], error
    assert late.accepted == [] and late.queued == 0
    ((_, refused),) = late.errors
    assert refused.code == "conflict" and raced in refused.message and "400 Wh" in refused.message
    view = api.get(f"/readings/{raced}")[1]
    assert (view["status"], view["energy_wh"]) == ("accepted", 400), view
    (accepted,) = api.get(f"/events?subject_id={raced}&type=ReadingAccepted")[1]["items"]
    assert accepted["body"]["energy_wh"] == 400
    (drec,) = api.get(f"/drecs?owner_account_id={account['account_id']}")[1]["items"]
    issued = api.get(f"/drecs/{drec['serial']}")[1]
    assert sum(c["energy_wh"] for c in issued["contributions"]) == 1000
    (pool,) = emulator.client("dynamodb").scan(TableName=f"{PREFIX}-pools")["Items"]
    assert (int(pool["accepted_wh"]["N"]), int(pool["remainder_wh"]["N"])) == (1200, 200)
    stored = c.readings.readings(ids)
    assert (stored[raced].energy_wh, stored[raced].judged_energy_wh) == (400, 400)
    assert sum(r.pooled_wh for r in stored.values()) == 1200
