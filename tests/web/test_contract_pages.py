"""The alerts page in a browser, against a router serving the contract of docs/api.md
(tests/web/contract_stub.py until the real one is merged): an operator acknowledges an alert with
a comment and sees it in the audit trail; a viewer may not. (The standard page: see
test_standard_page.py, against the real standards feature.)"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.lab import Lab
from tests.support.services import Mosquitto
from tests.web import contract_stub
from tests.web.conftest import bearer, guarded_context, open_as, shoot


@pytest.fixture(scope="module")
def stub_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab whose gateway also serves the alerts contract (embedded store)."""
    workdir = tmp_path_factory.mktemp("contract-lab")
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    contract_stub.reset_alerts()
    store = {"kind": "sqlite", "path": str(workdir / "readings.db")}
    running = Lab(workdir / "lab", broker.port, store, routers=[contract_stub.router])
    try:
        running.start()
        yield running
    finally:
        running.stop()
        broker.stop()


@pytest.fixture
def context(browser: Browser, stub_lab: Lab) -> Iterator[BrowserContext]:
    """A fresh browser profile that refuses any request off the gateway."""
    with guarded_context(browser, stub_lab.api_url) as fresh:
        yield fresh


def test_operator_acknowledges_an_alert_and_sees_it_in_the_audit_trail(
    context: BrowserContext, stub_lab: Lab
) -> None:
    contract_stub.reset_alerts()
    page = open_as(context, stub_lab.api_url, "alerts.html", "operator")
    row = page.locator('tr.alert-row[data-alert="1"]')
    expect(row).to_contain_text("24.31 °C above the high limit 24 °C")
    expect(row).to_contain_text("active, unacknowledged")
    # A comment is required: nothing is sent without one.
    row.locator("button.acknowledge").click()
    expect(row.locator(".action-status")).to_have_text("A comment is required.")
    row.locator("textarea.comment").fill("Điều hòa phòng A hỏng, đã gọi kỹ thuật")
    row.locator("button.acknowledge").click()
    row = page.locator('tr.alert-row[data-alert="1"]')
    expect(row).to_contain_text("active, acknowledged")
    expect(row).to_contain_text("acknowledged by nguyen")
    trail = row.locator("ol.trail")
    expect(trail).to_contain_text("nguyen: alert acknowledged")
    expect(trail).to_contain_text("Điều hòa phòng A hỏng, đã gọi kỹ thuật")
    row.locator("textarea.comment").fill("Maintenance until 17:00")
    row.locator("button.shelve").click()
    expect(page.locator('tr.alert-row[data-alert="1"]')).to_contain_text("shelved until")
    expect(page.locator('tr.alert-row[data-alert="1"] ol.trail')).to_contain_text(
        "nguyen: alert shelved — “Maintenance until 17:00”"
    )
    shoot(page, "alerts-en.png")
    # The audit log itself holds both, with the operator's name.
    entries = httpx.get(
        f"{stub_lab.api_url}/api/v1/audit",
        params={"subject": "alert/1", "order": "asc"},
        headers=bearer("viewer"),
    ).json()
    assert [(e["actor"], e["action"]) for e in entries] == [
        ("nguyen", "alert acknowledged"),
        ("nguyen", "alert shelved"),
    ]
    assert entries[0]["details"]["comment"] == "Điều hòa phòng A hỏng, đã gọi kỹ thuật"


def test_viewers_see_alerts_without_actions(context: BrowserContext, stub_lab: Lab) -> None:
    contract_stub.reset_alerts()
    page = open_as(context, stub_lab.api_url, "alerts.html", "viewer")
    row = page.locator('tr.alert-row[data-alert="1"]')
    expect(row).to_contain_text("24.31 °C above the high limit 24 °C")
    expect(row.locator("button")).to_have_count(0)
    page.click("#lang-switch")
    expect(row).to_contain_text("24,31 °C vượt giới hạn trên 24 °C")
    expect(row).to_contain_text("đang kích hoạt, chưa xác nhận")
    refused = httpx.post(
        f"{stub_lab.api_url}/api/v1/alerts/1/acknowledge",
        json={"comment": "not mine to do"},
        headers=bearer("viewer"),
    )
    assert refused.status_code == 403


def test_screenshots_are_not_in_the_tree() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "/artifacts/" in ignored
