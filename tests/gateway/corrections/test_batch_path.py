"""Corrections a batch at a time (``Corrector.batch``, ``gateway.corrections.apply``) give what
the per-reading path (``Corrector.fixes``, each span's ``apply`` and ``decide``) gives, bit for
bit: corrected values, u, certificates, conformity codes, marks with their reasons and the
verdicts alerts read — for every method and decision rule, readings in and out of range, at the
last point, after the due date, of a mismatched serial, of text or no value, unlinked, and across
a certificate replaced inside the batch. The columns they are spooled as are read back checked:
a corrupted entry is refused whole (the writer dead-letters it), never written half-right."""

from __future__ import annotations

import base64
import dataclasses
import math
import random
import struct
from typing import Any

import orjson
import pytest

from edge_agent.wire_batches import ChannelOrder, WireRow, decode_data
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
SWITCH = T0 + 500
CHANNELS = [("prt", f"t{i}") for i in range(4)] + [("dmm", "v")]

SETTINGS: dict[str, Any] = {
    "linear": None,
    "clamped": {"channels": [{"channel": "*/*/*/*", "extrapolation": "clamp", "resolution": 0.01}]},
    "guarded acceptance": {
        "channels": [
            {
                "channel": "*/*/*/*",
                "tolerance": {"lower": 0.0, "upper": 100.0},
                "decision_rule": {"kind": "guarded_acceptance"},
            }
        ]
    },
    "non-binary on the error": {
        "channels": [
            {
                "channel": "*/*/*/*",
                "tolerance": {"mpe": 0.021},
                "decision_rule": {"kind": "non_binary"},
            }
        ]
    },
    "cubic, guarded rejection": {
        "channels": [
            {
                "channel": "*/*/*/*",
                "method": "polynomial",
                "degree": 3,
                "tolerance": {"lower": 1.0, "upper": 90.0},
                "decision_rule": {"kind": "guarded_rejection", "guard_factor": 2},
            }
        ]
    },
    "mixed methods": {
        "channels": [
            {"channel": "lab/bench-1/prt/t0", "method": "polynomial", "degree": 2},
            {"channel": "lab/bench-1/prt/t1", "method": "polynomial", "degree": 1},
            {
                "channel": "lab/bench-1/dmm/*",
                "tolerance": {"lower": 10.0, "upper": 60.0},
                "decision_rule": {"kind": "simple_acceptance"},
            },
        ]
    },
}


def _certificate(
    number: int, serial: str, curve: float, xs: range = range(0, 101, 10)
) -> InstrumentCertificate:
    points = tuple(
        TablePoint(
            indication=f"{x + curve * (1 + x / 50):.4f}",
            value=f"{curve * (1 + x / 50) - 1e-5 * x * x:.5f}",
            expanded_uncertainty=f"{0.01 + 1e-4 * x:.4f}",
            coverage_factor="2",
        )
        for x in xs
    )
    table = CalibrationTable(
        index=0, name="t", name_vi="t", path="p", kind="error", unit="°C", points=points
    )
    return InstrumentCertificate(
        number, f"CERT-{number}", "lab", None, None, serial, "2026-11-03", "2027-01-01", DUE,
        (table,), {}, None, "0" * 64, 0, 0, "test",
    )  # fmt: skip


def corrector(settings: dict[str, Any] | None, serial: str = "S1") -> Corrector:
    """Every channel linked; prt/t0's certificate replaced at SWITCH; dmm's for serial S2."""
    made = Corrector(
        CorrectionsConfig.model_validate(settings or {}), RecordStore.__new__(RecordStore)
    )
    links = [
        Link(1, SITE, AGENT, "prt", "t0", 1, 0, "S1", 0, SWITCH, "test", None),
        Link(2, SITE, AGENT, "prt", "t0", 2, 0, "S1", SWITCH, None, "test", None),
    ]
    links += [
        Link(3 + i, SITE, AGENT, instrument, channel, 1 if instrument == "prt" else 3, 0,
             "S1" if instrument == "prt" else "S2", 0, None, "test", None)
        for i, (instrument, channel) in enumerate(CHANNELS[1:])
    ]  # fmt: skip
    certificates = [_certificate(1, "S1", 0.02), _certificate(2, "S1", -0.03)]
    certificates.append(_certificate(3, "S2", 0.05))
    serials = {(SITE, AGENT, "prt"): "S1", (SITE, AGENT, "dmm"): serial}
    made.install(links, certificates, serials)
    return made


