"""Calibrated instruments in a real record store: import of an instrument's DCC, links with the
serial and unit checks, replacement and unlinking at an instant, the ledger's record of each,
tampering found by verification; and the corrector on those records (method per channel, the
link in force at each reading's own time, serial changes, what is never corrected).

Every refusal is tested with its reason (hostile input: each new input path)."""

from __future__ import annotations

import datetime as dt
import json
import math
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.i18n import t
from gateway.corrections import instruments
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.corrector import EXPIRED, RANGE, SERIAL, Corrector
from gateway.corrections.instruments import Clash, Missing, Refused
from gateway.corrections.tables import TableError, tables_from_dcc
from gateway.records.bodies import record_identity
from gateway.records.chain import LedgerSettings
from gateway.records.config import RecordsConfig
from gateway.records.store import RecordStore
from gateway.records.verify import verify_file
from metrology import dcc
from metrology.errors import DccInvalid, DccUnsafe
from tests.support.calibration import SERIAL as PRT_SERIAL
from tests.support.calibration import ErrorCurve, prt_certificate, prt_dcc

PATH = ("lab", "bath-1", "prt", "temperature")
CURVE = ErrorCurve()
DUE = dt.date(2099, 1, 1)


def config(tmp_path: Path) -> RecordsConfig:
    return RecordsConfig.model_validate({"path": tmp_path / "records.db"})


@pytest.fixture
async def records(tmp_path: Path) -> AsyncIterator[RecordStore]:
    store = RecordStore(config(tmp_path).path, LedgerSettings.of(config(tmp_path), "lab", "gw-1"))
    await store.open()
    try:
        yield store
    finally:
        await store.close()


