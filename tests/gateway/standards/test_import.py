"""``etalon standards import``: every kind of mistake names its file, line and field, and nothing
is imported; good files import, re-import unchanged, round-trip through export."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from gateway.standards.models import CertificateSpec
from tests.gateway.standards.conftest import CASES, snapshot

GOLDEN = sorted(p.stem for p in CASES.glob("*.expected"))


@pytest.mark.parametrize("case", GOLDEN)
def test_a_bad_file_names_line_and_field_and_imports_nothing(
    case: str, seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = next(p for p in CASES.glob(f"{case}.*") if p.suffix != ".expected")
    before = snapshot(tmp_path)
    assert seeded("import", str(path)) == 1
    err = capsys.readouterr().err
    assert f"{path}: nothing imported" in err
    for expected in (CASES / f"{case}.expected").read_text(encoding="utf-8").splitlines():
        assert expected.format(file=path, dir=CASES) in err, err
    assert snapshot(tmp_path) == before


def test_the_base_file_imports_with_its_certificate_file_and_audit(
    seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = snapshot(tmp_path)
    pdf = (CASES / "files" / "vmi-2025-0042.pdf").read_bytes()
    import hashlib

    digest = hashlib.sha256(pdf).hexdigest()
    assert state["files"] == [(f"{digest}.pdf", digest)]
    audit = [row for row in state["audit_log"] if "standard" in row]  # type: ignore[attr-defined]
    actions = sorted(
        a
        for a in ("standard.add", "certificate.add", "standards.import")
        for row in audit
        if f"'{a}'" in row
    )
    assert actions == ["certificate.add", "standard.add", "standard.add", "standards.import"]
    # Importing the same file again changes nothing and says so.
    assert seeded("import", str(CASES / "base.yaml")) == 0
    assert (
        "0 standard(s), 0 certificate(s); updated 0 standard(s), 0 certificate(s); 3 unchanged"
        in capsys.readouterr().out
    )
    assert snapshot(tmp_path)["standards"] == state["standards"]


def test_update_changes_a_registered_standard_with_before_and_after(
    seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES / "registered_differs.yaml"
    assert seeded("import", str(case), "--dry-run", "--update") == 0
    assert "would import" in capsys.readouterr().out
    assert seeded("show", "R1K-01") == 0
    assert "nominal 1000 Ω" in capsys.readouterr().out
    assert seeded("import", str(case), "--update", "--actor", "tran.thi.b") == 0
    assert "updated 1 standard(s)" in capsys.readouterr().out
    assert seeded("show", "R1K-01") == 0
    assert "nominal 10000 Ω" in capsys.readouterr().out
    import sqlite3

    db = sqlite3.connect(tmp_path / "records.db")
    actor, details = db.execute(
        "SELECT actor, details FROM audit_log WHERE action='standard.update'"
    ).fetchone()
    db.close()
    change = json.loads(details)
    assert actor == "tran.thi.b"
    assert (change["before"]["nominal"], change["after"]["nominal"]) == (1000.0, 10000.0)


def test_export_json_imports_into_an_empty_registry_identically(
    seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exported = tmp_path / "export.json"
    assert seeded("export", "-o", str(exported)) == 0
    document = json.loads(exported.read_text())
    assert document["format"] == "etalon.standards/1"
    assert [s["id"] for s in document["standards"]] == ["R1K-01", "Z10-01"]
    other = tmp_path / "other"
    config = tmp_path / "other.yaml"
    config.write_text(
        f"site: lab-1\nspool: {{path: {other}/s.db}}\nstore: {{kind: sqlite, path: {other}/r.db}}\n"
        f"records: {{path: {other}/records.db}}\n"
    )
    from app.cli import main

    assert main(["standards", "import", "-c", str(config), str(exported)]) == 0
    again = tmp_path / "again.json"
    assert main(["standards", "export", "-c", str(config), "-o", str(again)]) == 0
    first, second = json.loads(exported.read_text()), json.loads(again.read_text())
    first.pop("exported_at"), second.pop("exported_at")
    for document in (first, second):  # the stored copies live in each registry's directory
        for standard in document["standards"]:
            for certificate in standard["certificates"]:
                certificate["file"] = Path(certificate["file"]).name
    assert first == second


def test_export_csv_round_trips(
    seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    standards_csv, certificates_csv = tmp_path / "s.csv", tmp_path / "c.csv"
    assert seeded("export", "--format", "csv", "-o", str(standards_csv)) == 0
    assert (
        seeded("export", "--format", "csv", "--what", "certificates", "-o", str(certificates_csv))
        == 0
    )
    assert standards_csv.read_text().splitlines()[2] == (
        "Z10-01,dc_voltage,10 V Zener reference,10.0,V,Fluke,732B,5480012,VMI Electrical,"
        "±2.0 ppm,,active,lab-1:bench-1/zener-10v/voltage [V],,,,,"
    )
    assert (
        certificates_csv.read_text()
        .splitlines()[1]
        .endswith(",VMI | JVS-1 |  | national | Josephson voltage standard")
    )
    # Re-importing both changes nothing: every row is found unchanged.
    assert seeded("import", str(standards_csv)) == 0
    assert seeded("import", str(certificates_csv)) == 0
    out = capsys.readouterr().out
    assert "2 unchanged" in out and "1 unchanged" in out


def test_a_good_csv_of_certificates(
    seeded: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "certificates.csv"
    xml = CASES / "files" / "vmi-2024-0017.xml"
    good.write_text(
        "standard,number,issuer,calibration_date,due_date,value,expanded_uncertainty,"
        "coverage_factor,temperature_c,humidity_rh,file,traceable_to\n"
        f"Z10-01,VMI-2024-0017,VMI,2024-03-12,2025-03-12,10.0000077,4e-7,2,23.0,45,{xml},"
        "ACME Cal | Z-REF-3 | AC-2023-17 > VMI | JVS-1 | | national\n",
        encoding="utf-8",
    )
    assert seeded("import", str(good)) == 0
    capsys.readouterr()
    assert seeded("show", "Z10-01", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    certificates = shown["standard"]["certificates"]
    assert [c["number"] for c in certificates] == ["VMI-2024-0017", "VMI-2025-0042"]
    assert certificates[0]["file"]["media_type"] == "application/xml"
    assert certificates[0]["file"]["state"] == "ok"
    assert certificates[0]["conditions"] == {
        "temperature_c": 23.0,
        "humidity_rh": 45.0,
        "pressure_hpa": None,
        "notes": None,
    }
    chain = certificates[0]["traceable_to"][0]
    assert (chain["lab"], chain["certificate"], chain["traceable_to"][0]["national"]) == (
        "ACME Cal",
        "AC-2023-17",
        True,
    )


def test_the_shipped_examples_import(
    standards: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    examples = Path(__file__).parents[3] / "config" / "standards"
    assert standards("import", str(examples / "zener-lab.yaml")) == 0
    assert standards("import", str(examples / "certificates.csv")) == 0
    out = capsys.readouterr().out
    assert "imported 2 standard(s), 4 certificate(s)" in out
    assert "imported 0 standard(s), 1 certificate(s)" in out
    assert standards("show", "R1-01") == 0
    shown = capsys.readouterr().out
    assert "(value = 1.0000012 × reading + 0.0) -- ratio to the 1 Ω reference R1-REF" in shown
    assert "complete, up to national standards" in shown


@pytest.mark.parametrize("when", ["0525-06-22", "1899-12-31", "2201-01-01T00:00:00Z"])
def test_a_date_out_of_any_record_s_range_is_refused_with_the_field(when: str) -> None:
    """Found by fuzzing the API: year 525 overflowed the record store's 64-bit timestamps."""
    with pytest.raises(ValidationError) as caught:
        CertificateSpec.model_validate(
            {
                "number": "VMI-1",
                "issuer": "VMI",
                "calibration_date": when,
                "value": 10.0,
                "expanded_uncertainty": 4e-7,
                "coverage_factor": 2,
            }
        )
    (error,) = caught.value.errors()
    assert error["loc"] == ("calibration_date",)
    assert "is not between 1900 and 2200" in error["msg"]


def test_export_csv_neutralises_formulas_and_imports_them_back(
    standards: Callable[..., int], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text a spreadsheet would run gets a leading apostrophe in the CSV export; importing that
    export gives back the text as registered."""
    hostile = '=HYPERLINK("http://evil.example","open")'
    source = tmp_path / "hostile.yaml"
    source.write_text(
        "standards:\n"
        "  - id: Z10-02\n"
        "    kind: dc_voltage\n"
        f"    description: '{hostile}'\n"
        "    nominal: -10\n"
        "    unit: V\n"
        "    owner_lab: '@lab'\n"
        "    manufacturer: '+cmd'\n"
    )
    assert standards("import", str(source)) == 0
    exported = tmp_path / "s.csv"
    assert standards("export", "--format", "csv", "-o", str(exported)) == 0
    import csv
    import io

    row = next(csv.DictReader(io.StringIO(exported.read_text(encoding="utf-8-sig"))))
    assert row["description"] == "'" + hostile
    assert row["owner_lab"] == "'@lab" and row["manufacturer"] == "'+cmd"
    assert row["nominal"] == "-10.0"  # a number stays a number
    capsys.readouterr()
    assert standards("import", str(exported)) == 0
    assert "1 unchanged" in capsys.readouterr().out
