"""The alerts page in a browser against a gateway running the real alert engine: room A's
temperature is above an alarm limit, so an alert is active. An operator acknowledges it with a
comment and shelves it, and sees both in its audit trail; a viewer sees it (in Vietnamese too)
without actions and may not act through the API; the overview draws the rule's limits."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.gateway.web.conftest import bearer, guarded_context, open_as, shoot
from tests.support.lab import AGENT, SITE, Lab
from tests.support.services import Mosquitto

SUBJECT = f"{SITE}/{AGENT}/room-a/temperature"
ALERTS = {
    "rules": [
        {
            "id": "room-a-too-warm",
            "kind": "limits",
            "channels": [SUBJECT],
            # Far below the simulated room: the alert is active from the first reading.
            "levels": [
                {"severity": "warning", "low": -50.0, "high": 4.0},
                {"severity": "alarm", "high": 5.0},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def alert_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab whose gateway runs the alert engine (embedded store)."""
    workdir = tmp_path_factory.mktemp("alerts-lab")
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
    store = {"kind": "sqlite", "path": str(workdir / "readings.db")}
    running = Lab(workdir / "lab", broker.port, store, alerts=ALERTS)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        broker.stop()


@pytest.fixture
def context(browser: Browser, alert_lab: Lab) -> Iterator[BrowserContext]:
    """A fresh browser profile that refuses any request off the gateway."""
    with guarded_context(browser, alert_lab.api_url) as fresh:
        yield fresh


def active_alarm(lab: Lab) -> dict[str, Any]:
    """The room's alarm once the engine has raised it."""
    deadline = time.monotonic() + 20
    while True:
        alerts = httpx.get(
            f"{lab.api_url}/api/v1/alerts", params={"state": "active"}, headers=bearer("viewer")
        ).json()
        found = [a for a in alerts if a["subject"] == SUBJECT and a["severity"] == "alarm"]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert found, alerts
    alarm: dict[str, Any] = found[0]
    return alarm


def test_operator_acknowledges_an_alert_and_sees_it_in_the_audit_trail(
    context: BrowserContext, alert_lab: Lab
) -> None:
    alarm = active_alarm(alert_lab)
    assert alarm["state"] == "active_unacknowledged"
    page = open_as(context, alert_lab.api_url, "alerts.html", "operator")
    row = page.locator(f'tr.alert-row[data-alert="{alarm["id"]}"]')
    expect(row).to_contain_text(re.compile(r"°C above the high limit 5 °C"))
    expect(row).to_contain_text("active, unacknowledged")
    # A comment is required: nothing is sent without one.
    row.locator("button.acknowledge").click()
    expect(row.locator(".action-status")).to_have_text("A comment is required.")
    row.locator("textarea.comment").fill("Điều hòa phòng A hỏng, đã gọi kỹ thuật")
    row.locator("button.acknowledge").click()
    expect(row).to_contain_text("active, acknowledged")
    expect(row).to_contain_text("acknowledged by nguyen")
    trail = row.locator("ol.trail")
    expect(trail).to_contain_text("nguyen: alert acknowledged")
    expect(trail).to_contain_text("Điều hòa phòng A hỏng, đã gọi kỹ thuật")
    row.locator("textarea.comment").fill("Maintenance until 17:00")
    row.locator("button.shelve").click()
    expect(row).to_contain_text("shelved until")
    expect(row.locator("ol.trail")).to_contain_text(
        "nguyen: alert shelved — “Maintenance until 17:00”"
    )
    shoot(page, "alerts-en.png")
    # The audit log itself holds both, with the operator's name, after the engine's own entries.
    entries = httpx.get(
        f"{alert_lab.api_url}/api/v1/audit",
        params={"subject": f"alert:{alarm['id']}", "order": "asc"},
        headers=bearer("viewer"),
    ).json()
    by_people = [(e["actor"], e["action"]) for e in entries if e["actor"] == "nguyen"]
    assert by_people == [("nguyen", "alert acknowledged"), ("nguyen", "alert shelved")]
    assert [e["action"] for e in entries][:1] == ["alert active"]
    acknowledged = next(e for e in entries if e["action"] == "alert acknowledged")
    assert acknowledged["details"]["comment"] == "Điều hòa phòng A hỏng, đã gọi kỹ thuật"
    # The alert's state holds it too, and the CSV export lists it with both languages.
    again = httpx.get(
        f"{alert_lab.api_url}/api/v1/alerts/{alarm['id']}", headers=bearer("viewer")
    ).json()["alert"]
    assert again["state"] == "active_acknowledged" and again["acked_by"] == "nguyen"
    assert again["shelved_by"] == "nguyen"
    export = httpx.get(
        f"{alert_lab.api_url}/api/v1/alerts",
        params={"state": "all", "format": "csv"},
        headers=bearer("viewer"),
    )
    assert export.headers["content-type"].startswith("text/csv")
    lines = export.text.lstrip("\ufeff").splitlines()
    assert lines[0].startswith("id,rule_id,kind,site,subject,level,severity,state,")
    assert "messages.vi" in lines[0] and "acked_utc" in lines[0]
    mine = next(line for line in lines[1:] if line.startswith(f"{alarm['id']},"))
    assert "room-a-too-warm" in mine and "vượt giới hạn trên" in mine


