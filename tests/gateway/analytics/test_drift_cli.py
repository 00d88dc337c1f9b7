"""``etalon drift fit|adev|chart`` as a metrologist runs them: a CSV file in, text or JSON out.

The NBS14 10-point phase set (NIST SP 1065, pp. 107-108; data/nbs14_10point.csv) checks the
``adev`` command end to end against its published deviations.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gateway.analytics import (
    ControlReport,
    DriftReport,
    StabilityResult,
    allan_deviation,
    control_report,
    fit_drift,
)
from gateway.analytics.cli import add_drift_parser, drift_main
from gateway.analytics.timebase import datetime_to_days, parse_datetime

DATA = Path(__file__).parent / "data"
SRC = Path(__file__).parents[3] / "src"

HISTORY = """date,value,u
2020-01-15,10.0000120,0.3e-6
2021-01-20,10.0000131,0.3e-6
2022-01-18,10.0000139,0.3e-6

2023-01-16,10.0000152,0.3e-6
2024-01-22,10.0000160,0.3e-6
"""


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.csv"
    path.write_text(HISTORY)
    return path


def main(argv: list[str]) -> int:
    """``etalon ARGV`` with only the drift subcommand (the process test runs the real one)."""
    parser = argparse.ArgumentParser(prog="etalon")
    add_drift_parser(parser.add_subparsers(dest="command", required=True))
    return drift_main(parser.parse_args(argv))


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = main(argv)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_fit_json_is_the_library_result(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        ["drift", "fit", "--csv", str(history), "--x", "date", "--y", "value", "--u", "u",
         "--at", "2024-07-01", "--tolerance", "±5e-6", "--json"],
        capsys,
    )  # fmt: skip
    assert status == 0
    report = DriftReport.model_validate_json(out)
    days = [datetime_to_days(parse_datetime(d)) for d in
            ["2020-01-15", "2021-01-20", "2022-01-18", "2023-01-16", "2024-01-22"]]  # fmt: skip
    expected = fit_drift(
        days,
        [10.0000120, 10.0000131, 10.0000139, 10.0000152, 10.0000160],
        [0.3e-6] * 5,
        x_kind="date",
    )
    assert report.fit == expected
    assert report.prediction.date == "2024-07-01T00:00:00Z"
    assert report.tolerance is not None
    assert report.tolerance.upper - report.tolerance.lower == pytest.approx(10e-6)
    assert report.tolerance.crossing_date is not None
    assert json.loads(out)["format"] == "etalon.drift.fit/1"


def test_fit_text_report(history: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        ["drift", "fit", "--csv", str(history), "--x", "date", "--y", "value", "--u", "u",
         "--model", "linear", "--at", "2024-07-01", "--tolerance", "+-5e-6"],
        capsys,
    )  # fmt: skip
    assert status == 0
    assert out.startswith("Drift fit: linear, weighted least squares (birge), 5 points")
    assert "x0 = 2020-01-15T00:00:00Z" in out
    assert "per year" in out
    assert "Prediction at 2024-07-01T00:00:00Z (extrapolated):" in out
    assert "Value in use: 10.0000165" in out
    assert "reaches the upper limit at 2027-" in out


def test_fit_numeric_x_defaults_to_the_last_x(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "gum.csv"
    path.write_text((DATA / "gum_h3_thermometer.csv").read_text())
    status, out, _ = run(
        ["drift", "fit", "--csv", str(path), "--x", "thermometer_reading_degC",
         "--y", "correction_degC", "--model", "linear", "--x0", "20", "--json"],
        capsys,
    )  # fmt: skip
    assert status == 0
    report = DriftReport.model_validate_json(out)
    assert report.prediction.x == 26.511
    assert report.fit.coefficients[0].value == pytest.approx(-0.1712, abs=5e-5)
    status, out, _ = run(
        ["drift", "fit", "--csv", str(path), "--x", "thermometer_reading_degC",
         "--y", "correction_degC", "--model", "linear", "--x0", "20", "--at", "30", "--json"],
        capsys,
    )  # fmt: skip
    assert DriftReport.model_validate_json(out).prediction.value == pytest.approx(-0.1494, abs=5e-5)


def test_adev_reproduces_nbs14_through_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = str(DATA / "nbs14_10point.csv")
    expected = {"": 85.95287, "--modified": 74.78849, "--non-overlapping": 115.8082}
    for flag, deviation_at_2 in expected.items():
        argv = ["drift", "adev", "--csv", csv_path, "--y", "phase", "--rate", "1", "--phase"]
        status, out, _ = run([*argv, *([flag] if flag else []), "--json"], capsys)
        assert status == 0
        result = StabilityResult.model_validate_json(out)
        assert result.points[1].tau == 2.0
        assert result.points[1].deviation == pytest.approx(deviation_at_2, rel=1e-6)


def test_adev_text_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = np.random.default_rng(0).normal(10.0, 1e-7, 3000)
    path = tmp_path / "zener.csv"
    path.write_text("volts\n" + "".join(f"{v:.10f}\n" for v in values))
    status, out, _ = run(
        ["drift", "adev", "--csv", str(path), "--y", "volts", "--rate", "0.5"], capsys
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("Overlapping Allan deviation, frequency data, 3000 values at 0.5 Hz")
    reference = allan_deviation(np.round(values, 10), 0.5)
    assert len(lines) == 2 + len(reference.points)
    assert lines[2].split()[:2] == ["2", "1"]  # tau = 2 s at m = 1


def test_chart_prints_each_violation_with_its_rule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    quiet = [-0.5, 0.5, 1.5, 0.3, -0.3, -1.5]
    series = quiet * 5 + [6.0] + quiet * 2 + [0.5, 0.6, 0.2, 0.4, 0.7, 0.3, 0.5, 0.8, 0.2, 0.6]
    path = tmp_path / "check.csv"
    path.write_text("run,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(series)))
    argv = ["drift", "chart", "--csv", str(path), "--y", "value", "--baseline", "30"]
    status, out, _ = run([*argv, "--json"], capsys)
    assert status == 0
    report = ControlReport.model_validate_json(out)
    assert report == control_report(series, 30)
    assert {(v.rule, v.index) for v in report.violations} >= {(1, 30)}
    status, out, _ = run(argv, capsys)
    assert status == 0
    violation_lines = [line for line in out.splitlines() if ": rule " in line]
    assert len(violation_lines) == len(report.violations)
    for line, violation in zip(violation_lines, report.violations, strict=True):
        assert line.strip().startswith(f"point {violation.index + 1} (line {violation.index + 2})")
        assert f"rule {violation.rule}: {violation.name}" in line
    only_rule_1 = run([*argv, "--rules", "1", "--json"], capsys)[1]
    assert {v.rule for v in ControlReport.model_validate_json(only_rule_1).violations} == {1}


@pytest.mark.parametrize(
    ("content", "argv", "message"),
    [
        ("date,value\n", ["--x", "date", "--y", "value"], "no data rows"),
        ("", ["--x", "date", "--y", "value"], "the file is empty"),
        ("date,value\n2020-01-01,1\n", ["--x", "date", "--y", "volts"], "no column 'volts'"),
        ("x,y\n1,2\n2,abc\n3,4\n", ["--x", "x", "--y", "y"], ":3: column 'y': 'abc' is not a"),
        ("x,y\n1,2\n2,\n3,4\n", ["--x", "x", "--y", "y"], ":3: column 'y' is empty"),
        ("x,y\n2020-01-01,2\n2020-13-01,3\n2021-01-01,4\n", ["--x", "x", "--y", "y"],
         ":3: column 'x': '2020-13-01' is not an ISO 8601 date"),
        ("x,y\n1,2\n2,3\n", ["--x", "x", "--y", "y", "--model", "linear"], "at least 3 points"),
        ("x,y\n1,2\n2,3\n3,5\n", ["--x", "x", "--y", "y", "--at", "soon"], "--at 'soon' is not"),
    ],
)  # fmt: skip
def test_fit_errors_name_the_file_line_and_reason(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    content: str,
    argv: list[str],
    message: str,
) -> None:
    path = tmp_path / "data.csv"
    path.write_text(content)
    status, out, err = run(["drift", "fit", "--csv", str(path), *argv], capsys)
    assert status == 1
    assert out == ""
    assert err.startswith("etalon drift fit: error: ")
    assert message in err


def test_missing_file_is_a_data_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(
        ["drift", "chart", "--csv", str(tmp_path / "nope.csv"), "--y", "v", "--baseline", "5"],
        capsys,
    )
    assert status == 1
    assert "nope.csv" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["drift", "fit", "--csv", "a.csv", "--x", "x", "--y", "y", "--tolerance", "±-1"],
        ["drift", "fit", "--csv", "a.csv", "--x", "x", "--y", "y", "--model", "cubic"],
        ["drift", "chart", "--csv", "a.csv", "--y", "y", "--baseline", "5", "--rules", "0-9"],
        ["drift", "adev", "--csv", "a.csv", "--y", "y"],
        ["drift", "adev", "--csv", "a.csv", "--y", "y", "--rate", "1", "--modified",
         "--non-overlapping"],
    ],
)  # fmt: skip
def test_bad_command_lines_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
    assert stopped.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_the_etalon_command_runs_as_a_process(history: Path) -> None:
    """The real ``etalon`` entry point (app.launch) dispatches ``drift``."""
    environment = {**os.environ, "PYTHONPATH": str(SRC)}
    completed = subprocess.run(
        [sys.executable, "-m", "app.launch", "drift", "fit", "--csv", str(history),
         "--x", "date", "--y", "value", "--json"],
        capture_output=True, text=True, env=environment, timeout=60, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stderr
    assert DriftReport.model_validate_json(completed.stdout).fit.n == 5


def test_reports_in_vietnamese_and_json_the_same_in_both_languages(
    history: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from app.cli import main as etalon

    quiet = [-0.5, 0.5, 1.5, 0.3, -0.3, -1.5]
    check = tmp_path / "check.csv"
    check.write_text("run,value\n" + "".join(f"{i},{v}\n" for i, v in enumerate(quiet * 5 + [6.0])))
    zener = tmp_path / "zener.csv"
    values = np.random.default_rng(0).normal(10.0, 1e-7, 300)
    zener.write_text("volts\n" + "".join(f"{v:.10f}\n" for v in values))
    commands = {
        "fit": ["fit", "--csv", str(history), "--x", "date", "--y", "value", "--u", "u",
                "--at", "2024-07-01", "--tolerance", "±5e-6"],
        "adev": ["adev", "--csv", str(zener), "--y", "volts", "--rate", "0.5"],
        "chart": ["chart", "--csv", str(check), "--y", "value", "--baseline", "30"],
    }  # fmt: skip
    monkeypatch.delenv("ETALON_LANG", raising=False)
    monkeypatch.setenv("LANG", "C")
    text: dict[tuple[str, ...], str] = {}
    for name, argv in commands.items():
        for lang in ("en", "vi"):
            assert etalon(["--lang", lang, "drift", *argv]) == 0
            text[name, lang] = capsys.readouterr().out
            assert etalon(["--lang", lang, "drift", *argv, "--json"]) == 0
            text[name, lang, "json"] = capsys.readouterr().out
        assert text[name, "en", "json"] == text[name, "vi", "json"]
        json.loads(text[name, "en", "json"])
    assert text["fit", "en"].startswith("Drift fit: linear, weighted least squares")
    fit = text["fit", "vi"]
    assert fit.startswith("Khớp độ trôi: tuyến tính, bình phương tối thiểu có trọng số")
    for label in ("hệ số chặn", "độ dốc", "mỗi năm", "Dự đoán tại 2024-07-01T00:00:00Z",
                  "khoảng tin cậy 95 %", "khoảng dự đoán 95 %", "Giá trị sử dụng: 10.0000165",
                  "chạm giới hạn trên tại 2027-", "ngày sau"):  # fmt: skip
        assert label in fit, label
    adev = text["adev", "vi"].splitlines()
    assert adev[0].startswith("Độ lệch Allan chồng lấp, dữ liệu tần số, 300 giá trị ở 0.5 Hz")
    assert adev[1].split()[-1] == "nhiễu" and "FM trắng" in adev[2]
    chart = text["chart", "vi"]
    assert "Biểu đồ giá trị riêng lẻ, 31 điểm; giới hạn tính từ 30 điểm đầu:" in chart
    assert "Vi phạm quy tắc Nelson: 1" in chart
    assert "  điểm 31 (dòng 32): quy tắc 1: một điểm nằm ngoài 3 sigma so với đường tâm" in chart
    # ETALON_LANG chooses the language when --lang is not given.
    monkeypatch.setenv("ETALON_LANG", "vi")
    assert etalon(["drift", *commands["chart"]]) == 0
    assert capsys.readouterr().out == chart