EDGES: list[Any] = [
    0.02, 100.02, 100.04, 10.0, 1e300, -1e300, 5, 50, True, "OVLD", None, 0.0, -0.0,
    2**53 + 1, -3.0, 140.0, 60.0,
]  # fmt: skip


def rows(rng: random.Random, count: int) -> list[WireRow]:
    out = []
    for _ in range(count):
        instrument, channel = CHANNELS[rng.randrange(len(CHANNELS))]
        if rng.random() < 0.05:
            channel = "unlinked"
        value = rng.uniform(-5.0, 105.0) if rng.random() < 0.8 else rng.choice(EDGES)
        ts = T0 + rng.randrange(1000)
        if rng.random() < 0.03:
            ts = DUE + rng.randrange(10)
        quality = "bad" if value is None else "good"
        out.append(WireRow(instrument, channel, ts, value, "°C", quality))
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or (
            a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
        )
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def _same_as_one_by_one(
    one_by_one: Corrector, batched: Corrector, batch: list[WireRow], order: ChannelOrder | None
) -> int:
    """Correct ``batch`` both ways and compare every field bit for bit; how many readings the
    batch path corrected in its columns."""
    reference = one_by_one.fixes(
        SITE, AGENT, [r.instrument for r in batch], [r.channel for r in batch],
        [r.value for r in batch], [r.ts for r in batch],
    )  # fmt: skip
    got = batched.batch(SITE, AGENT, batch, order)
    expected: list[dict[str, Any]] = [{"quality": r.quality} for r in batch]
    mine: list[dict[str, Any]] = [{"quality": r.quality} for r in batch]
    for fix in reference:
        fix.apply(expected[fix.index])
    if got is not None:
        got.apply(mine)
        assert len(got) == len(reference)
    else:
        assert not reference
    assert all(_same(a, b) for a, b in zip(expected, mine, strict=True)), (expected, mine)
    assert (one_by_one.corrected, one_by_one.flagged) == (batched.corrected, batched.flagged)
    return 0 if got is None else len(got.corrected)


