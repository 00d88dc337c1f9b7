"""Corrections travel beside the readings, not in them: the spool entry is the payload as
received plus its corrections by index; the writer reads them back (or takes them from ingest)
and writes what the corrector's dict path gives — corrected value, u, certificate, conformity,
the quality and reason of a marked reading — for every backend's line."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from edge_agent.wire_batches import decode_data
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.corrector import Corrector
from gateway.corrections.instruments import InstrumentCertificate, Link
from gateway.corrections.tables import CalibrationTable, TablePoint
from gateway.ingest.entries import spool_entry
from gateway.records.store import RecordStore
from gateway.tsdb.line_protocol import parse_line
from gateway.tsdb.lines import LineBuilder
from gateway.tsdb.points import ReadingsBatch
from gateway.tsdb.writer import decode_entry

SITE, AGENT = "lab", "bench-1"
T0 = 1_764_000_000_000_000_000
DUE = 1_800_000_000_000_000_000


def corrector(settings: dict[str, Any] | None = None) -> Corrector:
    points = tuple(
        TablePoint(indication=f"{x + 0.02:.4f}", value="0.0200", expanded_uncertainty="0.010",
                   coverage_factor="2")
        for x in range(0, 101, 10)
    )  # fmt: skip
    table = CalibrationTable(
        index=0, name="t", name_vi="t", path="p", kind="error", unit="°C", points=points
    )
    certificate = InstrumentCertificate(
        1, 'PRT "A", 2026', "lab", None, None, "S1", "2026-11-03", "2027-01-01", DUE, (table,),
        {}, None, "0" * 64, 0, 0, "test",
    )  # fmt: skip
    made = Corrector(
        CorrectionsConfig.model_validate(settings or {}), RecordStore.__new__(RecordStore)
    )
    links = [Link(1, SITE, AGENT, "prt", "t", 1, 0, "S1", 0, None, "test", None)]
    made.install(links, [certificate], {(SITE, AGENT, "prt"): "S1"})
    return made


def payload() -> bytes:
    def reading(ts: int, value: Any, **more: Any) -> dict[str, Any]:
        return {"instrument": "prt", "channel": "t", "ts": ts, "value": value, "unit": "°C",
                "quality": "good", **more}  # fmt: skip

    readings = [
        reading(T0, 25.0212),
        reading(T0 + 1, 150.0, reason="noisy"),  # outside the range: marked
        reading(DUE + 1, 20.0),  # after the due date: marked
        reading(T0 + 2, "OVLD"),  # text: never corrected
        {**reading(T0 + 3, 30.0), "channel": "other"},  # not linked
        reading(T0 + 4, None, quality="bad"),
        reading(T0 + 5, 1e300),  # cannot be corrected: marked only
    ]
    return orjson.dumps({"schema": 1, "site": SITE, "agent": AGENT, "seq": 0, "readings": readings})


def fields(lines: list[str]) -> list[dict[str, Any]]:
    return [parse_line(line)[2] for line in lines]


@pytest.mark.parametrize(
    "settings",
    [None, {"channels": [{"channel": "*/*/*/*", "tolerance": {"lower": 0.0, "upper": 100.0},
                          "decision_rule": {"kind": "guarded_acceptance"}}]}],
    ids=["linear", "conformity"],
)  # fmt: skip
def test_spooled_corrections_write_what_the_corrector_gives(settings: Any) -> None:
    data = payload()
    reference = orjson.loads(data)["readings"]
    assert corrector(settings).correct(SITE, AGENT, reference)
    expected = fields(LineBuilder().lines(ReadingsBatch(SITE, AGENT, reference)))
    rows = decode_data(data, SITE, AGENT).rows
    entry, handed, fixes = spool_entry(corrector(settings), SITE, AGENT, data, rows)
    assert entry.startswith(data[:-1]) and len(fixes) == 4
    read_back = decode_entry(entry)
    assert isinstance(read_back, ReadingsBatch)
    assert read_back.readings == handed.readings  # what the store would get either way
    for item in (read_back, handed):
        got = fields(LineBuilder().lines(item))
        assert len(got) == len(expected)
        for mine, theirs in zip(got, expected, strict=True):
            assert mine.keys() == theirs.keys()
            for name, value in theirs.items():
                if name in ("corrected", "u_corrected"):  # the dict path rounds them
                    assert mine[name] == pytest.approx(value, rel=1e-2 if name[0] == "u" else 1e-11)
                else:
                    assert mine[name] == value, name
    marked = read_back.readings[1]
    assert marked["quality"] == "uncertain" and marked["reason"].startswith(
        "noisy; calibration_range"
    )
    assert read_back.readings[0]["certificate"] == 'PRT "A", 2026'
