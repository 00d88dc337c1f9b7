"""A corrected channel where people look, on the lab (influxd 1.x store, a real agent reading
simulated instruments): a DCC for the Zener's temperature sensor (the simulator reports its name
as serial) is imported and linked through the API; influxd then holds the corrected fields, the
channel page draws the raw and corrected values with the U band and names the certificate in
use and its validity, in English and Vietnamese."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.gateway.web.conftest import guarded_context, open_as, shoot
from tests.support.calibration import ErrorCurve, prt_dcc
from tests.support.lab import AGENT, ROLE_TOKENS, SITE, Lab

INSTRUMENT, CHANNEL = "zener-10v", "temperature"


@pytest.fixture
def context(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    with guarded_context(browser, lab.api_url) as fresh:
        yield fresh


@pytest.fixture(scope="module")
def linked(lab: Lab) -> dict[str, object]:
    """The Zener's temperature channel corrected by a test-made certificate."""
    admin = {"Authorization": f"Bearer {ROLE_TOKENS['admin']}"}
    due = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=90)
    data = prt_dcc("ZENER-T-2026", ErrorCurve(), serial=INSTRUMENT, due=due)
    with httpx.Client(base_url=lab.api_url, headers=admin, timeout=60) as http:
        answer = http.post(
            "/api/v1/instruments/certificates",
            content=data,
            headers={"Content-Type": "application/xml"},
        )
        assert answer.status_code == 201, answer.text
        certificate = answer.json()
        url = f"/api/v1/instruments/{SITE}/{AGENT}/{INSTRUMENT}/channels/{CHANNEL}/calibration"
        answer = http.put(url, json={"certificate_id": certificate["id"]})
        assert answer.status_code == 200, answer.text
        history = f"/api/v1/channels/{SITE}/{AGENT}/{INSTRUMENT}/{CHANNEL}/history"
        deadline = time.monotonic() + 30
        while True:  # influxd holds corrected readings (the fields of the v1 write path)
            points = http.get(history).json()["points"]
            corrected = [p for p in points if p["corrected"] is not None]
            if len(corrected) >= 3:
                break
            assert time.monotonic() < deadline, "no corrected reading reached influxd"
            time.sleep(0.5)
    point = corrected[-1]
    assert point["certificate"] == "ZENER-T-2026"
    assert point["certificate_id"] == certificate["id"]
    assert point["u_corrected"] == pytest.approx(0.005, rel=0.1)
    assert point["corrected"] != point["value"]
    return {"certificate": certificate, "due": due}


def test_channel_page_draws_raw_and_corrected_with_u_band(
    context: BrowserContext, lab: Lab, linked: dict[str, object]
) -> None:
    page = open_as(
        context,
        lab.api_url,
        f"channel.html?site={SITE}&agent={AGENT}&instrument={INSTRUMENT}&channel={CHANNEL}",
        "viewer",
    )
    due = linked["due"]
    assert isinstance(due, dt.date)
    expect(page.locator("#channel-certificate")).to_have_text(
        re.compile(rf"^ZENER-T-2026 \(id \d+\), due {due.isoformat()}$")
    )
    chart = page.locator("#chart")
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert names[:4] == ["raw indication", "U-", "corrected ± U (k = 2)", "corrected"]
    shoot(page, "channel-corrected-en.png")
    page.locator("#lang-switch").click()
    expect(page.locator("#channel-certificate")).to_contain_text("hết hạn")
    names = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert "đã hiệu chính" in names
    shoot(page, "channel-corrected-vi.png")
