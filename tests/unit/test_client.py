"""The aggregators' client, without a network: files read with their line numbers, signatures that
recover to the key, batches mapped back to lines (over a fake of the API), key files, backoff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from eth_account import Account
from eth_account.messages import encode_typed_data

from chalicelib.client import Backoff, ClientError, DrecClient, KeyFileError, load_signing_key, read_rows
from chalicelib.client.files import json_rows
from chalicelib.domain.errors import BadInput, DomainError
from chalicelib.domain.signing import reading_message
from chalicelib.services.uploads import FileRefused

HEADER = "device_id,period_start,period_end,energy_wh,external_id\n"


def _row(device: str, hour: int, energy: Any = 40, external_id: str = "") -> str:
    return f"{device},2026-10-14T{hour:02}:00:00Z,2026-10-14T{hour + 1:02}:00:00Z,{energy},{external_id}\n"


def _errors(rows: list[tuple[int, Any]]) -> dict[int, str | None]:
    return {line: raw.field for line, raw in rows if isinstance(raw, BadInput)}


def test_csv_rows_keep_their_file_lines(tmp_path: Path) -> None:
    # GIVEN a CSV with a blank line, a quoted field over two lines, a bad number and a short row
    path = tmp_path / "day.csv"
    path.write_text(HEADER + _row("dev-a", 8, external_id="r1") + "\n"
                    + 'dev-a,2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,41,"two\nlines"\n'
                    + _row("dev-a", 10, energy="12.5") + "dev-a,2026-10-14T11:00:00Z\n" + _row("dev-b", 12))
    # WHEN it is read
    rows = list(read_rows(path))
    # THEN every row has its line (a row over two lines: where it ends, as the registry's reports number
    # it); the bad ones are errors naming their field
    assert [line for line, _ in rows] == [2, 5, 6, 7, 8]
    assert _errors(rows) == {7: None}
    assert rows[2][1]["energy_wh"] == "12.5"  # left for the reading's schema to refuse, as in the registry
    assert rows[1][1]["external_id"] == "two\nlines"
    assert rows[4][1] == {"device_id": "dev-b", "period_start": "2026-10-14T12:00:00Z",
                          "period_end": "2026-10-14T13:00:00Z", "energy_wh": 40}  # an empty cell is no value


def test_a_csv_with_a_wrong_header_is_refused_whole(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("device_id,period_start,energy_wh\n" + _row("dev-a", 8))
    with pytest.raises(FileRefused) as refused:
        list(read_rows(path))
    assert "period_end" in refused.value.message and refused.value.field == "header"


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_json_readings_keep_the_line_they_start_on(chunk: int) -> None:
    text = ('{"readings": [\n'
            '  {"device_id": "dev-a", "period_start": "2026-10-14T08:00:00Z",\n'
            '   "period_end": "2026-10-14T09:00:00Z", "energy_wh": 40},\n'
            '  {"device_id": "dev-b", "energy_wh": 12345}, 17\n'
            ']}\n')
    rows = list(json_rows(text[i:i + chunk] for i in range(0, len(text), chunk)))
    assert [(line, raw if not isinstance(raw, dict) else raw["device_id"]) for line, raw in rows] == \
        [(2, "dev-a"), (4, "dev-b"), (4, 17)]


def test_a_json_file_broken_midway_keeps_the_readings_before_the_break(tmp_path: Path) -> None:
    path = tmp_path / "readings.json"
    path.write_text('[{"device_id": "dev-a"},\n{"device_id": "dev-b"},\n{"device_id" "dev-c"}]')
    rows = list(read_rows(path))
    assert [line for line, _ in rows] == [1, 2, 3]
    assert isinstance(rows[2][1], BadInput) and rows[2][1].field == "file" and "line 3" in rows[2][1].message
    (tmp_path / "obj.json").write_text('{"items": []}')
    with pytest.raises(FileRefused):
        list(read_rows(tmp_path / "obj.json"))


def _recovered(reading: dict[str, Any]) -> str:
    message = reading_message(reading["device_id"], reading["period_start"], reading["period_end"],
                              reading["energy_wh"])
    return str(Account.recover_message(encode_typed_data(full_message=message), signature=reading["signature"]))


def test_each_unsigned_reading_is_signed_with_the_key_and_recovers_to_its_address() -> None:
    key = Account.create()
    client = DrecClient("http://127.0.0.1:9", "k", signing_key=key)
    raw = {"device_id": "dev-a", "period_start": "2026-10-14T08:00:00+00:00", "period_end": "2026-10-14T09:00:00Z",
           "energy_wh": 40}
    signed = client.prepare(raw)
    assert _recovered(signed) == key.address
    # the time's spelling does not matter: the signed form is canonical, as the registry recovers it
    assert _recovered({**signed, "period_start": "2026-10-14T08:00:00Z"}) == key.address
    assert _recovered({**signed, "energy_wh": 41}) != key.address
    # a reading that carries its own signature is sent as it is
    theirs = {**raw, "signature": "0x" + "ab" * 65}
    assert client.prepare(theirs) == theirs
    # what the registry would refuse for its form is refused here, naming the field, and not signed
    with pytest.raises(DomainError) as bad:
        client.prepare({**raw, "period_end": "2026-10-14T07:00:00Z"})
    assert bad.value.field == "period_end"


class FakeReadingsApi:
    """Stands in for `Http` with the contract of POST /readings: 202 with per-index answers; a reading of
    `dev-unknown` is refused by index with a field named for the batch."""

    def __init__(self) -> None:
        self.api_key = "key"
        self.retries = 0
        self.batches: list[list[dict[str, Any]]] = []

    def request(self, method: str, path: str, params: Any = None, body: Any = None) -> requests.Response:
        assert (method, path) == ("POST", "/readings")
        self.batches.append(body["readings"])
        accepted, errors = [], []
        for index, reading in enumerate(body["readings"]):
            if reading["device_id"] == "dev-unknown":
                errors.append({"index": index, "error": {"code": "rule_broken", "field": f"readings.{index}.device_id",
                                                         "message": "device 'dev-unknown' is not registered"}})
            else:
                accepted.append({"index": index, "reading_id": f"rd-{reading['device_id']}-{reading['period_start']}"})
        response = requests.Response()
        response.status_code = 202
        response._content = json.dumps({"accepted": accepted, "errors": errors}).encode()
        return response


def test_batches_are_mapped_back_to_file_lines(tmp_path: Path) -> None:
    # GIVEN 7 rows, one malformed (never sent) and one of an unknown device, sent 3 to a batch
    path = tmp_path / "day.csv"
    path.write_text(HEADER + "".join(_row("dev-a", h) for h in range(5, 8)) + _row("dev-a", 8, energy="x")
                    + _row("dev-unknown", 9) + _row("dev-a", 10) + _row("dev-a", 11))
    client = DrecClient("http://127.0.0.1:9", "key", batch_size=3)
    api = FakeReadingsApi()
    client.http = api  # type: ignore[assignment]
    seen: list[int] = []
    # WHEN it is submitted
    result = client.submit_file(path, on_line=lambda outcome: seen.append(outcome.line))
    # THEN the good rows go in batches of 3, and every answer names the file's line
    assert [len(b) for b in api.batches] == [3, 3]
    assert (result.rows, result.accepted_count, result.batches) == (7, 5, 2)
    assert [(r.line, r.error["field"], r.sent) for r in result.refused if r.error] == \
        [(5, "energy_wh", False), (6, "device_id", True)]
    assert {a.line: a.reading_id for a in result.accepted}[7] == "rd-dev-a-2026-10-14T10:00:00Z"
    assert sorted(seen) == list(range(2, 9))


def test_submitting_needs_an_api_key() -> None:
    with pytest.raises(ClientError, match="API key"):
        DrecClient("http://127.0.0.1:9").submit([])


def test_key_files_hex_and_keystore(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = Account.create()
    hex_file = tmp_path / "key.txt"
    hex_file.write_text(key.key.hex() + "\n")  # with or without 0x
    assert load_signing_key(hex_file).address == key.address
    keystore = tmp_path / "key.json"
    keystore.write_text(json.dumps(Account.encrypt(key.key, "pw", kdf="pbkdf2", iterations=2)))
    monkeypatch.setenv("DREC_KEY_PASSWORD", "pw")
    assert load_signing_key(keystore).address == key.address
    assert load_signing_key(keystore, prompt=lambda _: "unused").address == key.address
    monkeypatch.delenv("DREC_KEY_PASSWORD")
    assert load_signing_key(keystore, prompt=lambda _: "pw").address == key.address
    with pytest.raises(KeyFileError, match="wrong password"):
        load_signing_key(keystore, password="nope")
    # a file that is no key is refused without its content in the message
    hex_file.write_text(key.key.hex()[:-2])
    with pytest.raises(KeyFileError) as refused:
        load_signing_key(hex_file)
    assert key.key.hex()[4:20] not in str(refused.value)


def test_backoff_grows_is_jittered_and_bounded() -> None:
    backoff = Backoff(retries=8, base_s=0.5, cap_s=4)
    waits = [[backoff.delay_s(attempt) for _ in range(200)] for attempt in range(8)]
    assert all(0 <= w <= min(4, 0.5 * 2 ** a) for a, ws in enumerate(waits) for w in ws)
    assert max(waits[0]) <= 0.5 < max(waits[3])
    assert len({round(w, 6) for w in waits[5]}) > 100  # jittered: clients that failed together spread out
    assert backoff.delay_s(0, retry_after_s=3) >= 3 and backoff.delay_s(0, retry_after_s=60) <= 4
