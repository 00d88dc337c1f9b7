"""One lab for the whole package: a real Mosquitto, a real influxd, a gateway serving its API and
dashboard, and an agent reading simulated instruments (tests/support/lab.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, Route, sync_playwright

from tests.support.calibration import ErrorCurve, prt_dcc
from tests.support.lab import AGENT, LAB_STANDARDS, ROLE_TOKENS, SITE, Lab
from tests.support.services import Influxd, Mosquitto

ARTIFACTS = Path(__file__).resolve().parents[3] / "artifacts" / "web"
CHROMIUM = "/usr/bin/chromium"
CORRECTED = ("zener-10v", "temperature")
"""The lab's channel a test-made certificate corrects (the simulator reports its name as serial)."""
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="package")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A broker for the package's lab."""
    server = Mosquitto(tmp_path_factory.mktemp("web-mosquitto"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="package")
def lab_database() -> str:
    """The influxd database the lab's gateway writes to."""
    return f"web_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="package")
def lab(
    tmp_path_factory: pytest.TempPathFactory, broker: Mosquitto, influxd: Influxd, lab_database: str
) -> Iterator[Lab]:
    """The running lab (started once for the package), with the standard Z10-01 registered and
    evaluated every two seconds."""
    store = {
        "kind": "influxdb_v1",
        "url": influxd.url,
        "database": lab_database,
        "create_database": True,
    }
    running = Lab(tmp_path_factory.mktemp("web-lab"), broker.port, store, standards=LAB_STANDARDS)
    running.start()
    running.register_standard()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def corrected_channel(lab: Lab) -> dict[str, object]:
    """The Zener's temperature channel corrected by a test-made certificate."""
    admin = {"Authorization": f"Bearer {ROLE_TOKENS['admin']}"}
    due = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=90)
    data = prt_dcc("ZENER-T-2026", ErrorCurve(), serial=CORRECTED[0], due=due)
    with httpx.Client(base_url=lab.api_url, headers=admin, timeout=60) as http:
        answer = http.post(
            "/api/v1/instruments/certificates",
            content=data,
            headers={"Content-Type": "application/xml"},
        )
        assert answer.status_code == 201, answer.text
        certificate = answer.json()
        url = (
            f"/api/v1/instruments/{SITE}/{AGENT}/{CORRECTED[0]}/channels/{CORRECTED[1]}/calibration"
        )
        answer = http.put(url, json={"certificate_id": certificate["id"]})
        assert answer.status_code == 200, answer.text
        history = f"/api/v1/channels/{SITE}/{AGENT}/{CORRECTED[0]}/{CORRECTED[1]}/history"
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


def bearer(role: str) -> dict[str, str]:
    """The Authorization header of a role's token."""
    return {"Authorization": f"Bearer {ROLE_TOKENS[role]}"}


# -- the browser (Debian's chromium driven by Playwright; it never downloads a browser) ----------


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    """Playwright's driver, for one test module."""
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Headless chromium."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/install --test installs Debian's chromium")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS
    )
    yield launched
    launched.close()


@contextlib.contextmanager
def guarded_context(browser: Browser, gateway_url: str) -> Iterator[BrowserContext]:
    """A fresh browser profile (English, Hanoi time) that refuses every request off the gateway
    and fails the test on any script error in its pages."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    fresh = browser.new_context(
        locale="en-GB", timezone_id="Asia/Ho_Chi_Minh", viewport={"width": 1400, "height": 1000}
    )
    outside: list[str] = []
    gateway = urlsplit(gateway_url).netloc

    def only_the_gateway(route: Route) -> None:
        target = urlsplit(route.request.url)
        if target.scheme in ("data", "blob") or target.netloc == gateway:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    fresh.route("**/*", only_the_gateway)
    errors: list[str] = []
    fresh.on("weberror", lambda error: errors.append(str(error.error)))
    yield fresh
    fresh.close()
    assert outside == [], f"the dashboard reached outside the gateway: {outside}"
    assert errors == [], f"script errors in the page: {errors}"


def open_as(context: BrowserContext, gateway_url: str, path: str, role: str) -> Page:
    """Open a dashboard page with a role's token."""
    page = context.new_page()
    separator = "&" if "?" in path else "?"
    page.goto(f"{gateway_url}/ui/{path}{separator}token={ROLE_TOKENS[role]}")
    return page


def shoot(page: Page, name: str) -> None:
    """A full-page screenshot in artifacts/web/ for a person to look at (written here:
    Playwright's own file writing would leave a thread of its loop running)."""
    (ARTIFACTS / name).write_bytes(page.screenshot(full_page=True))
