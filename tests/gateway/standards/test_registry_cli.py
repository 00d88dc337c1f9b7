"""The registry through ``etalon standards add|list|show|export``: certificates kept by hash and
verified on show, traceability chains through registered standards, every change audited."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.standards.models import Tolerance
from tests.gateway.standards.conftest import CASES
from tests.support.processes import child_env, etalon_command

PDF = CASES / "files" / "vmi-2025-0042.pdf"


def audit(tmp_path: Path) -> list[tuple[str, str, str, dict[str, object]]]:
    db = sqlite3.connect(tmp_path / "records.db")
    try:
        rows = db.execute("SELECT actor, action, subject, details FROM audit_log ORDER BY id")
        return [(a, b, c, json.loads(d)) for a, b, c, d in rows]
    finally:
        db.close()


def test_add_a_standard_and_a_certificate_then_show_verifies_the_file(
    standards: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert standards(
        "add", "standard", "--id", "Z10-01", "--kind", "dc_voltage", "--nominal", "10",
        "--unit", "V", "--owner-lab", "VMI Electrical", "--manufacturer", "Fluke", "--model",
        "732B", "--tolerance", "±1 µV/V + 1 µV/V/year", "--channel",
        "bench-1/dmm-1/dcv [V] scale=10", "--actor", "nguyen.van.a",
    ) == 0  # fmt: skip
    assert standards(
        "add", "certificate", "Z10-01", "--number", "VMI-2025-0042", "--issuer", "VMI",
        "--date", "2025-03-10", "--due", "2026-03-10", "--value", "10.0000081", "--U", "4e-7",
        "--k", "2", "--temperature-c", "23", "--file", str(PDF),
        "--traceable-to", "VMI | JVS-1 | | national | Josephson voltage standard",
    ) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "standard Z10-01 registered" in out and "certificate VMI-2025-0042 registered" in out
    assert standards("show", "Z10-01") == 0
    shown = capsys.readouterr().out
    assert "tolerance ±1.0 ppm + 1.0 ppm/year around certificate" in shown
    assert "lab-1:bench-1/dmm-1/dcv [V] (value = 10.0 × reading + 0.0)" in shown
    assert "value 10.0000081 V, U = 4e-07 V (k = 2)" in shown
    assert "hash OK" in shown
    assert "complete, up to national standards" in shown
    assert "VMI: JVS-1 (national standard)" in shown
    entries = audit(tmp_path)
    assert [(actor, action) for actor, action, _, _ in entries][:2] == [
        ("nguyen.van.a", "standard.add"),
        (entries[1][0], "certificate.add"),
    ]
    assert entries[1][0].startswith("cli")
    after = entries[1][3]["after"]
    assert isinstance(after, dict) and after["file"]["name"] == "vmi-2025-0042.pdf"

    # A kept file that changes on disk is reported, and show fails.
    kept = next((tmp_path / "certificates").glob("*.pdf"))
    kept.write_bytes(kept.read_bytes() + b"tampered")
    assert standards("show", "Z10-01") == 1
    captured = capsys.readouterr()
    assert "HASH MISMATCH: the file changed" in captured.out
    assert "file vmi-2025-0042.pdf is mismatch" in captured.err
    kept.unlink()
    assert standards("show", "Z10-01") == 1
    assert "FILE MISSING" in capsys.readouterr().out


def test_changes_that_clash_are_refused(
    seeded: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--kind", "dc_voltage", "--nominal", "10", "--unit", "V", "--owner-lab", "VMI"]
    assert seeded("add", "standard", "--id", "Z10-01", *base) == 1
    assert "standard Z10-01 is already registered" in capsys.readouterr().err
    certificate = ["--issuer", "VMI", "--date", "2026-03-10", "--value", "10.0000085", "--U",
                   "4e-7", "--k", "2"]  # fmt: skip
    assert seeded("add", "certificate", "Z10-01", "--number", "VMI-2025-0042", *certificate) == 1
    assert "certificate VMI-2025-0042 of VMI is already registered" in capsys.readouterr().err
    assert seeded("add", "certificate", "Z99", "--number", "VMI-X", *certificate) == 1
    assert "no standard Z99" in capsys.readouterr().err
    assert seeded("add", "certificate", "Z10-01", "--number", "VMI-Y", *certificate, "--file",
                  str(CASES / "files" / "notes.txt")) == 1  # fmt: skip
    assert "must be a PDF or a DCC XML document" in capsys.readouterr().err
    assert seeded("add", "standard", "--id", "Z10-09", *base, "--tolerance", "2 ppm maybe") == 1
    assert "tolerance" in capsys.readouterr().err


def test_traceability_runs_through_registered_standards(
    seeded: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    """A working standard calibrated in-house against Z10-01 is traceable through Z10-01's own
    latest certificate up to the national standard; a chain that stops short is called open."""
    assert seeded(
        "add", "standard", "--id", "W10-07", "--kind", "dc_voltage", "--nominal", "10",
        "--unit", "V", "--owner-lab", "VMI Electrical",
    ) == 0  # fmt: skip
    certificate = ["--date", "2026-01-05", "--value", "10.000012", "--U", "1e-6", "--k", "2"]
    assert seeded(
        "add", "certificate", "W10-07", "--number", "INT-2026-001", "--issuer", "VMI Electrical",
        *certificate, "--traceable-to", "VMI Electrical | Z10-01",
    ) == 0  # fmt: skip
    capsys.readouterr()
    assert seeded("show", "W10-07", "--json") == 0
    chain = json.loads(capsys.readouterr().out)["traceability"]
    assert chain["complete"] is True
    through = chain["root"]["traceable_to"][0]
    assert (through["standard"], through["registered"], through["certificate"]) == (
        "Z10-01",
        True,
        "VMI-2025-0042",
    )
    assert through["traceable_to"][0]["national"] is True
    assert seeded(
        "add", "certificate", "R1K-01", "--number", "ACME-17", "--issuer", "ACME Cal",
        "--date", "2026-01-05", "--value", "1000.0021", "--U", "1e-3", "--k", "2",
        "--traceable-to", "ACME Cal | R-REF-2 | AC-2025-3",
    ) == 0  # fmt: skip
    capsys.readouterr()
    assert seeded("show", "R1K-01") == 0
    assert "INCOMPLETE, open ends: ACME Cal: R-REF-2" in capsys.readouterr().out


def test_list_shows_due_states(
    seeded: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert seeded("list") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["ID", "KIND", "NOMINAL", "OWNER", "CERTS", "CALIBRATED", "DUE",
                                "STATE", "STATUS"]  # fmt: skip
    assert lines[1].startswith("R1K-01") and "no certificate" in lines[1]
    assert lines[2].startswith("Z10-01") and "2025-03-10" in lines[2] and "2026-03-10" in lines[2]
    assert seeded("list", "--json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(s["id"], s["certificates"]) for s in listed] == [("R1K-01", 0), ("Z10-01", 1)]


def test_list_and_show_in_vietnamese(
    seeded: Callable[..., int], gateway_config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli import main

    assert main(["--lang", "vi", "standards", "list", "-c", str(gateway_config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:3] == ["MÃ", "LOẠI", "DANH"]
    assert "chưa có giấy chứng nhận" in lines[1]
    assert main(["--lang", "vi", "standards", "show", "Z10-01", "-c", str(gateway_config)]) == 0
    shown = capsys.readouterr().out
    assert "mã băm khớp" in shown and "đầy đủ, đến chuẩn quốc gia" in shown


def test_the_command_runs_as_its_own_process(gateway_config: Path, tmp_path: Path) -> None:
    """From the console, options before or after the command word, and a config problem named
    with its file and line."""
    done = subprocess.run(
        etalon_command("standards", "-c", str(gateway_config), "import", str(CASES / "base.yaml")),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("site: lab-1\nrecords: {path: 3}\nstandards: {period_s: 0}\n")
    refused = subprocess.run(
        etalon_command("standards", "list", "-c", str(bad)),
        capture_output=True, text=True, env=child_env(), timeout=60,
    )  # fmt: skip
    assert refused.returncode == 1
    assert f"{bad}:3: standards.period_s: Input should be greater than or equal to 1" in (
        refused.stderr
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("±2 ppm", {"half_width": 2.0, "mode": "ppm"}),
        ("+-0.01 %", {"half_width": 1e-4, "mode": "relative"}),
        ("±5e-6 V", {"half_width": 5e-6, "unit": "V"}),
        ("0.5 µΩ/Ω", {"half_width": 0.5, "mode": "ppm"}),
        ("±1 uV/V + 0.5 uV/V/year", {"half_width": 1.0, "mode": "ppm", "per_year": 0.5,
                                     "around": "certificate"}),
        ("1 ppm + 2 ppm per year", {"half_width": 1.0, "mode": "ppm", "per_year": 2.0,
                                    "around": "certificate"}),
    ],
)  # fmt: skip
def test_tolerance_compact_form(text: str, expected: dict[str, object]) -> None:
    tolerance = Tolerance.model_validate(text)
    assert tolerance.model_dump(exclude_defaults=True) == expected
    assert Tolerance.model_validate(tolerance.compact()) == tolerance


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("about 2 ppm", "is not a tolerance"),
        ("±1 ppm + 2 V/year", "same kind of unit"),
        ("±1 ppm + 2 ppm", "growth per year"),
        ("±0 ppm", "greater than 0"),
    ],
)
def test_tolerance_mistakes(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        Tolerance.model_validate(text)
