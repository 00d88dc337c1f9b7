"""Calibration records in a browser: a bench's record, published to the lab's real broker, is listed
on the dashboard's Calibrations page and drawn (each point's error with its U against the
tolerance band) in English and Vietnamese; its report, served by the gateway under a policy that
runs no script, renders in Chromium in both languages; its DCC downloads and validates."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from edge_agent.wire_calibration import encode_calibration
from metrology.certificate.record import CalibrationRecord
from metrology.dcc import parse, validate
from tests.gateway.web.conftest import bearer, guarded_context, open_as, shoot
from tests.support.calibration_record import sample_record
from tests.support.lab import SITE, Lab
from tests.support.mqtt_client import RawClient
from tests.support.services import Mosquitto

RUN = "20261120-020000-web1"


@pytest.fixture(scope="module")
def record(lab: Lab, broker: Mosquitto) -> CalibrationRecord:
    """A bench's record, published as a bench publishes it, once the gateway lists it."""
    published = sample_record(run=RUN, site=SITE, agent="bench-web-cal")
    client = RawClient(broker.port, "test-web-bench")
    try:
        client.publish(
            f"etalon/v1/{SITE}/bench-web-cal/calibrations", encode_calibration(published)
        )
    finally:
        client.close()
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{lab.api_url}/api/v1/calibrations", headers=bearer("viewer"))
        if any(item["run"] == RUN for item in answer.json()):
            return published
        assert time.monotonic() < deadline, answer.text
        time.sleep(0.2)


@pytest.fixture
def context(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    with guarded_context(browser, lab.api_url) as fresh:
        yield fresh


def test_the_calibrations_page_lists_and_draws_a_run_in_both_languages(
    context: BrowserContext, lab: Lab, record: CalibrationRecord, tmp_path: Path
) -> None:
    page = open_as(context, lab.api_url, "calibrations.html", "viewer")
    row = page.locator(f'#calibrations-table tr[data-run="{RUN}"]')
    expect(row).to_contain_text("dmm-dcv")
    expect(row).to_contain_text("MY12345")
    expect(row.locator("td.decision")).to_have_text("Incomplete")
    row.locator("a").click()
    expect(page.locator("#run-title")).to_have_text(f"DC voltage of a 6½-digit DMM — {RUN}")
    chart = page.locator("#calibration-chart")
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_have_attribute("data-points", "3")
    traces = page.evaluate(
        "document.getElementById('calibration-chart').data.map(t => [t.y, t.error_y ? "
        "t.error_y.array : null])"
    )
    upper, lower, errors = traces
    measured = record.ok_points()
    assert errors == [
        [p.error for p in measured],
        [p.budget.expanded_uncertainty for p in measured if p.budget],
    ]
    assert upper[0] == [p.tolerance.upper for p in sorted(measured, key=lambda p: p.nominal)
                        if p.tolerance]  # fmt: skip
    assert lower[0] == [-u for u in upper[0]]
    expect(page.locator("#points-table tbody tr")).to_have_count(4)
    expect(page.locator('#points-table tr[data-index="3"]')).to_contain_text(
        "not measured: the reference did not settle within 30 s"
    )
    expect(page.locator("#fact-decision")).to_have_text("Incomplete")
    shoot(page, "calibration-en.png")
    page.locator("#lang-switch").click()
    expect(page.locator("#calibrations-title")).to_have_text("Hiệu chuẩn")
    expect(page.locator("#fact-decision")).to_have_text("Chưa đầy đủ")
    vietnamese = {"pass": "Đạt", "fail": "Không đạt"}
    for point in measured:
        assert point.verdict is not None
        expect(page.locator(f'#points-table tr[data-index="{point.index}"] td.decision'))\
            .to_have_text(vietnamese[point.verdict.decision])  # fmt: skip
    shoot(page, "calibration-vi.png")
    with page.expect_download() as downloading:
        page.locator("#dcc").click()
    saved = tmp_path / "run.dcc.xml"
    downloading.value.save_as(saved)
    validate(saved.read_bytes())
    assert parse(saved.read_bytes()).unique_identifier == RUN
    page.close()


@pytest.mark.parametrize(
    ("lang", "title", "words"),
    [
        ("en", "Calibration report", ["Unit under test", "Uncertainty budgets", "Incomplete"]),
        ("vi", "Báo cáo hiệu chuẩn",
         ["Thiết bị được hiệu chuẩn", "Bảng ngân sách độ không đảm bảo", "Chưa đầy đủ"]),
    ],
)  # fmt: skip
def test_the_report_renders_in_chromium(
    context: BrowserContext,
    lab: Lab,
    record: CalibrationRecord,
    lang: str,
    title: str,
    words: list[str],
) -> None:
    context.set_extra_http_headers(bearer("viewer"))
    page = context.new_page()
    answer = page.goto(f"{lab.api_url}/api/v1/calibrations/{RUN}/report?lang={lang}")
    assert answer is not None and answer.status == 200
    assert "sandbox" in answer.headers["content-security-policy"]
    expect(page.locator("#report-title")).to_have_text(title)
    for word in words:
        expect(page.locator("body")).to_contain_text(word)
    plot = page.locator("#plot svg")
    expect(plot).to_be_visible()
    expect(plot.locator("g.point")).to_have_count(3)
    expect(plot.locator("polygon.tolerance-band")).to_have_count(1)
    box = plot.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 200
    expect(page.locator("#results tr[data-index]")).to_have_count(4)
    expect(page.locator("section.budget")).to_have_count(3)
    assert page.evaluate("document.documentElement.lang") == lang
    shoot(page, f"calibration-report-{lang}.png")
    page.close()
