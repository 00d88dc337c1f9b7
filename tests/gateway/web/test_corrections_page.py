"""A corrected channel where people look, on the lab (influxd 1.x store, a real agent reading
simulated instruments): a DCC for the Zener's temperature sensor (the simulator reports its name
as serial) is imported and linked through the API; influxd then holds the corrected fields, the
channel page draws the raw and corrected values with the U band and names the certificate in
use and its validity, in English and Vietnamese."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.gateway.web.conftest import CORRECTED, guarded_context, open_as, shoot
from tests.support.lab import AGENT, SITE, Lab

INSTRUMENT, CHANNEL = CORRECTED


@pytest.fixture
def context(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    with guarded_context(browser, lab.api_url) as fresh:
        yield fresh


def test_channel_page_draws_raw_and_corrected_with_u_band(
    context: BrowserContext, lab: Lab, corrected_channel: dict[str, object]
) -> None:
    page = open_as(
        context,
        lab.api_url,
        f"channel.html?site={SITE}&agent={AGENT}&instrument={INSTRUMENT}&channel={CHANNEL}",
        "viewer",
    )
    due = corrected_channel["due"]
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
