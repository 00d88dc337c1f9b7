"""`etalon demo` as a user runs it: the whole chain in one process, an exact count at the end."""

from __future__ import annotations

import re
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.support.processes import child_env, etalon_command


def test_demo_speaks_vietnamese_and_runs_without_its_dashboard(tmp_path: Path) -> None:
    # One demo run for both properties (each run costs seconds of CPU): the Vietnamese verdict,
    # and --no-dashboard serving and announcing no dashboard (its line, in either language).
    result = subprocess.run(
        etalon_command(
            "--lang", "vi", "demo", "--duration", "3", "--no-dashboard", "--data-dir", str(tmp_path)
        ),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "mọi giá trị đã đến đúng một lần" in result.stdout
    assert "thiết bị" in result.stdout
    for announced in ("bảng điều khiển (chỉ xem", "read-only, this machine only", "/ui/"):
        assert announced not in result.stdout


def _wait_for_channels(base: str, instruments: set[str], units: set[str]) -> None:
    """Until the gateway's latest readings hold those instruments and units (60 s at most)."""
    deadline = time.monotonic() + 60
    while True:
        latest = httpx.get(f"{base}/api/v1/readings/latest", timeout=10).json()
        seen = {r["instrument"] for r in latest}, {r["unit"] for r in latest}
        if instruments <= seen[0] and units <= seen[1]:
            return
        assert time.monotonic() < deadline, f"no readings yet of {instruments - seen[0]}"
        time.sleep(0.2)


def test_demo_serves_its_dashboard_and_proves_every_reading_arrived_once(tmp_path: Path) -> None:
    # One demo run for the dashboard and for the final count (each run costs about 10 s of CPU);
    # a demo that ends by itself (--duration) is the Vietnamese one's below and the wheel's.
    with subprocess.Popen(
        # --port 0: the default 8080 is shared with every other demo on the machine, and the
        # demo's "8080 unless taken" probe can lose a race with one starting at the same time.
        etalon_command("demo", "--duration", "120", "--port", "0", "--data-dir", str(tmp_path)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env({"ETALON_LANG": "en"}),
    ) as demo:
        assert demo.stdout is not None
        url = ""
        head: list[str] = []
        for line in demo.stdout:
            head.append(line)
            found = re.search(r"dashboard \(read-only, this machine only\): (http://\S+/ui/)", line)
            if found:
                url = found.group(1)
                break
        assert url.startswith("http://127.0.0.1:"), "the demo printed no dashboard address"
        base = url.removesuffix("/ui/")
        assert httpx.get(url, timeout=10).status_code == 200
        standards = {s["id"]: s for s in httpx.get(f"{base}/api/v1/standards", timeout=10).json()}
        # The simulated Zener and resistor, each with three yearly certificates, evaluated.
        assert set(standards) == {"Z10-01", "R10K-01"}
        assert all(s["certificates"] == 3 and s["channels"] == 1 for s in standards.values())
        deadline = time.monotonic() + 30  # the analytics' worker process starts first
        while True:
            drift = httpx.get(f"{base}/api/v1/standards/Z10-01/drift", timeout=10)
            if drift.status_code != 404 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert drift.status_code == 200, drift.text
        # The certificates follow the model: its reference value is within ±2 µV/V of 10 V.
        assert abs(drift.json()["certificates"]["reference"] - 10.0) < 2e-5
        rules = {r["id"] for r in httpx.get(f"{base}/api/v1/alerts/rules", timeout=10).json()}
        assert {"room-temperature", "agents-offline", "calibrations"} <= rules
        # Read-only: nobody acts on anything without a token.
        refused = httpx.post(f"{base}/api/v1/standards/Z10-01/evaluate", timeout=10)
        assert refused.status_code == 401
        # The final screen lists the channels whose readings reached the gateway; a channel
        # reads at multiples of its interval, so a 2 s one's first reading may come 2 s after
        # the start, later than a fast machine is through the checks above (seen once: the
        # screen without resistor-10k). Stopped once every channel checked below has arrived.
        _wait_for_channels(base, {"zener-10v", "resistor-10k", "room-a"}, {"%rh", "Ω"})
        demo.send_signal(signal.SIGINT)  # as a user's Ctrl-C: a clean stop and the count
        out, err = demo.communicate(timeout=60)
    out = "".join(head) + out
    assert demo.returncode == 0, out + err
    assert "etalon demo — site demo-lab" in out
    assert "every reading arrived exactly once" in out
    # The live view's last counts agree with the verdict: as many written as read.
    counts = re.findall(r"^read (\d+) .* written (\d+) ", out, re.MULTILINE)
    assert counts and counts[-1][0] == counts[-1][1], counts
    for channel in ("zener-10v", "resistor-10k", "room-a", "humidity", "%rh", "Ω"):
        assert channel in out
    assert (tmp_path / "readings.db").exists() and (tmp_path / "records.db").exists()
    assert "Traceback" not in err
