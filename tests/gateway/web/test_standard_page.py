"""The standards pages in a browser against the real standards feature: the package's lab
registers the Zener Z10-01 with four certificates through the API, its gateway evaluates it
every two seconds from what the simulated Zener wrote to influxd, and the page draws what the
real evaluation says — the certificates with their U, the drift fits with their prediction
bands, the tolerance limits, the monitored period means, the value in use, the forecast date of
leaving tolerance, the control chart — in English and in Vietnamese."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, expect

from tests.gateway.web.conftest import bearer, guarded_context, open_as, shoot
from tests.support.lab import Lab

HANOI = timezone(timedelta(hours=7))  # the browser profile's time zone


@pytest.fixture
def context(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    """A fresh browser profile that refuses any request off the gateway."""
    with guarded_context(browser, lab.api_url) as fresh:
        yield fresh


def evaluated_chart(lab: Lab, timeout_s: float = 60.0) -> dict[str, Any]:
    """Z10-01's chart once its evaluation has a control chart (ten periods of a second)."""
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(
            f"{lab.api_url}/api/v1/standards/Z10-01/chart", headers=bearer("viewer"), timeout=10
        )
        if answer.status_code == 200 and answer.json()["control"]:
            chart: dict[str, Any] = answer.json()
            return chart
        assert time.monotonic() < deadline, f"Z10-01 has no control chart yet: {answer.text}"
        time.sleep(1)


def local_day(ts_ns: int) -> datetime:
    return datetime.fromtimestamp(ts_ns / 1e9, HANOI)


def date_pattern(ts_ns: int) -> re.Pattern[str]:
    """The day and year of a date as the page shows it (en-GB: '23 Nov 2026')."""
    day = local_day(ts_ns)
    return re.compile(rf"^{day.day} \w+ {day.year}$")


def reading(value: float, u: float) -> str:
    """fmtReading: the digits two significant digits of u support."""
    digits = min(12, max(0, 1 - math.floor(math.log10(u))))
    return f"{value:.{digits}f}"


def test_standard_page_draws_the_real_evaluation(context: BrowserContext, lab: Lab) -> None:
    evaluated_chart(lab)  # the analytics have run long enough for every part of the page
    page = open_as(context, lab.api_url, "standard.html", "viewer")
    row = page.locator('#standards-table tr[data-standard="Z10-01"]')
    expect(row).to_contain_text("Zener 10 V reference")
    expect(row).to_contain_text("±2.0 ppm")
    listed = httpx.get(f"{lab.api_url}/api/v1/standards", headers=bearer("viewer")).json()
    [z10] = [s for s in listed if s["id"] == "Z10-01"]
    assert z10["certificates"] == 4 and z10["predicted_out_of_tolerance_ns"] is not None
    expect(row.locator("td.due")).to_have_text(date_pattern(z10["due_ns"]))
    expect(row.locator("td.leaves")).to_have_text(re.compile(r"^\d+ \w+ 20[3-4]\d$"))
    # The detail page: what it draws is the chart view it fetched.
    with page.expect_response(lambda r: r.url.endswith("/standards/Z10-01/chart")) as fetched:
        row.locator("a").click()
    chart: dict[str, Any] = fetched.value.json()
    expect(page.locator("#standard-title")).to_have_text("Z10-01 — Zener 10 V reference")
    in_use = chart["value_in_use"]
    assert in_use["source"] == "fit"  # four certificates: the fit gives the value in use
    u = in_use["expanded_uncertainty"] / in_use["coverage_factor"]
    expect(page.locator("#value-in-use")).to_have_text(
        re.compile(
            rf"^{re.escape(reading(in_use['value'], u))} ± [\d.]+ V "
            rf"\(k = {in_use['coverage_factor']:.3g}\)$"
        )
    )
    measured = chart["measured"]
    assert measured is not None
    expect(page.locator("#measured")).to_contain_text(reading(measured["value"], measured["u"]))
    leaves = chart["predicted_out_of_tolerance_ns"]
    assert leaves is not None and chart["predicted_out_of_tolerance_from"] == "certificates"
    assert local_day(leaves).year >= 2030  # −0.4 µV/V a year from +0.4 towards −2 µV/V
    expect(page.locator("#leaves-tolerance")).to_have_text(date_pattern(leaves))
    expect(page.locator("#next-calibration")).to_have_text(
        date_pattern(chart["calibration_due_ns"])
    )
    # The drift chart: each fit with its band, the certificates with U, the tolerance, the
    # monitored period means.
    drift = page.locator("#drift-chart")
    expect(drift.locator(".main-svg").first).to_be_visible()
    traces = page.evaluate(
        "document.getElementById('drift-chart').data.map(t => [t.name, t.y,"
        " t.error_y ? t.error_y.array : null])"
    )
    drawn = {name: (y, bars) for name, y, bars in traces}
    fits = {fit["source"]: fit for fit in chart["fits"]}
    certificate_fit = fits["certificates"]
    assert drawn["drift fit (certificates)"][0] == [p["value"] for p in certificate_fit["curve"]]
    assert drawn["prediction band (certificates)"][0] == [
        p["high"] for p in certificate_fit["curve"]
    ]
    # The band runs on past the forecast crossing, where it meets the lower limit.
    assert certificate_fit["curve"][-1]["ts_ns"] >= leaves
    assert certificate_fit["crossing"]["side"] == "lower"
    assert "drift fit (bench-1/zener-10v/voltage)" in drawn
    assert drawn["certificates (U)"] == (
        [c["value"] for c in chart["certificates"]],
        [c["expanded_uncertainty"] for c in chart["certificates"]],
    )
    assert len(chart["certificates"]) == 4
    tolerance = chart["tolerance_limits"]
    assert drawn["tolerance low"][0] == [p["low"] for p in tolerance]
    assert {round(p["high"], 9) for p in tolerance} == {10.00002}
    monitored = drawn["monitored (zener-10v/voltage)"][0]
    assert len(monitored) == len(chart["monitored"][0]["points"]) >= 10
    expect(drift).to_contain_text("leaves tolerance")
    expect(drift).to_contain_text("next calibration")
    # The control chart of the residuals, its signals counted.
    [control] = chart["control"]
    expect(page.locator("#control-chart-0 .main-svg").first).to_be_visible()
    expect(page.locator("#violations-0")).to_have_text(
        re.compile(rf"^{len(control['violations'])} rule violation")
    )
    residuals = page.evaluate("document.getElementById('control-chart-0').data[0].y")
    assert residuals == [p["value"] for p in control["points"]]
    # Certificates and channels.
    expect(page.locator("#certificates tbody tr")).to_have_count(4)
    expect(page.locator("#certificates")).to_contain_text("Viện Đo lường Việt Nam")
    expect(page.locator("#channels")).to_contain_text("lab-1:bench-1/zener-10v/voltage")
    shoot(page, "standard-en.png")
    page.click("#lang-switch")
    expect(page.locator("#drift-chart")).to_contain_text("ra ngoài dung sai")
    expect(page.locator("main")).to_contain_text("Giá trị sử dụng")
    expect(page.locator("main")).to_contain_text("Kênh theo dõi")
    expect(page.locator("#violations-0")).to_contain_text("vi phạm quy tắc")
    names = page.evaluate("document.getElementById('drift-chart').data.map(t => t.name)")
    assert "đường trôi (giấy chứng nhận)" in names and "dung sai dưới" in names
    shoot(page, "standard-vi.png")


