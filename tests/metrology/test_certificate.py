"""The calibration record (metrology.certificate): canonical bytes and hash, hostile input refused
with the field and the reason, the HTML report (both languages, every text escaped, no script),
the DCC made from it (valid against the XSD, values exactly the rounded ones)."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import ValidationError

from metrology._common import MetrologyError
from metrology.certificate.dcc import build_dcc, record_to_dcc
from metrology.certificate.plot import plot_svg
from metrology.certificate.record import (
    CalibrationRecord,
    canonical_bytes,
    load_record,
    record_sha256,
)
from metrology.certificate.report import render_html
from metrology.dcc import parse, validate
from tests.support.calibration_record import point, sample_record


def data_of(record: CalibrationRecord) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(canonical_bytes(record))
    return result


def test_canonical_bytes_are_stable_and_the_hash_survives_a_round_trip() -> None:
    record = sample_record()
    text = canonical_bytes(record)
    assert text == canonical_bytes(load_record(text))
    assert record_sha256(load_record(text)) == record_sha256(record)
    # sorted keys, no blanks, UTF-8 as itself, infinite degrees of freedom as null
    assert b'": ' not in text and "Nguyễn".encode() in text
    data = data_of(record)
    assert list(data) == sorted(data)
    rows = data["points"][0]["budget"]["contributions"]
    assert rows[1]["dof"] is None and rows[0]["dof"] == 7
    reparsed = load_record(json.dumps(data, indent=2))  # whitespace does not matter
    assert record_sha256(reparsed) == record_sha256(record)
    changed = data | {"operator": "Someone else"}
    assert record_sha256(load_record(changed)) != record_sha256(record)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d.update(operator="An\x1b[31m"), "control character"),
        (lambda d: d.update(decision="pass"), "does not follow from the points"),
        (lambda d: d["points"][1].update(index=5), "numbered 0, 1, 2"),
        (lambda d: d["points"][0].update(budget=None), "is ok but has no budget"),
        (lambda d: d["points"][3].update(reason=None), "failed without a reason"),
        (lambda d: d.update(surprise=1), "Extra inputs are not permitted"),
        (lambda d: d.update(run="../etc/passwd"), "String should match pattern"),
        (lambda d: d["uut"]["declared"].update({"x" * 200: "y"}), "at most 128 characters"),
        (lambda d: d.update(points=[]), "at least 1 item"),
        (lambda d: d.update(finished_ns=0), "finished before it started"),
    ],
)
def test_a_hostile_record_is_refused_with_the_reason(change: Any, reason: str) -> None:
    data = data_of(sample_record())
    change(data)
    with pytest.raises((ValidationError, MetrologyError), match=reason):
        load_record(json.dumps(data))


def test_non_finite_numbers_and_non_json_are_refused() -> None:
    text = canonical_bytes(sample_record()).decode()
    for bad in ("NaN", "Infinity", "-Infinity"):
        tampered = text.replace('"error":', f'"error":{bad},"x":', 1)
        with pytest.raises(MetrologyError, match=f"{bad} is not a JSON number"):
            load_record(tampered)
    with pytest.raises(MetrologyError, match="not JSON"):
        load_record(b"\xff\xfe")
    with pytest.raises(MetrologyError, match="a record is a JSON object"):
        load_record("[1, 2]")
    with pytest.raises(MetrologyError, match="nested too deeply"):
        load_record("[" * 100_000 + "]" * 100_000)


def test_the_report_in_both_languages_escapes_everything_and_runs_no_script() -> None:
    hostile = "<script>alert(1)</script>&<b>"
    record = sample_record(operator=hostile, notes=(f"note {hostile}",))
    for lang, title, decision in (("en", "Calibration report", "Incomplete"),
                                  ("vi", "Báo cáo hiệu chuẩn", "Chưa đầy đủ")):  # fmt: skip
        page = render_html(record, lang, record_sha256(record))  # type: ignore[arg-type]
        assert "<script" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert title in page and decision in page
        assert page.count('class="point"') == 3  # the failed point is not drawn
        assert record_sha256(record) in page
    vietnamese = render_html(record, "vi")
    assert "Độ lặp lại của số chỉ (loại A)" in vietnamese
    assert "không đo được: the reference did not settle within 30 s" in vietnamese


def test_the_plot_draws_a_single_point_and_no_point() -> None:
    single = sample_record(points=(point(0, 10.0, 2e-4),))
    svg = plot_svg(single)
    assert svg.count('class="point"') == 1 and "tolerance-band" in svg
    failed = sample_record(points=(point(0, 10.0, 0.0, failed="no"),))
    assert 'class="point"' not in plot_svg(failed)
    assert math.isfinite(len(render_html(failed)))


def test_the_dcc_validates_and_carries_the_rounded_results() -> None:
    record = sample_record()
    document = build_dcc(record, record_sha256(record))
    validate(document)
    certificate = parse(document)
    assert certificate.unique_identifier == record.run
    assert certificate.item.serial_number == "MY12345"
    assert certificate.laboratory.code == "VILAS 000"
    errors = [p for p in certificate.points() if "basic_measurementError" in p.ref_types]
    measured = record.ok_points()
    assert len(errors) == len(measured) == 3
    for dcc_point, point_result in zip(errors, measured, strict=True):
        assert point_result.rounded is not None
        assert dcc_point.value.value == str(point_result.rounded.value)
        uncertainty = dcc_point.value.uncertainty
        assert uncertainty is not None
        assert uncertainty.value == str(point_result.rounded.expanded_uncertainty)
        assert uncertainty.coverage_factor == str(point_result.rounded.coverage_factor)
        assert dcc_point.condition("basic_nominalValue") is not None
    texts = [t for r in certificate.measurement_results[0].results for t in r.texts]
    assert any("did not settle" in t.get("en") for t in texts)
    assert record_to_dcc(record).mandatory_languages == ("en", "vi")