@pytest.mark.parametrize("name", list(SETTINGS))
@pytest.mark.parametrize("serial", ["S2", "S9"], ids=["serial matches", "serial mismatch"])
def test_a_batch_at_a_time_gives_the_per_reading_results_bit_for_bit(
    name: str, serial: str
) -> None:
    rng = random.Random(f"{name}{serial}")
    one_by_one, batched = corrector(SETTINGS[name], serial), corrector(SETTINGS[name], serial)
    columns = 0
    batch = rows(rng, 10)
    order: ChannelOrder | None = None
    for round_ in range(90):
        if round_ % 3:  # a new order of channels, told or not
            batch = rows(rng, rng.randrange(1, 150))
            order = ChannelOrder.of(batch) if round_ % 3 == 2 else None
        else:  # the previous order again (the very object decoding hands out), new readings
            order = order or ChannelOrder.of(batch)
            fresh = rows(rng, len(batch))
            batch = [
                WireRow(old.instrument, old.channel, new.ts, new.value, "°C", new.quality)
                for old, new in zip(batch, fresh, strict=True)
            ]
        columns += _same_as_one_by_one(one_by_one, batched, batch, order)
    assert columns > 1000  # the batch path did the work, not the fallback
    assert (one_by_one.corrected, one_by_one.flagged) == (batched.corrected, batched.flagged)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_a_kept_plan_gives_the_per_reading_results_and_follows_the_tables(name: str) -> None:
    """An agent's usual order of channels, every reading in range and in force: the plan kept
    for the order (its kernels, certificates and gathers) is reused batch after batch, and
    dropped when a table changes — here prt/t0's certificate switching at SWITCH, back and
    forth, and a reading out of range — with the per-reading results bit for bit throughout."""
    rng = random.Random(name)
    one_by_one, batched = corrector(SETTINGS[name], "S2"), corrector(SETTINGS[name], "S2")
    channels = [CHANNELS[i % len(CHANNELS)] for i in range(40)]
    order = ChannelOrder.of([WireRow(i, c, T0, 1.0, "°C", "good") for i, c in channels])
    table = batched._tables[(SITE, AGENT)]
    reused = 0
    for round_ in range(60):
        start = SWITCH + 10 if (round_ // 7) % 2 else T0
        values: list[Any] = [rng.uniform(1.0, 99.0) for _ in channels]
        if round_ % 11 == 5:
            values[3] = 140.0  # out of range: taken one by one
        batch = [
            WireRow(i, c, start + n, v, "°C", "good")
            for n, ((i, c), v) in enumerate(zip(channels, values, strict=True))
        ]
        kept = table.plan
        assert _same_as_one_by_one(one_by_one, batched, batch, order)
        reused += kept is not None and table.plan is kept
    assert reused > 20  # the plan was kept and reused, not made again each time
    assert (one_by_one.corrected, one_by_one.flagged) == (batched.corrected, batched.flagged)


def _payload(values: list[Any], channels: list[tuple[str, str]] | None = None) -> bytes:
    # prt/t1…t3: one certificate in force (t0's is replaced inside the span of the batch).
    channels = channels or [CHANNELS[1 + i % 3] for i in range(len(values))]
    readings = [
        {"instrument": i, "channel": c, "ts": T0 + n, "value": v, "unit": "°C",
         "quality": "good" if v is not None else "bad"}
        for n, ((i, c), v) in enumerate(zip(channels, values, strict=True))
    ]  # fmt: skip
    return orjson.dumps({"schema": 1, "site": SITE, "agent": AGENT, "seq": 0, "readings": readings})


def _fields(lines: list[str]) -> list[dict[str, Any]]:
    return [parse_line(line)[2] for line in lines]


@pytest.mark.parametrize("name", ["linear", "guarded acceptance", "cubic, guarded rejection"])
@pytest.mark.parametrize("marked", [False, True], ids=["all in columns", "some marked"])
def test_spooled_columns_write_what_the_dict_path_writes(name: str, marked: bool) -> None:
    values: list[Any] = [10.0 + 6.1 * i for i in range(12)]
    if marked:
        values += [150.0, "OVLD", None, 99.99]
    data = _payload(values)
    reference = orjson.loads(data)["readings"]
    corrector(SETTINGS[name]).correct(SITE, AGENT, reference)
    expected = _fields(LineBuilder().lines(ReadingsBatch(SITE, AGENT, reference)))
    rows_ = decode_data(data, SITE, AGENT).rows
    entry, handed, fixes = spool_entry(corrector(SETTINGS[name]), SITE, AGENT, data, rows_)
    assert fixes is not None and handed.columns is not None
    assert (handed.columns.index is None) is (not marked)
    read_back = decode_entry(entry)
    assert isinstance(read_back, ReadingsBatch)
    assert read_back.readings == handed.readings
    for index in range(12):  # a reading corrected in full is stored as the dict path has it
        assert read_back.readings[index] == reference[index]
    for item in (read_back, handed):
        got = _fields(LineBuilder().lines(item))
        for mine, theirs in zip(got, expected, strict=True):
            assert mine.keys() == theirs.keys()
            for field, value in theirs.items():
                if field in ("corrected", "u_corrected"):  # the dict path rounds them
                    rel = 1e-2 if field[0] == "u" else 1e-11
                    assert mine[field] == pytest.approx(value, rel=rel)
                else:
                    assert mine[field] == value, field
    # The line carries the corrected value's every digit, as the reading dict has it.
    assert _fields(LineBuilder().lines(read_back))[0]["corrected"] == reference[0]["corrected"]


def _corrupt(entry: bytes, old: bytes, new: bytes) -> bytes:
    assert old in entry
    return entry.replace(old, new, 1)


def _edited(entry: bytes, **fixed: Any) -> bytes:
    """The entry with keys of its ``fixed`` columns replaced (None: removed)."""
    body = orjson.loads(entry)
    for key, value in fixed.items():
        if value is None:
            del body["fixed"][key]
        else:
            body["fixed"][key] = value
    return orjson.dumps(body)


def _b64(values: list[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(values)}d", *values)).decode()


def _floats(data: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(data) // 8}d", data))


def _older(entry: bytes) -> bytes:
    """The entry as gateways before the columns' bytes spooled it: JSON lists of numbers, each
    reading's certificate id."""
    fixed = orjson.loads(entry)["fixed"]
    values, us = (_floats(base64.b64decode(fixed[key])) for key in ("value_f64", "u_f64"))
    return _edited(
        entry, value_f64=None, u_f64=None, value=values, u=us,
        certificate_id=[fixed["certificate_id"]] * len(values),
    )  # fmt: skip


_TWELVE = [10.0 + 7.3 * i for i in range(12)]


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: _edited(e, value_f64="#" + orjson.loads(e)["fixed"]["value_f64"]),
        lambda e: _edited(e, value_f64=_b64([math.inf, *_TWELVE[1:]])),
        lambda e: _edited(e, u_f64=_b64([math.nan, *_TWELVE[1:]])),
        lambda e: _edited(e, u_f64=_b64([*_TWELVE, 1.0])),
        lambda e: _edited(e, value_f64=_b64(_TWELVE)[:-4]),
        lambda e: _edited(e, u_f64=None),
        lambda e: _edited(e, value=_TWELVE),
        lambda e: _edited(_older(e), value=["x", *_TWELVE[1:]]),
        lambda e: _corrupt(_older(e), b'"value":[', b'"value":[1e999,'),
        lambda e: _corrupt(_older(e), b'"u":[', b'"u":[1,'),
        lambda e: _corrupt(e, b'"certificate_id":1,', b'"certificate_id":77,'),
        lambda e: _corrupt(e, b'"certificate_id":1,', b'"certificate_id":[1,1],'),
        lambda e: _corrupt(e, b'"certificate_id":1,', b'"certificate_id":[' + b"1," * 11 + b"77],"),
        lambda e: _corrupt(e, b'"conformity":null', b'"conformity":[9]'),
        lambda e: _corrupt(e, b'"index":null', b'"index":[0,1,2,3,4,5,6,7,8,9,10,99]'),
        lambda e: _corrupt(e, b'"fixed":{', b'"fixed":{"extra":1,'),
    ],
    ids=[
        "not base64",
        "infinite",
        "NaN",
        "length",
        "bytes not of floats",
        "a column missing",
        "both forms",
        "older: text",
        "older: overflow",
        "older: length",
        "certificate",
        "certificates' length",
        "certificate in a list",
        "conformity",
        "index",
        "key",
    ],
)
def test_a_corrupted_column_refuses_the_entry(edit: Any) -> None:
    data = _payload(_TWELVE)
    rows_ = decode_data(data, SITE, AGENT).rows
    entry, _, _ = spool_entry(corrector(None), SITE, AGENT, data, rows_)
    assert isinstance(decode_entry(entry), ReadingsBatch)
    assert isinstance(decode_entry(_older(entry)), ReadingsBatch)
    with pytest.raises(ValueError, match=r"spooled|correction"):
        decode_entry(edit(entry))


def test_an_entry_spooled_by_an_older_gateway_still_drains() -> None:
    """Gateways before this one spooled the corrected values and their u as JSON lists of
    numbers and each corrected reading's certificate id (a list); the writer reads that form
    as it reads the columns' bytes and the one id it spools now for a batch of one
    certificate, to the same readings and lines."""
    data = _payload(_TWELVE)
    rows_ = decode_data(data, SITE, AGENT).rows
    entry, handed, _ = spool_entry(corrector(None), SITE, AGENT, data, rows_)
    older = _older(entry)
    assert b'"value":[' in older and b'"certificate_id":[1,' in older
    now, then = decode_entry(entry), decode_entry(older)
    assert isinstance(now, ReadingsBatch) and isinstance(then, ReadingsBatch)
    assert then.readings == now.readings == handed.readings
    assert LineBuilder().lines(then) == LineBuilder().lines(now) == LineBuilder().lines(handed)


@pytest.mark.parametrize("name", list(SETTINGS))
def test_the_batches_of_one_wakeup_corrected_together_give_each_batchs_own(name: str) -> None:
    """Ingest corrects every message one wake-up takes in one ``Corrector.batches`` call:
    each batch's part is what correcting it alone gives, bit for bit — its columns, its marked
    readings by their own index, its own certificates — batches of an unlinked agent, in new
    or the usual order, of text or no value, across the certificate replaced at SWITCH."""
    rng = random.Random(name)
    alone, together = corrector(SETTINGS[name], "S9"), corrector(SETTINGS[name], "S9")
    usual = rows(rng, 30)
    order = ChannelOrder.of(usual)
    parts = 0
    for _ in range(40):
        items: list[Any] = []
        for _ in range(rng.randrange(1, 6)):
            if rng.random() < 0.5:
                fresh = rows(rng, len(usual))
                batch = [
                    WireRow(old.instrument, old.channel, new.ts, new.value, "°C", new.quality)
                    for old, new in zip(usual, fresh, strict=True)
                ]
                items.append((SITE, AGENT, batch, order))
            else:
                agent = AGENT if rng.random() < 0.9 else "unlinked-agent"
                items.append((SITE, agent, rows(rng, rng.randrange(1, 80)), None))
        expected = [alone.batch(*item) for item in items]
        got = together.batches(items)
        for item, theirs, ours in zip(items, expected, got, strict=True):
            if theirs is None:
                assert ours is None
                continue
            assert ours is not None and len(ours) == len(theirs)
            assert ours.certificates == theirs.certificates
            mine: list[dict[str, Any]] = [{"quality": r.quality} for r in item[2]]
            reference: list[dict[str, Any]] = [{"quality": r.quality} for r in item[2]]
            theirs.apply(reference)
            ours.apply(mine)
            assert all(_same(a, b) for a, b in zip(reference, mine, strict=True))
            parts += 1
    assert parts > 60
    assert (alone.corrected, alone.flagged) == (together.corrected, together.flagged)


def test_linear_tables_of_any_length_are_searched_in_their_own_row() -> None:
    """Tables of 2, 11 and 90 points side by side: each indication is interpolated in its own
    table's interval (one search over every table's breakpoints), bit for bit ``apply``'s."""
    certificates = [
        _certificate(number, "S1", 0.01 * number, range(0, top, step))
        for number, top, step in ((1, 101, 100), (2, 101, 10), (3, 91, 1))
    ]
    links = [
        Link(1 + i, SITE, AGENT, instrument, channel, 1 + i % 3, 0, "S1", 0, None, "test", None)
        for i, (instrument, channel) in enumerate(CHANNELS)
    ]
    made = []
    for _ in range(2):
        one = Corrector(CorrectionsConfig.model_validate({}), RecordStore.__new__(RecordStore))
        one.install(links, certificates, {(SITE, AGENT, "prt"): "S1", (SITE, AGENT, "dmm"): "S1"})
        made.append(one)
    rng = random.Random(3)
    batch = [
        WireRow(i, c, T0, rng.uniform(-1.0, 101.0), "°C", "good")
        for i, c in (CHANNELS[n % len(CHANNELS)] for n in range(400))
    ]
    reference = made[0].fixes(
        SITE, AGENT, [r.instrument for r in batch], [r.channel for r in batch],
        [r.value for r in batch], [r.ts for r in batch],
    )  # fmt: skip
    got = made[1].batch(SITE, AGENT, batch)
    assert got is not None and len(got.corrected) > 300
    expected: list[dict[str, Any]] = [{"quality": "good"} for _ in batch]
    mine: list[dict[str, Any]] = [{"quality": "good"} for _ in batch]
    for fix in reference:
        fix.apply(expected[fix.index])
    got.apply(mine)
    assert all(_same(a, b) for a, b in zip(expected, mine, strict=True))


ODD: list[Any] = [
    0.02, 100.02, 100.0, -0.0, 0.0, -3.0, 140.0, 1e300, -1e300, math.inf, -math.inf, math.nan,
]  # fmt: skip


@pytest.mark.parametrize("name", ["linear", "guarded acceptance", "non-binary on the error"])
def test_channels_of_one_table_are_searched_in_it_alone_bit_for_bit(name: str) -> None:
    """prt/t1…t3 are linked to one certificate's table: their spans share its row, and a
    batch of them alone is one search of that table's breakpoints (no keys of rows), with
    ``apply``'s results bit for bit — at and between the points, outside, at the last point,
    at ±0, infinite and NaN; a batch that adds dmm/v (another table) searches every row."""
    rng = random.Random(name)
    one_by_one, batched = corrector(SETTINGS[name], "S2"), corrector(SETTINGS[name], "S2")
    for channels, searched_alone in ((CHANNELS[1:4], True), (CHANNELS[1:], False)):
        usual = [channels[n % len(channels)] for n in range(60)]
        order = ChannelOrder.of([WireRow(i, c, T0, 1.0, "°C", "good") for i, c in usual])
        columns = 0
        for round_ in range(12):
            values: list[Any] = [rng.uniform(0.0, 100.0) for _ in usual]
            if round_ % 3 == 2:  # some readings the table cannot take (one by one)
                values[rng.randrange(len(values))] = rng.choice(ODD)
            batch = [
                WireRow(i, c, SWITCH + n, v, "°C", "good")
                for n, ((i, c), v) in enumerate(zip(usual, values, strict=True))
            ]
            columns += _same_as_one_by_one(one_by_one, batched, batch, order)
        plan = batched._tables[(SITE, AGENT)].plan
        assert plan is not None
        assert (plan[2].gathers["row.keys"] == ()) is searched_alone
        assert columns > 200
    batch = [
        WireRow(i, c, SWITCH + n, v, "°C", "good")
        for n, v in enumerate(ODD)
        for i, c in [CHANNELS[1]]
    ]
    _same_as_one_by_one(one_by_one, batched, batch, ChannelOrder.of(batch))


def _scaled_corrector(
    scale: float,
    flat_u: bool = False,
    settings: dict[str, Any] | None = None,
    u_scale: float = 1.0,
) -> Corrector:
    """Every channel linked to one table whose indications and corrections are ``scale``
    times the usual, its U ``scale·u_scale`` times (``flat_u``: the same at every point)."""
    usual = _certificate(1, "S1", 0.02)
    table = usual.tables[0]
    points = tuple(
        TablePoint(
            indication=repr(float(p.indication) * scale),
            value=repr(float(p.value) * scale),
            expanded_uncertainty=repr(
                (0.02 if flat_u else float(p.expanded_uncertainty)) * scale * u_scale
            ),
            coverage_factor="2",
        )
        for p in table.points
    )
    scaled = dataclasses.replace(usual, tables=(table.model_copy(update={"points": points}),))
    config = CorrectionsConfig.model_validate(settings or {})
    made = Corrector(config, RecordStore.__new__(RecordStore))
    links = [
        Link(1 + n, SITE, AGENT, i, c, 1, 0, "S1", 0, None, "test", None)
        for n, (i, c) in enumerate(CHANNELS)
    ]
    made.install(links, [scaled], {(SITE, AGENT, "prt"): "S1", (SITE, AGENT, "dmm"): "S1"})
    return made


def _every_channel(
    one_by_one: Corrector, batched: Corrector, rng: random.Random, scale: float = 1.0
) -> int:
    """Ten batches of every channel in the usual order, readings in 0 … 100 ``scale``, every
    other batch with one of ODD: both ways, bit for bit; how many readings went in columns."""
    usual = [CHANNELS[n % len(CHANNELS)] for n in range(50)]
    order = ChannelOrder.of([WireRow(i, c, T0, 1.0, "°C", "good") for i, c in usual])
    columns = 0
    for round_ in range(10):
        values: list[Any] = [rng.uniform(0.0, 100.0) * scale for _ in usual]
        if round_ % 2:
            values[rng.randrange(len(values))] = rng.choice(ODD)
        batch = [
            WireRow(i, c, T0 + n, v, "°C", "good")
            for n, ((i, c), v) in enumerate(zip(usual, values, strict=True))
        ]
        columns += _same_as_one_by_one(one_by_one, batched, batch, order)
    return columns


@pytest.mark.parametrize("scale", [1.0, 1e-30, 1e45, 1e60, 1e75])
def test_warnings_are_silenced_unless_no_number_of_the_tables_is_huge(scale: float) -> None:
    """``Kernels.evaluate`` enters no ``np.errstate`` only for tables whose numbers stay
    within 1e50 (``quiet``: nothing of theirs can overflow, and a reading outside them is NaN,
    which warns of nothing), and then tells which readings are done from the segments found,
    not from their results; tables of larger numbers are evaluated as before. Either way
    ``apply``'s results bit for bit, for readings at any scale, in and out of range, infinite
    and NaN, and no warning (the suite turns one into an error)."""
    one_by_one, batched = _scaled_corrector(scale), _scaled_corrector(scale)
    assert batched.kernels.quiet is (scale <= 1e45)
    # Polynomials: never quiet, quiet in range only alone (the range is checked first; the
    # bit-for-bit tests above take them in and out of range).
    cubic, mixed = (
        corrector(SETTINGS["cubic, guarded rejection"]),
        corrector(SETTINGS["mixed methods"]),
    )
    assert (cubic.kernels.quiet, cubic.kernels.quiet_in_range) == (False, True)
    assert (mixed.kernels.quiet, mixed.kernels.quiet_in_range) == (False, False)
    assert _every_channel(one_by_one, batched, random.Random(scale), scale) > 400


def test_a_table_whose_u_squared_overflows_is_installed_without_a_warning() -> None:
    """A certificate's U may be any finite number: one whose square overflows (U above ~1e154)
    is made into kernels without a floating-point warning (the suite turns one into an
    error), not quiet: its readings are evaluated under ``np.errstate``."""
    made = _scaled_corrector(1.0, u_scale=1e160)
    assert not made.kernels.quiet


@pytest.mark.parametrize("flat_u", [False, True], ids=["u varies", "u flat"])
@pytest.mark.parametrize("resolution", [None, 0.01])
@pytest.mark.parametrize("interpolation", [True, False])
def test_terms_that_add_zero_are_left_out_with_the_same_bits(
    flat_u: bool, resolution: float | None, interpolation: bool
) -> None:
    """A table whose U is the same at every point adds nothing with du/dx·dx, and a reading
    with no variance of its own (no resolution, no declared u) nothing with it: the linear
    kernel leaves both terms out (``table_flags``), and gives ``apply``'s results bit for bit
    either way, with or without the interpolation term, in and out of range."""
    channel: dict[str, Any] = {"channel": "*/*/*/*", "interpolation_component": interpolation}
    if resolution is not None:
        channel["resolution"] = resolution
    settings = {"channels": [channel]}
    one_by_one = _scaled_corrector(1.0, flat_u, settings)
    batched = _scaled_corrector(1.0, flat_u, settings)
    assert batched.kernels.table_flags == [(flat_u, resolution is None)]
    rng = random.Random(f"{flat_u}{resolution}{interpolation}")
    assert _every_channel(one_by_one, batched, rng) > 400
