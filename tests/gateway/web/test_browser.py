"""The built-in dashboard in a real browser (Debian's chromium driven by Playwright) against the
lab: live values change on the overview, the channel page draws and follows, the language switch
changes the page, features the gateway lacks say so. Nothing may load from outside the gateway.
Screenshots go to artifacts/web/ (git-ignored) for a person to look at."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.gateway.web.conftest import guarded_context, open_as, shoot
from tests.support.lab import AGENT, ROLE_TOKENS, SITE, Lab


@pytest.fixture
def context(browser: Browser, lab: Lab) -> Iterator[BrowserContext]:
    """A fresh browser profile that refuses any request off the lab's gateway."""
    with guarded_context(browser, lab.api_url) as fresh:
        yield fresh


def open_page(context: BrowserContext, lab: Lab, path: str, role: str = "operator") -> Page:
    return open_as(context, lab.api_url, path, role)


def test_overview_shows_live_values_changing(context: BrowserContext, lab: Lab) -> None:
    page = open_page(context, lab, "")
    expect(page).to_have_url(re.compile(r"/ui/$"))  # the token left the address bar
    row = page.locator(f'tr[data-key="{SITE}/{AGENT}/zener-10v/voltage"]')
    value = row.locator("td.value")
    expect(value).to_have_text(re.compile(r"^10\.0000\d+$"))
    first = value.text_content()
    expect(value).not_to_have_text(first or "", timeout=10_000)  # a live update arrived
    expect(page.locator("#agents-online")).to_have_text("1")
    expect(page.locator("#instrument-states")).to_contain_text("1 unavailable")
    expect(page.locator(f'tr[data-key="{SITE}/{AGENT}/dmm-spare/voltage"]')).to_contain_text(
        "unavailable"
    )
    room = page.locator('article.room[data-room="A"]')
    expect(room).to_contain_text("limits 22 … 24")
    expect(room.locator(".room-channel")).to_have_count(3)
    expect(page.locator("#alerts-active [data-state=not-configured]")).to_be_visible()
    expect(page.locator("#hub-sync [data-state=not-configured]")).to_be_visible()  # no hub:
    expect(page.locator("#feed-state")).to_contain_text("live")
    shoot(page, "overview-en.png")


def test_channel_page_draws_history_limits_and_live_values(
    context: BrowserContext, lab: Lab
) -> None:
    page = open_page(
        context,
        lab,
        f"channel.html?site={SITE}&agent={AGENT}&instrument=room-a&channel=temperature",
        role="viewer",
    )
    expect(page.locator("#channel-title")).to_have_text("room-a / temperature")
    chart = page.locator("#chart")
    expect(chart.locator(".main-svg").first).to_be_visible()
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]\d*$"))
    expect(chart).to_contain_text("high limit 24")
    expect(chart).to_contain_text("low limit 22")
    expect(chart).to_have_attribute("data-live", re.compile(r"^[1-9]\d*$"), timeout=10_000)
    traces = page.evaluate("document.getElementById('chart').data.map(t => t.name)")
    assert traces[0] == "value" and traces[-1] == "live"
    expect(page.locator("#caption")).to_contain_text("readings")
    # Zooming asks the API for the new range: a few seconds hold a few readings, raw.
    page.evaluate(
        """() => {
          const c = document.getElementById('chart');
          const [a, b] = c.layout.xaxis.range;
          const end = new Date(Date.now() - 1000), start = new Date(Date.now() - 4000);
          const text = d => d.getFullYear() + '-' + String(d.getMonth() + 1).padStart(2, '0') + '-'
            + String(d.getDate()).padStart(2, '0') + ' ' + d.toTimeString().slice(0, 8);
          return Plotly.relayout(c, {'xaxis.range[0]': text(start), 'xaxis.range[1]': text(end)});
        }"""
    )
    expect(page.locator("#follow")).not_to_be_checked()
    expect(chart).to_have_attribute("data-points", re.compile(r"^[1-9]$"))
    shoot(page, "channel-en.png")


def test_language_switch_changes_the_page(context: BrowserContext, lab: Lab) -> None:
    page = open_page(context, lab, "")
    nav = page.locator("header nav")
    expect(nav).to_contain_text("Overview")
    room_value = page.locator('article.room[data-room="A"] .value').first
    expect(room_value).to_have_text(re.compile(r"^\d+\.\d+$"))
    page.click("#lang-switch")
    expect(nav).to_contain_text("Tổng quan")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    expect(page.locator("#lang-switch")).to_have_text("English")
    expect(page.locator("main")).to_contain_text("Môi trường")
    expect(page.locator('article.room[data-room="A"]')).to_contain_text("giới hạn 22 … 24")
    expect(room_value).to_have_text(re.compile(r"^\d+,\d+$"))  # decimal comma
    pressure = page.locator(f'tr[data-key="{SITE}/{AGENT}/room-a/pressure"] td.value')
    expect(pressure).to_have_text(re.compile(r"^1\.0\d\d,\d+$"))  # thousands dot
    expect(page.locator("#agents")).to_contain_text("trực tuyến")
    shoot(page, "overview-vi.png")
    # The choice is remembered on the next page.
    page.goto(f"{lab.api_url}/ui/audit.html")
    expect(page.locator("h1")).to_have_text("Nhật ký kiểm tra")
    expect(page.locator("#audit-table")).to_contain_text("agent online")
    shoot(page, "audit-vi.png")
    page.click("#lang-switch")
    expect(page.locator("h1")).to_have_text("Audit log")


def test_sign_in_with_a_token(context: BrowserContext, lab: Lab) -> None:
    page = context.new_page()
    page.goto(f"{lab.api_url}/ui/")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("#token-input", "not-a-valid-token-at-all")
    page.click("#signin button[type=submit]")
    expect(page.locator("#signin")).to_contain_text("This token was refused.")
    page.fill("#token-input", ROLE_TOKENS["viewer"])
    page.click("#signin button[type=submit]")
    expect(page.locator("#who")).to_have_text("wall-screen (viewer)")
    expect(page.locator("#signin")).to_have_count(0)


# The standards registry is always served now: its page is tested in test_standard_page.py.
@pytest.mark.parametrize(("name", "what"), [("alerts.html", "Alerts")])
def test_pages_of_absent_features_say_so(
    context: BrowserContext, lab: Lab, name: str, what: str
) -> None:
    page = open_page(context, lab, name)
    notice = page.locator("[data-state=not-configured]")
    expect(notice).to_contain_text("Not configured on this gateway.")
    expect(notice).to_contain_text(what)
    page.click("#lang-switch")
    expect(notice).to_contain_text("Chưa được cấu hình trên cổng này.")
    shoot(page, f"{name.removesuffix('.html')}-not-configured-vi.png")


def test_a_link_with_lang_vi_opens_in_vietnamese_and_the_api_answers_so(
    context: BrowserContext, lab: Lab
) -> None:
    """``/ui/?lang=vi`` (a link a colleague sends) opens in Vietnamese in an English browser, and
    the API's refusals the page shows come in the page's language."""
    page = open_page(context, lab, "?lang=vi")
    expect(page.locator("header nav")).to_contain_text("Tổng quan")
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    answer = page.evaluate(
        """async () => {
            const { api } = await import('./app.js');
            try { await api('/api/v1/agents/nowhere/ghost'); return ''; }
            catch (error) { return error.message; }
        }"""
    )
    assert answer == "không có tác tử nowhere/ghost", answer
