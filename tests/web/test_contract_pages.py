"""The standards and alerts pages in a browser, against routers serving the contract of
docs/api.md (tests/web/contract_stub.py until the real ones are merged): a standard's page draws
its certificates, drift fit, prediction band, tolerance and control chart; an operator acknowledges
an alert with a comment and sees it in the audit trail; a viewer may not."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.support.lab import Lab
from tests.support.services import Mosquitto
from tests.web import contract_stub
from tests.web.conftest import guarded_context, open_as, shoot


@pytest.fixture(scope="module")
def stub_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """A lab whose gateway also serves the standards and alerts contract (embedded store)."""
    workdir = tmp_path_factory.mktemp("contract-lab")
    broker = Mosquitto(workdir / "mosquitto")
    broker.start()
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


def test_standard_page_draws_fit_band_tolerance_and_control_chart(
    context: BrowserContext, stub_lab: Lab
) -> None:
    page = open_as(context, stub_lab.api_url, "standard.html", "viewer")
    table = page.locator("#standards-table")
    expect(table).to_contain_text("Z10-01")
    expect(table).to_contain_text("±0.6 ppm")
    table.locator("a", has_text="Z10-01").click()
    expect(page.locator("#standard-title")).to_have_text("Z10-01 — Zener 10 V reference")
    expect(page.locator("#value-in-use")).to_contain_text("± ")
    expect(page.locator("#value-in-use")).to_contain_text("(k = 1.96)")
    expect(page.locator("#leaves-tolerance")).to_have_text(re.compile(r"\d{4}"))
    expect(page.locator("#next-calibration")).to_have_text(re.compile(r"\d{4}"))
    drift = page.locator("#drift-chart")
    expect(drift.locator(".main-svg").first).to_be_visible()
    traces = page.evaluate(
        "document.getElementById('drift-chart').data.map(t => [t.name, t.x.length,"
        " t.error_y ? t.error_y.array.length : 0])"
    )
    names = {name: (points, bars) for name, points, bars in traces}
    assert names["drift fit"][0] == 121 and names["prediction band"][0] == 121
    assert names["certificates (U)"] == (4, 4)  # each with its expanded-uncertainty bar
    assert names["tolerance low"][0] == 2 and names["tolerance high"][0] == 2
    assert names["monitored"][0] >= 1  # the linked channel's history
    expect(drift).to_contain_text("leaves tolerance")
    expect(drift).to_contain_text("next calibration")
    control = page.locator("#control-chart")
    expect(control.locator(".main-svg").first).to_be_visible()
    expect(page.locator("#violations")).to_have_text(re.compile(r"^[1-9]\d* rule violation"))
    expect(page.locator("#violations")).to_contain_text("nelson-")
    expect(page.locator("#certificates tbody tr")).to_have_count(4)
    expect(page.locator("#certificates")).to_contain_text("Viện Đo lường Việt Nam")
    shoot(page, "standard-en.png")
    page.click("#lang-switch")
    expect(page.locator("#drift-chart")).to_contain_text("ra ngoài dung sai")
    expect(page.locator("main")).to_contain_text("Giá trị sử dụng")
    shoot(page, "standard-vi.png")


def test_screenshots_are_not_in_the_tree() -> None:
    ignored = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "/artifacts/" in ignored
