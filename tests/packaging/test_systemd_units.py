"""The service units in packaging/systemd: what they promise (a transient user, a read-only system,
state and config directories, restart policy, the hardening set, devices for the agent), checked
by reading them, by ``systemd-analyze verify`` and by its offline security assessment."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = REPO / "packaging" / "systemd"
ETALON = "/opt/etalon/bin/etalon"
NO_SYSTEMD = shutil.which("systemd-analyze") is None
SKIP_REASON = "systemd-analyze is not installed (Debian package systemd; scripts/install --test)"


def settings(unit: str) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, by key (a key may appear several times)."""
    out: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";", "[")):
            continue
        key, _, value = line.partition("=")
        out.setdefault(key, []).append(value)
    return out


def verifiable_copy(unit: str, folder: Path) -> Path:
    """The unit with ExecStart pointing at this checkout's etalon: `verify` checks that the
    program exists, and /opt/etalon is where an installation puts it, not where tests run."""
    etalon = Path(sys.executable).parent / "etalon"
    text = (UNITS / unit).read_text(encoding="utf-8")
    assert f"ExecStart={ETALON} " in text
    copy = folder / unit
    copy.write_text(text.replace(ETALON, str(etalon)), encoding="utf-8")
    return copy


HARDENING = {
    "DynamicUser": "yes",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "AmbientCapabilities": "",
    "ProtectClock": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "LockPersonality": "yes",
    "SystemCallArchitectures": "native",
    "UMask": "0077",
    "Restart": "on-failure",
    "RestartSec": "5s",
    "RestartPreventExitStatus": "1",
    "ConfigurationDirectory": "etalon",
    "Type": "exec",
}


@pytest.mark.parametrize(
    ("unit", "role"), [("etalon-agent.service", "agent"), ("etalon-gateway.service", "gateway")]
)
def test_a_unit_promises_what_docs_install_says(unit: str, role: str) -> None:
    found = settings(unit)
    for key, value in HARDENING.items():
        assert found.get(key) == [value], (key, found.get(key))
    assert found["ExecStart"] == [f"{ETALON} {role} -c /etc/etalon/{role}.yaml"]
    assert found["StateDirectory"] == [f"etalon/{role}"]
    assert found["EnvironmentFile"] == [f"-/etc/etalon/{role}.env"]
    families = found["RestrictAddressFamilies"][0].split()
    assert {"AF_INET", "AF_INET6", "AF_UNIX"} <= set(families)
    assert "time-sync.target" in found["After"][0]
    assert found["WantedBy"] == ["multi-user.target"]


def test_the_agent_may_open_serial_and_usb_instruments_and_nothing_else() -> None:
    agent = settings("etalon-agent.service")
    assert agent["SupplementaryGroups"] == ["dialout plugdev"]
    assert agent["DevicePolicy"] == ["closed"]
    allowed = {entry.split()[0] for entry in agent["DeviceAllow"]}
    assert {"char-ttyUSB", "char-ttyACM", "char-ttyS", "char-usb_device", "char-usb"} <= allowed
    assert "AF_NETLINK" in agent["RestrictAddressFamilies"][0]  # libusb's hot-plug monitor
    assert "PrivateDevices" not in agent
    gateway = settings("etalon-gateway.service")
    assert gateway["PrivateDevices"] == ["yes"]
    assert "SupplementaryGroups" not in gateway and "DeviceAllow" not in gateway


@pytest.mark.skipif(NO_SYSTEMD, reason=SKIP_REASON)
@pytest.mark.parametrize("unit", ["etalon-agent.service", "etalon-gateway.service"])
def test_systemd_analyze_verify_finds_nothing(unit: str, tmp_path: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(verifiable_copy(unit, tmp_path))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    # verify reports unknown keys and unparsable values on stderr and still exits 0.
    assert not result.stderr.strip(), result.stderr
    assert not result.stdout.strip(), result.stdout


@pytest.mark.skipif(NO_SYSTEMD, reason=SKIP_REASON)
def test_a_mistake_in_a_unit_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a misspelt key and a bad value are reported."""
    copy = verifiable_copy("etalon-agent.service", tmp_path)
    text = copy.read_text(encoding="utf-8")
    copy.write_text(
        text.replace("Restart=on-failure", "Restart=sometimes").replace(
            "ProtectHome=yes", "ProtectHome=yes\nProtectHomes=yes"
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        ["systemd-analyze", "verify", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert "Failed to parse service restart specifier" in result.stderr
    assert "Unknown key 'ProtectHomes'" in result.stderr


def _offline_security_supported() -> bool:
    if NO_SYSTEMD:
        return False
    usage = subprocess.run(
        ["systemd-analyze", "security", "--help"], capture_output=True, text=True, timeout=60
    )
    return "--offline" in usage.stdout


@pytest.mark.skipif(
    not _offline_security_supported(),
    reason="systemd-analyze security --offline needs systemd ≥ 250",
)
@pytest.mark.parametrize("unit", ["etalon-agent.service", "etalon-gateway.service"])
def test_the_exposure_level_stays_ok(unit: str, tmp_path: Path) -> None:
    """systemd's own assessment: 0 is fully locked down, 10 unprotected; ≤ 2 is 'OK'. The agent
    scores 1.5 (it needs devices), the gateway 1.1."""
    result = subprocess.run(
        [
            "systemd-analyze",
            "security",
            "--offline=true",
            "--threshold=20",
            str(verifiable_copy(unit, tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overall exposure level" in result.stdout