def test_a_standard_not_evaluated_says_so(context: BrowserContext, lab: Lab) -> None:
    """A retired standard is not evaluated: no dates, no charts, and the page says why."""
    retired = {
        "id": "R10K-OLD",
        "kind": "resistance",
        "description": "Retired 10 kΩ resistor",
        "nominal": 10_000.0,
        "unit": "Ω",
        "owner_lab": "VMI Electrical",
        "status": "retired",
    }
    added = httpx.post(
        f"{lab.api_url}/api/v1/standards", json=retired, headers=bearer("admin"), timeout=10
    )
    assert added.status_code in (201, 409), added.text  # 409: a rerun of this test
    page = open_as(context, lab.api_url, "standard.html", "viewer")
    row = page.locator('#standards-table tr[data-standard="R10K-OLD"]')
    expect(row.locator("td.leaves")).to_have_text("not evaluated yet")
    row.locator("a").click()
    expect(page.locator("#no-drift")).to_contain_text("Not evaluated yet")
    expect(page.locator("#leaves-tolerance")).to_have_text("not evaluated yet")
    expect(page.locator("#no-channels")).to_be_visible()
    page.click("#lang-switch")
    expect(page.locator("#leaves-tolerance")).to_have_text("chưa được đánh giá")


def test_each_certificate_shows_its_dcc_and_signature_verdict(
    context: BrowserContext, lab: Lab
) -> None:
    """A DCC imported through the API, signed by a CA the lab does not trust: the standard page
    lists the certificate with its DCC links and the verdict (signer, when checked), in both
    languages; the original downloads byte for byte."""
    from metrology import dcc
    from tests.support.pki import certificate_authority, signer

    data_dir = Path(__file__).parents[2] / "metrology" / "dcc" / "data"
    stranger = signer(certificate_authority("a CA nobody here trusts"), "Unknown DCC lab")
    document = dcc.sign(
        (data_dir / "resistor.xml").read_bytes(),
        key=stranger.key,
        certificates=[stranger.certificate],
    )
    posted = httpx.post(
        f"{lab.api_url}/api/v1/standards/DCC-R100/certificates",
        content=document,
        headers=bearer("admin") | {"content-type": "application/xml"},
        timeout=60,
    )
    assert posted.status_code in (201, 409), posted.text  # 409: a rerun of this test
    page = open_as(context, lab.api_url, "standard.html", "viewer")
    page.locator('#standards-table tr[data-standard="DCC-R100"] a').click()
    row = page.locator("#certificates tbody tr").first
    signature = row.locator("td.signature")
    expect(signature).to_contain_text("not trusted — signed by")
    expect(signature).to_contain_text("Unknown DCC lab")
    expect(signature).to_contain_text("checked")
    expect(signature).to_have_class(re.compile(r"\bwarn\b"))
    expect(row.locator("td.dcc button.dcc-original")).to_have_text("DCC as received")
    expect(row.locator("td.dcc button.dcc-export")).to_have_text("Export DCC")
    with page.expect_download() as downloaded:
        row.locator("td.dcc button.dcc-original").click()
    assert Path(downloaded.value.path()).read_bytes() == document
    shoot(page, "standard-dcc-en.png")
    page.click("#lang-switch")
    expect(signature).to_contain_text("không được tin cậy — ký bởi")
    expect(signature).to_contain_text("kiểm tra lúc")
    expect(row.locator("td.dcc button.dcc-export")).to_have_text("Xuất DCC")
    shoot(page, "standard-dcc-vi.png")