async def declare(
    records: RecordStore,
    serial: str | None = PRT_SERIAL,
    unit: str = "°C",
    channel: str = "temperature",
) -> None:
    """What an agent's birth message records: the channel and the instrument's identity."""

    def work(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        identity = {"manufacturer": "Example Instruments", "model": "PRT-1"}
        if serial is not None:
            identity["serial"] = serial
        db.execute(
            "INSERT OR REPLACE INTO channels VALUES (?,?,?,?,?,?,?,?,?,?)",
            (*PATH[:3], channel, "serial", unit, 1.0, "{}", json.dumps(identity), time.time_ns()),
        )
        record_identity(db, *PATH[:3], identity, time.time_ns())
        db.execute("COMMIT")

    await records.run(work)


async def imported(records: RecordStore, number: str = "PRT-A", **options: Any) -> int:
    curve = options.pop("curve", CURVE)
    done = await instruments.import_certificate(
        records, prt_dcc(number, curve, due=options.pop("due", DUE), **options), anchors=[],
        actor="test",
    )  # fmt: skip
    return done.certificate.id


def soon(seconds: float = 1.0) -> int:
    return time.time_ns() + int(seconds * 1e9)


# -- import -----------------------------------------------------------------------------------


async def test_import_extracts_the_table_keeps_the_document_and_chains_it(
    records: RecordStore, tmp_path: Path
) -> None:
    data = prt_dcc("PRT-A", CURVE, due=DUE)
    done = await instruments.import_certificate(records, data, anchors=[], actor="qm")
    certificate = done.certificate
    assert (certificate.number, certificate.serial, certificate.due_date) == (
        "PRT-A", PRT_SERIAL, "2099-01-01",
    )  # fmt: skip
    assert certificate.due_ns == instruments.day_ns(DUE) + instruments.DAY_NS
    [table] = certificate.tables
    assert (table.kind, table.unit, len(table.points)) == ("error", "°C", 5)
    assert table.points[1].indication == "25.0212" and table.points[1].value == "0.0212"
    assert done.signature.status == "unsigned"
    stored = await records.run(lambda db: instruments.load_document(db, certificate.id))
    assert stored == data  # byte for byte
    report = verify_file(config(tmp_path))
    assert report.ok, report


async def test_import_refusals(records: RecordStore) -> None:
    await imported(records, "PRT-A")
    with pytest.raises(Clash) as clash:
        await imported(records, "PRT-A")
    assert "already registered" in str(clash.value)
    with pytest.raises(DccInvalid, match="HTML page"):
        await instruments.import_certificate(
            records, b"<html><body>certificate</body></html>", anchors=[], actor="x"
        )
    with pytest.raises(DccUnsafe):
        await instruments.import_certificate(
            records, b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>',
            anchors=[], actor="x",
        )  # fmt: skip
    with pytest.raises(DccInvalid):
        await instruments.import_certificate(
            records, b'<?xml version="1.0"?><invoice xmlns="urn:x"/>', anchors=[], actor="x"
        )
    with pytest.raises(Refused) as large:
        await instruments.import_certificate(
            records, b" " * (instruments.MAX_DCC_BYTES + 1), anchors=[], actor="x"
        )
    assert "at most 32 MiB" in str(large.value)
    # A reference standard's certificate (a value, no indications) is no calibration table.
    zener = prt_certificate("Z-1", CURVE, due=DUE)
    results = zener.measurement_results[0].results[0]
    bare = results.lists[0].quantities[2]  # the error column alone: no indication
    document = zener.model_copy(
        update={
            "measurement_results": (
                zener.measurement_results[0].model_copy(
                    update={
                        "results": (
                            results.model_copy(update={"lists": (), "quantities": (bare,)}),
                        )
                    }
                ),
            )
        }
    )
    with pytest.raises(Refused) as none:
        await instruments.import_certificate(records, dcc.build(document), anchors=[], actor="x")
    assert "has no calibration table" in str(none.value)
    assert "không có bảng hiệu chuẩn" in none.value.message("vi")


def test_tables_refuse_what_cannot_be_used() -> None:
    document = prt_certificate("T", CURVE, due=DUE, points=(10.0,))
    with pytest.raises(TableError, match="at least two points"):
        tables_from_dcc(document)
    # errors in mK of °C indications are scaled exactly
    table_list = document.measurement_results[0].results[0].lists[0]
    column = table_list.quantities[2]

    def in_millikelvin(value: Any) -> Any:
        expanded = value.uncertainty.model_copy(update={"value": "10"})
        return value.model_copy(
            update={"value": "21.5", "unit": "\\milli\\kelvin", "uncertainty": expanded}
        )

    milli = column.model_copy(update={"values": tuple(in_millikelvin(v) for v in column.values)})
    two = prt_certificate("T", CURVE, due=DUE, points=(10.0, 20.0))
    two_list = two.measurement_results[0].results[0].lists[0]
    two_milli = milli.model_copy(update={"values": milli.values * 2})
    changed = two_list.model_copy(update={"quantities": (*two_list.quantities[:2], two_milli)})
    result = two.measurement_results[0].results[0].model_copy(update={"lists": (changed,)})
    measurement = two.measurement_results[0].model_copy(update={"results": (result,)})
    [table] = tables_from_dcc(two.model_copy(update={"measurement_results": (measurement,)}))
    assert [(p.value, p.expanded_uncertainty) for p in table.points] == [("0.0215", "0.01")] * 2
    # a point without an uncertainty
    errors = two_list.quantities[2]
    bare = errors.model_copy(
        update={"values": tuple(v.model_copy(update={"uncertainty": None}) for v in errors.values)}
    )
    changed = two_list.model_copy(update={"quantities": (*two_list.quantities[:2], bare)})
    result = two.measurement_results[0].results[0].model_copy(update={"lists": (changed,)})
    measurement = two.measurement_results[0].model_copy(update={"results": (result,)})
    assert tables_from_dcc(two.model_copy(update={"measurement_results": (measurement,)})) == []


# -- links ------------------------------------------------------------------------------------


async def test_link_checks_channel_serial_unit_and_method(records: RecordStore) -> None:
    plain = CorrectionsConfig()
    certificate = await imported(records, "PRT-A")
    with pytest.raises(Missing, match="has not been declared"):
        await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")
    await declare(records, serial=None)
    with pytest.raises(Refused) as no_serial:
        await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")
    assert "reported no serial number" in str(no_serial.value)
    await declare(records, serial="PRT-9999")
    with pytest.raises(Refused) as mismatch:
        await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")
    assert str(mismatch.value) == (
        "serial mismatch: instrument lab/bath-1/prt reports serial PRT-9999, certificate PRT-A "
        "is for serial PRT-4711"
    )
    assert mismatch.value.message("vi") == (
        "sai số sê-ri: thiết bị lab/bath-1/prt báo số sê-ri PRT-9999, chứng chỉ PRT-A dành cho "
        "số sê-ri PRT-4711"
    )
    await declare(records, unit="K")
    with pytest.raises(Refused, match="reads K; table 0 of certificate PRT-A is in °C"):
        await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")
    await declare(records)
    with pytest.raises(Missing, match="has no table 3"):
        await instruments.link(records, PATH, certificate, table=3, config=plain, actor="x")
    degree6 = CorrectionsConfig.model_validate(
        {"channels": [{"channel": "lab/*/prt/*", "method": "polynomial", "degree": 6}]}
    )
    with pytest.raises(Refused, match="needs at least 7 distinct indications"):
        await instruments.link(records, PATH, certificate, table=None, config=degree6, actor="x")
    with pytest.raises(Refused, match="is in the past"):
        await instruments.link(
            records, PATH, certificate, table=None, config=plain, actor="x",
            at_ns=time.time_ns() - 10**9,
        )  # fmt: skip
    with pytest.raises(Missing, match="no instrument certificate 99"):
        await instruments.link(records, PATH, 99, table=None, config=plain, actor="x")
    with pytest.raises(Missing, match="has no certificate linked"):
        await instruments.unlink(records, PATH, actor="x")
    done = await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")
    assert done.link.serial == PRT_SERIAL and done.replaced is None
    with pytest.raises(Clash, match="already corrected by table 0 of certificate PRT-A"):
        await instruments.link(records, PATH, certificate, table=None, config=plain, actor="x")


def test_paths_are_checked() -> None:
    assert instruments.parse_channel("lab/bath-1/prt/temperature") == PATH
    for hostile in ("lab/bath-1/prt", "lab/bath 1/prt/t", "../../etc/passwd", "a/b/c/d/e", ""):
        with pytest.raises(Refused, match="is not SITE/AGENT/INSTRUMENT/CHANNEL"):
            instruments.parse_channel(hostile)


async def test_replacement_switches_at_the_instant_and_both_are_recorded(
    records: RecordStore, tmp_path: Path
) -> None:
    await declare(records)
    plain = CorrectionsConfig()
    first = await imported(records, "PRT-A")
    second = await imported(records, "PRT-B", curve=ErrorCurve(offset=0.05))
    start = soon()
    await instruments.link(records, PATH, first, table=None, config=plain, actor="a", at_ns=start)
    switch = start + 10**9
    done = await instruments.link(
        records, PATH, second, table=None, config=plain, actor="b", at_ns=switch
    )
    assert done.replaced is not None and done.replaced.until_ns == switch
    assert done.replaced.unlinked_by == "b" and done.link.from_ns == switch
    corrector = Corrector(plain, records)
    await corrector.load()
    readings = [
        {"instrument": "prt", "channel": "temperature", "ts": ts, "value": 20.0,
         "unit": "°C", "quality": "good"}
        for ts in (start - 1, start, switch - 1, switch, switch + 10**12)
    ]  # fmt: skip
    assert corrector.correct("lab", "bath-1", readings)
    assert [r.get("certificate") for r in readings] == [None, "PRT-A", "PRT-A", "PRT-B", "PRT-B"]
    await instruments.unlink(records, PATH, actor="c", at_ns=switch + 5 * 10**9)
    await corrector.refresh()
    late = [{**readings[0], "ts": switch + 6 * 10**9}]
    assert not corrector.correct("lab", "bath-1", late) and "corrected" not in late[0]
    audit = await records.query(
        "SELECT action, subject FROM audit_log WHERE subject LIKE 'channel:%' ORDER BY id"
    )
    assert [a["action"] for a in audit] == [
        "calibration linked", "calibration linked", "calibration unlinked",
    ]  # fmt: skip
    assert verify_file(config(tmp_path)).ok


async def test_a_link_edited_behind_etalon_is_found(records: RecordStore, tmp_path: Path) -> None:
    await declare(records)
    certificate = await imported(records, "PRT-A")
    await instruments.link(
        records, PATH, certificate, table=None, config=CorrectionsConfig(), actor="x"
    )
    await records.close()
    db = sqlite3.connect(config(tmp_path).path, isolation_level=None)
    db.execute("UPDATE calibration_links SET from_ns = from_ns - 86400000000000")
    db.close()
    report = verify_file(config(tmp_path))
    assert not report.ok
    assert report.finding is not None
    assert (report.finding.kind, report.finding.table) == ("edited", "calibration_links")
    db = sqlite3.connect(config(tmp_path).path, isolation_level=None)
    db.execute("UPDATE instrument_certificates SET tables = '[]'")
    db.close()
    assert verify_file(config(tmp_path)).finding is not None


# -- the corrector on these records -------------------------------------------------------------


def reading(value: Any, ts: int, quality: str = "good", **extra: Any) -> dict[str, Any]:
    return {"instrument": "prt", "channel": "temperature", "ts": ts, "value": value,
            "unit": "°C", "quality": quality, **extra}  # fmt: skip


async def linked_corrector(
    records: RecordStore, settings: dict[str, Any] | None = None, **link: Any
) -> tuple[Corrector, int]:
    await declare(records)
    chosen = CorrectionsConfig.model_validate(settings or {})
    certificate = await imported(records, "PRT-A", **link)
    start = soon(0.2)
    await instruments.link(
        records, PATH, certificate, table=None, config=chosen, actor="x", at_ns=start
    )
    corrector = Corrector(chosen, records)
    await corrector.load()
    return corrector, start


async def test_polynomial_per_channel_and_flags(records: RecordStore) -> None:
    corrector, start = await linked_corrector(
        records,
        {
            "channels": [
                {"channel": "lab/bath-1/prt/temperature", "method": "polynomial", "degree": 2,
                 "tolerance": {"mpe": 0.015}, "decision_rule": {"kind": "non_binary"}},
            ]
        },
    )  # fmt: skip
    at = start + 1
    truths = (5.0, 33.0, 66.6, 95.0)
    batch = [reading(CURVE.indication(tv), at + i) for i, tv in enumerate(truths)]
    assert corrector.correct("lab", "bath-1", batch)
    for truth, row in zip(truths, batch, strict=True):
        # a quadratic error curve: the degree-2 fit follows it between the points
        assert abs(row["corrected"] - truth) <= 2 * row["u_corrected"]
        assert row["quality"] == "good"
        # MPE judged on the error (about 0.02 °C) with U ≈ 0.01 °C: not a clear pass
        assert row["conformity"] in (1, 2, 3)
    failing = [r for r in batch if r["conformity"] >= 2]
    assert failing and failing[0]["verdict"]["judged"] == "error"
    assert failing[0]["verdict"]["rule"].startswith("non binary")
    # never corrected: text, booleans, bad readings without a value; bad stays bad
    others = [
        reading("OVLD", at), reading(True, at), reading(None, at, "bad"),
        reading(150.0, at, "bad", reason="sensor open"),
    ]  # fmt: skip
    corrector.correct("lab", "bath-1", others)
    assert all("corrected" not in r for r in others[:3])
    assert others[3]["quality"] == "bad"
    assert others[3]["reason"].startswith("sensor open; calibration_range:")
    assert others[3]["calibration"] == RANGE
    # far outside: the polynomial still answers, marked; an absurd value is not corrected
    huge = [reading(1e300, at)]
    corrector.correct("lab", "bath-1", huge)
    assert "corrected" not in huge[0] and huge[0]["calibration"] == RANGE
    assert huge[0]["reason"] == "calibration_range: 1e+300 cannot be corrected"
    other_agent = [reading(20.0, at)]
    assert not corrector.correct("lab", "bath-2", other_agent)


async def test_expiry_and_serial_change(records: RecordStore) -> None:
    due = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=3)
    corrector, start = await linked_corrector(records, due=due)
    expiry = instruments.expiry_ns(due)
    batch = [reading(20.0, expiry - 1), reading(20.0, expiry)]
    corrector.correct("lab", "bath-1", batch)
    assert batch[0]["quality"] == "good" and "calibration" not in batch[0]
    assert batch[1]["quality"] == "uncertain" and batch[1]["calibration"] == EXPIRED
    assert batch[1]["reason"] == f"calibration_expired: certificate PRT-A was due on {due}"
    assert math.isfinite(batch[1]["corrected"])
    # the agent now reports another instrument under that name: no correction, marked
    corrector.serial_reported("lab", "bath-1", "prt", "PRT-0001")
    swapped = [reading(20.0, start + 5)]
    corrector.correct("lab", "bath-1", swapped)
    assert "corrected" not in swapped[0] and swapped[0]["calibration"] == SERIAL
    assert "reports serial PRT-0001" in swapped[0]["reason"]
    corrector.serial_reported("lab", "bath-1", "prt", PRT_SERIAL)
    back = [reading(20.0, start + 6)]
    corrector.correct("lab", "bath-1", back)
    assert back[0]["certificate"] == "PRT-A"


def test_the_reasons_people_read_exist_in_both_languages() -> None:
    for key in ("corrections.reason.range", "corrections.reason.expired"):
        assert t(key, "vi", value=1, low=0, high=2, number="N", due="D") != t(
            key, "en", value=1, low=0, high=2, number="N", due="D"
        )