def test_viewers_see_alerts_without_actions(context: BrowserContext, alert_lab: Lab) -> None:
    alarm = active_alarm(alert_lab)
    page = open_as(context, alert_lab.api_url, "alerts.html", "viewer")
    row = page.locator(f'tr.alert-row[data-alert="{alarm["id"]}"]')
    expect(row).to_contain_text("above the high limit 5 °C")
    expect(row.locator("button")).to_have_count(0)
    page.click("#lang-switch")
    expect(row).to_contain_text("vượt giới hạn trên 5 °C")
    expect(row).to_contain_text(re.compile("đang kích hoạt"))
    # The audit trail's actions are stored in English and read in Vietnamese.
    row.locator("details summary").click()
    trail = row.locator("ol.trail")
    expect(trail).to_contain_text("gateway: cảnh báo được kích hoạt")
    expect(trail).not_to_contain_text("alert active")
    # So are they on the audit log page (the language chosen stays with the browser).
    audit = open_as(context, alert_lab.api_url, "audit.html", "viewer")
    cell = audit.locator('#audit-table td[data-action="alert active"]').first
    expect(cell).to_have_text("cảnh báo được kích hoạt")
    audit.click("#lang-switch")
    expect(cell).to_have_text("alert active")
    refused = httpx.post(
        f"{alert_lab.api_url}/api/v1/alerts/{alarm['id']}/ack",
        json={"comment": "not mine to do"},
        headers=bearer("viewer"),
    )
    assert refused.status_code == 403


def test_state_filters_of_the_list(alert_lab: Lab) -> None:
    alarm = active_alarm(alert_lab)

    def ids(**params: str) -> set[int]:
        answer = httpx.get(
            f"{alert_lab.api_url}/api/v1/alerts", params=params, headers=bearer("viewer")
        )
        assert answer.status_code == 200, answer.text
        return {a["id"] for a in answer.json()}

    assert alarm["id"] in ids() and alarm["id"] in ids(state="active")
    assert alarm["id"] in ids(state="all") and alarm["id"] in ids(all="true")
    assert alarm["id"] not in ids(state="normal") and alarm["id"] not in ids(state="pending")
    assert alarm["id"] in ids(severity="alarm") and alarm["id"] not in ids(severity="critical")
    wrong = httpx.get(
        f"{alert_lab.api_url}/api/v1/alerts", params={"state": "red"}, headers=bearer("viewer")
    )
    assert wrong.status_code == 422


def test_overview_draws_the_limits_the_engine_alarms_on(alert_lab: Lab) -> None:
    channels = httpx.get(f"{alert_lab.api_url}/api/v1/channels", headers=bearer("viewer")).json()
    by_name = {(c["instrument"], c["channel"]): c for c in channels}
    # The rule's innermost band (warning -50..4 inside alarm ..5), not the dashboard's 22..24.
    assert by_name[("room-a", "temperature")]["limits"] == {"low": -50.0, "high": 4.0}
    # A channel no rule watches keeps the dashboard's own limits.
    assert by_name[("room-a", "humidity")]["limits"] == {"low": 30.0, "high": 70.0}
