"""The portal in real headless Chromium against the running stack: register, upload, issue, trade, redeem."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from tests.conftest import device_body
from tests.e2e.browser import Browser, chromium
from tests.e2e.conftest import RunningStack, wait_for

PAGES = ["", "accounts", "devices", "readings", "drecs", "transfer", "redeem"]


def _open(browser: Browser, stack: RunningStack, route: str) -> Any:
    page = browser.page
    page.goto(f"{stack.url}/#/{route}")
    page.wait_for_selector("main h1")
    return page


def _sign_in(browser: Browser, stack: RunningStack, key: str, kind: str) -> None:
    """Signs in with `key` alone: the portal learns from the API whose key it is, and says so."""
    page = _open(browser, stack, "")
    if page.locator("button", has_text="Sign out").count():
        page.click("text=Sign out")
    page.click("text=Sign in with an API key")
    page.fill("#signin-key", key)
    page.click("#signin button[type=submit]")
    assert page.locator("#who").inner_text().startswith(f"Signed in as {kind}")


def _source(stack: RunningStack, name: str) -> dict[str, Any]:
    created = stack.post("/sources", {"name": name, "kind": "aggregator"})
    assert created.status_code == 201, created.text
    return created.json()


def test_register_account_and_device_with_field_errors_and_a_plain_403(stack: RunningStack,
                                                                        tmp_path: Path) -> None:
    source = _source(stack, "Portal registry source")
    other = stack.post("/accounts", {"name": "Someone else", "kind": "buyer", "country": "KE"},
                       key=source["api_key"]).json()
    with chromium(tmp_path, "registry") as browser:
        page = _open(browser, stack, "accounts")
        # GIVEN no key, WHEN reading, THEN lists work and no write is offered
        assert page.locator("#account-form").count() == 0
        assert "Sign in with a key" in page.inner_text("main")
        browser.screenshot("signed-out")

        # WHEN a source signs in and registers an account through the form
        _sign_in(browser, stack, source["api_key"], "source")
        page = _open(browser, stack, "accounts")
        page.fill("#account-form-name", "Portal Solar Ltd")
        page.select_option("#account-form-kind", "developer")
        page.fill("#account-form-country", "KE")
        page.click("#account-form button[type=submit]")
        account_key = page.locator("#new-api-key").inner_text()
        account_id = page.locator("#account-form .result a").first.inner_text()
        browser.screenshot("account-registered")
        # THEN the API has it, registered by that source, and the list shows it
        assert stack.get(f"/accounts/{account_id}").json()["registered_by"] == source["source_id"]
        page.wait_for_selector(f"table >> text={account_id}")

        # WHEN the device form is sent with a negative capacity
        page = _open(browser, stack, "devices")
        page.fill("#device-form-owner_account_id", account_id)
        page.select_option("#device-form-device_type", "solar_home_system")
        page.fill("#device-form-capacity_w", "-5")
        page.fill("#device-form-latitude", "-1.29")
        page.fill("#device-form-longitude", "36.82")
        page.fill("#device-form-country", "KE")
        page.fill("#device-form-commissioning_date", "2025-01-15")
        page.select_option("#device-form-offtaker_type", "household")
        page.click("#device-form button[type=submit]")
        # THEN the API's message sits under the capacity field, which is marked invalid and focused
        error = page.locator("#device-form-capacity_w-error")
        error.wait_for()
        assert "greater than 0" in error.inner_text()
        assert page.get_attribute("#device-form-capacity_w", "aria-invalid") == "true"
        assert page.evaluate("document.activeElement.id") == "device-form-capacity_w"
        browser.screenshot("device-field-error")

        # WHEN corrected THEN the device is registered where it was placed
        page.fill("#device-form-capacity_w", "300")
        page.click("#device-form button[type=submit]")
        device_id = page.locator("#device-form .result strong a").inner_text()
        device = stack.get(f"/devices/{device_id}").json()
        assert (device["owner_account_id"], device["capacity_w"], device["latitude"]) == (account_id, 300, -1.29)
        assert "-1.29, 36.82" in page.inner_text("#device-form .result")
        browser.screenshot("device-registered")
        # THEN the source that registered it reads it exact, with the salt of its location commitment
        page = _open(browser, stack, f"devices/{device_id}")
        page.wait_for_selector("#location-salt")
        assert "≈" not in page.inner_text("main dl") and "-1.29, 36.82" in page.inner_text("main dl")

        # WHEN the account's own key registers a device for another account THEN the 403 is shown plainly
        _sign_in(browser, stack, account_key, "account")
        page = _open(browser, stack, "devices")
        assert page.input_value("#device-form-owner_account_id") == account_id
        assert page.locator("#account-form").count() == 0
        page.fill("#device-form-owner_account_id", other["account_id"])
        page.select_option("#device-form-device_type", "rooftop_pv")
        for field, value in (("capacity_w", "500"), ("latitude", "-1.3"), ("longitude", "36.8"), ("country", "KE"),
                             ("commissioning_date", "2025-02-01")):
            page.fill(f"#device-form-{field}", value)
        page.select_option("#device-form-offtaker_type", "business")
        page.click("#device-form button[type=submit]")
        alert = page.locator("#device-form [role=alert]")
        alert.wait_for()
        assert alert.inner_text().startswith("Not allowed (403)")
        assert other["account_id"] in alert.inner_text()
        browser.screenshot("forbidden-shown")

        # WHEN signed out THEN the device's location is marked as rounded and no salt is shown
        page.click("text=Sign out")
        page = _open(browser, stack, f"devices/{device_id}")
        page.wait_for_selector("main dl >> text=Location commitment")
        assert "≈ -1.29, 36.82" in page.inner_text("main dl") and page.locator("#location-salt").count() == 0
        # WHEN the tab holds a key the registry no longer knows THEN reads fall back to public, signed out
        page.evaluate("""sessionStorage.setItem('drec.session',
            JSON.stringify({ key: 'drec_revoked', role: 'source', id: 'src-gone' }))""")
        page.reload()
        page.wait_for_selector("main dl >> text=Location commitment")
        assert page.locator("main [role=alert]").count() == 0, page.inner_text("main")
        assert page.locator("text=Sign in with an API key").count() == 1
        assert browser.page_errors == []


def test_pages_fit_a_375_px_screen_and_work_by_keyboard(stack: RunningStack, tmp_path: Path) -> None:
    with chromium(tmp_path, "narrow", width=375, height=800) as browser:
        for route in PAGES:
            page = _open(browser, stack, route)
            page.wait_for_timeout(300)  # let lists and charts settle before measuring
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"#/{route} is {overflow}px wider than a 375 px screen"
            # Signed out, every page reads without an error.
            assert page.locator("main [role=alert]").count() == 0, page.inner_text("main")
        browser.screenshot("drecs-at-375px")
        # The first Tab reaches the skip link; Enter moves focus into the content.
        # A fresh load (not a same-document hash change) leaves focus at the start of the document.
        page = _open(browser, stack, "accounts")
        page.reload()
        page.wait_for_selector("main h1")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # Every form control has a label.
        unlabelled = page.evaluate("""[...document.querySelectorAll('input, select, textarea')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')).map((el) => el.id)""")
        assert unlabelled == []
        assert browser.page_errors == []


def _csv(device_id: str) -> str:
    # Two clear-ish October days of a 300 W system near Nairobi, 05:00-13:00 UTC (08:00-16:00 local),
    # 1,200 Wh each (40% of nameplate × hours); line 4 carries a unit slip the ingest must refuse.
    lines = ["device_id,period_start,period_end,energy_wh,external_id"]
    for day in ("2026-10-13", "2026-10-14"):
        lines.append(f"{device_id},{day}T05:00:00Z,{day}T13:00:00Z,1200,portal-{day}")
    lines.append(f"{device_id},2026-10-15T05:00:00Z,2026-10-15T13:00:00Z,1.2kWh,portal-bad")
    return "\n".join(lines) + "\n"


def test_upload_issue_verify_transfer_redeem_and_download_the_ledger(stack: RunningStack, tmp_path: Path) -> None:
    source = _source(stack, "Portal lifecycle source")
    key = source["api_key"]
    developer = stack.post("/accounts", {"name": "Lifecycle Dev", "kind": "developer", "country": "KE"},
                           key=key).json()
    buyer = stack.post("/accounts", {"name": "Lifecycle Buyer", "kind": "buyer", "country": "KE"}, key=key).json()
    device = stack.post("/devices", device_body(developer["account_id"], capacity_w=300), key=key)
    device_id = device.json()["device_id"]
    upload = tmp_path / "portal-readings.csv"
    upload.write_text(_csv(device_id))

    with chromium(tmp_path, "lifecycle") as browser:
        # GIVEN a source signed in WHEN it uploads a CSV with one bad line THEN the report names that line
        _sign_in(browser, stack, key, "source")
        page = _open(browser, stack, "readings")
        page.set_input_files("#upload-file", str(upload))
        page.click("#upload-form button[type=submit]")
        report = page.locator("#upload-report")
        report.wait_for()
        assert re.search(r"3\s+rows read, 2\s+queued", report.inner_text()), report.inner_text()
        rows = report.locator("tbody tr")
        assert rows.count() == 1 and rows.first.locator("td").first.inner_text() == "4"
        assert page.get_attribute("#upload-progress", "value") == "1"
        browser.screenshot("upload-report")

        def judged() -> list[dict[str, Any]] | None:
            items = stack.get(f"/devices/{device_id}/readings").json()["items"]
            return items if len(items) == 2 and all(r["status"] != "queued" for r in items) else None

        readings = wait_for("readings judged", judged)
        # Flagged readings are the operator's to decide: accept them in the review list.
        if any(r["status"] == "flagged" for r in readings):
            _sign_in(browser, stack, stack.operator_key, "operator")
            page = _open(browser, stack, "readings")
            for reading in (r for r in readings if r["status"] == "flagged"):
                row = page.locator("tr", has_text=reading["reading_id"])
                row.locator("button", has_text="Accept").click()
                row.wait_for(state="detached")
            _sign_in(browser, stack, key, "source")
        assert {r["status"] for r in stack.get(f"/devices/{device_id}/readings").json()["items"]} <= {"accepted",
                                                                                                     "flagged"}
        page = _open(browser, stack, f"devices/{device_id}")
        page.wait_for_selector("table >> text=accepted")
        assert "Expected" in page.inner_text("main") and "σ" in page.inner_text("main")
        browser.screenshot("device-readings")

        # THEN 2,400 Wh make two D-RECs under their owner, each with its provenance
        def issued() -> list[str] | None:
            items = stack.get("/drecs", owner_account_id=developer["account_id"]).json()["items"]
            found = sorted(d["serial"] for d in items)
            return found if len(found) == 2 else None

        serials = wait_for("two D-RECs issued", issued)
        page = _open(browser, stack, f"drecs?owner_account_id={developer['account_id']}")
        page.click(f"text={serials[0]}")
        page.wait_for_selector("table >> text=Contributions")
        main = page.inner_text("main")
        assert device_id in main and "kg CO₂" in main and "DrecIssued" in main
        assert page.locator("canvas").count() == 1
        wait_for("issuance anchored", lambda: stack.get(f"/drecs/{serials[0]}").json()["events"][0].get("anchor"))
        page.reload()
        page.wait_for_selector("table >> text=Contributions")
        page.click("#verify")
        page.locator("#verify-result").wait_for()
        assert page.locator("#verify-result").inner_text().startswith("Verified")
        page.locator("#verify-browser").wait_for()
        assert "NOT anchored" not in page.inner_text("#verify-browser")
        assert "anchored" in page.inner_text("#verify-browser")
        browser.screenshot("drec-verified")

        # WHEN both are transferred to the buyer THEN the buyer owns them
        listed = ",".join(serials)
        page = _open(browser, stack, f"transfer?serials={listed}")
        page.fill("#transfer-form-from_account_id", developer["account_id"])
        page.fill("#transfer-form-to_account_id", buyer["account_id"])
        page.click("#transfer-form button[type=submit]")
        page.locator("#transfer-done").wait_for()
        assert {stack.get(f"/drecs/{s}").json()["owner_account_id"] for s in serials} == {buyer["account_id"]}
        browser.screenshot("transferred")

        # WHEN the buyer redeems them for two sponsors THEN the statement shows the range, each sponsor's
        # share, the memo and the ledger's SHA-256
        page = _open(browser, stack, f"redeem?serials={listed}")
        page.fill("#redeem-form-account_id", buyer["account_id"])
        page.fill("#redeem-form-beneficiary", "Lifecycle Buyer Ltd")
        page.fill("#redeem-form-purpose", "Scope 2 claim, portal test")
        page.fill("#redeem-form-claim_period_start", "2026-10-01")
        page.fill("#redeem-form-claim_period_end", "2026-10-31")
        page.click("text=Add a sponsor")
        page.fill("#sponsor-0-name", "Clean Cooking Fund")
        page.fill("#sponsor-0-share", "0.5")
        page.click("text=Add a sponsor")
        page.fill("#sponsor-1-name", "Solar Schools Trust")
        page.fill("#sponsor-1-share", "0.5")
        page.click("#redeem-form button[type=submit]")
        page.click("#redeem-done a")
        page.wait_for_selector("#ledger-sha256")
        page.wait_for_function("document.querySelector('#ledger-sha256').textContent.length === 64")
        redemption_id = page.url.rsplit("/", 1)[-1]
        statement = stack.get(f"/redemptions/{redemption_id}").json()
        assert sorted(statement["serials"]) == serials and page.inner_text("#memo").strip() == statement["memo"].strip()
        ranges = page.inner_text("table:has(caption:text('Serial ranges'))")
        assert all(r in ranges for r in statement["serial_ranges"]), ranges
        for sponsor, serial in (("Clean Cooking Fund", serials[0]), ("Solar Schools Trust", serials[1])):
            row = page.locator("tr", has_text=sponsor)
            assert "1 D-REC" in row.inner_text() and serial in row.inner_text(), row.inner_text()
        assert {stack.get(f"/drecs/{s}").json()["status"] for s in serials} == {"redeemed"}
        shown = page.inner_text("#ledger-sha256").strip()
        assert shown == statement["ledger_sha256"]
        with page.expect_download() as download:
            page.click("#ledger-download")
        saved = tmp_path / "ledger.csv"
        download.value.save_as(saved)
        assert hashlib.sha256(saved.read_bytes()).hexdigest() == shown
        page.click("#check-ledger")
        assert "matches" in page.locator("#ledger-check").inner_text()
        browser.screenshot("statement")

        # THEN the buyer's account page shows what it holds, the transfer in and the redemption
        page = _open(browser, stack, f"accounts/{buyer['account_id']}")
        page.wait_for_selector(f"table >> text={redemption_id}")
        holdings = stack.get(f"/accounts/{buyer['account_id']}/holdings").json()
        assert (holdings["active"], holdings["redeemed"]) == (0, 2)
        redeemed = page.locator("dd", has_text=re.compile(r"^2$"))
        redeemed.first.wait_for()  # the holdings figures arrive by their own request, after the tables may
        assert redeemed.count() == 1
        transfer_id = stack.get("/transfers", account_id=buyer["account_id"]).json()["items"][0]["transfer_id"]
        assert transfer_id in page.inner_text("main")
        browser.screenshot("buyer-account")
        assert browser.page_errors == []



# The validator's side of the contract (issue 13): what it writes on a device item when its CUSUM crosses
# (status under_review, the review's figures) and when output stays low (the maintenance note).
OPENED = {"state": "open", "opened_at": "2026-11-20T12:00:00Z", "reference": "peers", "cusum": 5.4, "days": 6,
          "last_day_ratio": 1.29, "review_epoch": 0,
          "reason": "output has stayed above its neighbours for 6 days (CUSUM 5.4 ≥ 5; last day ×1.29)"}
LOW = {"since": "2026-11-10T00:00:00Z", "ratio": 0.71,
       "reason": "output has been about 71% of what its neighbours suggest over recent days: check for shading, "
                 "soiling, a failing module, battery or meter. Nothing is held; readings are accepted."}


def _as_the_validator_would(stack: RunningStack, device_id: str) -> None:
    import boto3

    from chalicelib.adapters.dynamo import to_item
    from infra.resources import physical

    client = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    values = to_item({":s": "under_review", ":a": "active", ":r": OPENED, ":m": LOW})
    client.update_item(TableName=physical(stack.endpoints["prefix"], "devices"), Key={"id": {"S": device_id}},
                       UpdateExpression="SET #s = :s, review = :r, maintenance = :m", ConditionExpression="#s = :a",
                       ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues=values)


def test_a_device_under_review_shows_its_banner_and_note_and_the_operator_clears_it(stack: RunningStack,
                                                                                   tmp_path: Path) -> None:
    source = _source(stack, "Portal review source")
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Review Dev", "kind": "developer", "country": "KE"}, key=key).json()
    device_id = stack.post("/devices", device_body(account["account_id"]), key=key).json()["device_id"]
    _as_the_validator_would(stack, device_id)
    with chromium(tmp_path, "device-review") as browser:
        # GIVEN the public WHEN it opens the device THEN it sees the status, not the review's figures nor the note
        page = _open(browser, stack, f"devices/{device_id}")
        banner = page.locator("#review-banner")
        banner.wait_for()
        assert "under review" in banner.inner_text().lower() and "CUSUM" not in banner.inner_text()
        assert page.locator("#maintenance-note").count() == 0 and page.locator("#device-decision").count() == 0
        # WHEN the owner's source signs in THEN the banner gives the reason and the figures, and the note shows
        _sign_in(browser, stack, key, "source")
        page = _open(browser, stack, f"devices/{device_id}")
        page.wait_for_selector("#review-reason")
        assert page.inner_text("#review-reason") == OPENED["reason"]
        assert "5.4" in page.inner_text("#review-banner") and "129 %" in page.inner_text("#review-banner")
        assert "71%" in page.inner_text("#maintenance-note") and page.locator("#device-decision").count() == 0
        browser.screenshot("device-under-review-owner")
        # WHEN the operator clears it with a note THEN the banner shows the decision, and the API agrees
        _sign_in(browser, stack, stack.operator_key, "operator")
        page = _open(browser, stack, f"devices/{device_id}")
        page.wait_for_selector("#device-decision")
        browser.screenshot("device-under-review-operator")
        page.click("#device-clear")  # without a note: the API's message is shown, nothing changes
        assert "note" in page.locator("#device-decision [role=alert]").inner_text()
        page.fill("#device-decision-note", "inspected: panels replaced in November")
        page.click("#device-clear")
        page.wait_for_selector("#review-decision")
        assert page.inner_text("#review-decision") == "clear"
        assert "Review cleared" in page.inner_text("#review-banner")
        assert "inspected: panels replaced in November" in page.inner_text("#review-banner")
        browser.screenshot("device-review-cleared")
        device = stack.get(f"/devices/{device_id}").json()
        assert device["status"] == "active" and "review" not in device
        events = stack.get("/events", subject_id=device_id).json()["items"]
        assert [e["type"] for e in events] == ["DeviceRegistered", "DeviceReviewCleared"]
        assert browser.page_errors == []


# A fleet in three countries: three devices around Nairobi (within 0.3°), two in Lagos, one in Delhi.
FLEET = [("KE", -1.29, 36.82), ("KE", -1.32, 36.86), ("KE", -1.10, 37.01),
         ("NG", 6.52, 3.38), ("NG", 6.45, 3.40), ("IN", 28.61, 77.21)]


def _map_state(page: Any) -> dict[str, Any]:
    """What the fleet map draws now: cluster sizes, single devices, the zoom."""
    return page.evaluate("""() => ({
        clusters: [...document.querySelectorAll('svg.fleet-map .cluster')].map((c) => Number(c.dataset.count)).sort(),
        markers: [...document.querySelectorAll('svg.fleet-map a.marker')].map((a) => a.dataset.device).sort(),
        k: Number(document.querySelector('svg.fleet-map').dataset.k) })""")


def test_the_fleet_map_clusters_zooms_colours_and_links_each_device(stack: RunningStack, tmp_path: Path) -> None:
    source = _source(stack, "Portal map source")
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Map Dev", "kind": "developer", "country": "KE"}, key=key).json()
    ids = {}
    for country, latitude, longitude in FLEET:
        body = device_body(account["account_id"], country=country, latitude=latitude, longitude=longitude,
                           capacity_w=300)
        created = stack.post("/devices", body, key=key)
        assert created.status_code == 201, created.text
        ids[(latitude, longitude)] = created.json()["device_id"]
    kenya = {ids[(lat, lon)] for country, lat, lon in FLEET if country == "KE"}
    delhi = ids[(28.61, 77.21)]
    # One accepted daylight reading for one device (a spot no other test reports from, a day of its own):
    # 1,100 Wh (70 % of its clear sky), alone in its owner's pool: one D-REC and 100 Wh waiting.
    busy = ids[(-1.10, 37.01)]
    sent = stack.post("/readings", {"readings": [{"device_id": busy, "period_start": "2026-10-20T05:00:00Z",
                                                  "period_end": "2026-10-20T13:00:00Z", "energy_wh": 1100}]}, key=key)
    assert sent.status_code == 202 and not sent.json()["errors"], sent.text
    wait_for("the reading judged, its D-REC issued and linked",
             lambda: stack.get(f"/devices/{busy}").json()["drecs_issued"] == 1, 90)
    assert stack.get(f"/devices/{busy}").json()["readings_accepted"] == 1
    assert stack.get(f"/devices/{busy}").json()["drec_energy_wh"] == 1000

    with chromium(tmp_path, "fleet") as browser:
        # GIVEN the public WHEN it opens the owner's devices THEN the map fits them: outlines, two clusters, Delhi alone
        page = _open(browser, stack, f"devices?owner_account_id={account['account_id']}")
        page.wait_for_selector("svg.fleet-map a.marker")
        assert page.locator("svg.fleet-map path.country").count() > 150
        assert page.get_attribute("svg.fleet-map .countries", "data-resolution") == "110m"
        fitted = _map_state(page)
        assert (fitted["clusters"], fitted["markers"]) == ([2, 3], [delhi]), fitted
        assert page.inner_text("#fleet-shown") == "6"
        assert "active: 6" in page.inner_text("#fleet-legend")
        title = page.locator(f"svg.fleet-map a[data-device='{delhi}'] title").text_content() or ""
        assert all(part in title for part in (delhi, "solar home system", "300 W", "IN")), title
        browser.screenshot("fleet-map")

        # WHEN coloured by D-RECs issued, or by readings accepted THEN the legend counts the one busy device
        page.check("input[name=fleet-mode][value=drecs]")
        legend = page.inner_text("#fleet-legend")
        assert "none: 5" in legend and "1–9: 1" in legend and "D-RECs" in legend, legend
        page.check("input[name=fleet-mode][value=readings]")
        legend = page.inner_text("#fleet-legend")
        assert "none: 5" in legend and "1–9: 1" in legend and "Daylight readings" in legend, legend
        page.check("input[name=fleet-mode][value=drecs]")

        # WHEN the cluster of three is clicked THEN the map zooms in (1:50m outlines) and it splits into Kenya's devices
        page.click("svg.fleet-map .cluster[data-count='3']")
        page.wait_for_function(f"document.querySelector('svg.fleet-map').dataset.k > {fitted['k'] * 4}")
        zoomed = _map_state(page)
        assert zoomed["clusters"] == [] and set(zoomed["markers"]) == kenya, zoomed
        page.wait_for_selector("svg.fleet-map .countries[data-resolution='50m']")
        browser.screenshot("fleet-map-zoomed")

        # WHEN zoomed out by keyboard (the − button) and fitted again THEN the clusters are back
        page.focus("#fleet-zoom-out")
        page.keyboard.press("Enter")
        assert _map_state(page)["k"] < zoomed["k"]
        page.click("#fleet-fit")
        assert _map_state(page)["clusters"] == [2, 3]
        # WHEN the Lagos cluster is opened by keyboard THEN its two devices show
        page.focus("svg.fleet-map .cluster[data-count='2']")
        page.keyboard.press("Enter")
        page.wait_for_function("document.querySelectorAll('svg.fleet-map a.marker').length >= 2")
        assert {ids[(6.52, 3.38)], ids[(6.45, 3.40)]} <= set(_map_state(page)["markers"])

        # WHEN a device's marker is clicked THEN its device page opens
        page.click(f"svg.fleet-map a[data-device='{ids[(6.52, 3.38)]}']")
        page.wait_for_selector(f"main h1:text('Device {ids[(6.52, 3.38)]}')")
        assert page.url.endswith(f"#/devices/{ids[(6.52, 3.38)]}")
        assert browser.page_errors == []
