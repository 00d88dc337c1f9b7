"""A simulated PRT readout with a known error curve, and the DCC that describes it (made here,
never checked in): what the corrections tests calibrate, link and correct.

The readout indicates ``x = T + e(T)`` for a true temperature ``T``, with
``e(T) = OFFSET + LINEAR·T + QUADRATIC·T²`` — a smooth curve, so piecewise linear
interpolation between the calibration points leaves a small, bounded error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from metrology import dcc
from metrology.dcc import (
    Contact,
    Dcc,
    ExpandedUncertainty,
    Identification,
    Item,
    Laboratory,
    Location,
    MeasurementResult,
    Quantity,
    QuantityList,
    ResponsiblePerson,
    Result,
    Software,
    Statement,
    Text,
    Value,
)

SERIAL = "PRT-4711"
CALIBRATION_POINTS = (0.0, 25.0, 50.0, 75.0, 100.0)
"""True temperatures (°C) of the calibration points."""
EXPANDED_U = "0.010"
"""U (k = 2) of every point, °C."""


@dataclass(frozen=True)
class ErrorCurve:
    """``e(T) = offset + linear·T + quadratic·T²`` (°C): indication minus truth."""

    offset: float = 0.020
    linear: float = 1.0e-4
    quadratic: float = -2.0e-6

    def error(self, truth: float) -> float:
        """The readout's error at the true temperature."""
        return self.offset + self.linear * truth + self.quadratic * truth * truth

    def indication(self, truth: float) -> float:
        """What the readout shows at the true temperature (rounded to its 0.0001 °C digit)."""
        return round(truth + self.error(truth), 4)


def _text(value: float) -> str:
    return f"{value:.4f}"


def prt_certificate(
    number: str,
    curve: ErrorCurve,
    *,
    serial: str = SERIAL,
    due: dt.date | None,
    points: Sequence[float] = CALIBRATION_POINTS,
) -> Dcc:
    """A DCC of the readout: reference, indication and error with U at each point."""
    indications = [curve.indication(t) for t in points]
    errors = [x - t for x, t in zip(indications, points, strict=True)]
    table = QuantityList(
        name=Text.of(en="Temperature, 0 to 100 °C", vi="Nhiệt độ, 0 đến 100 °C"),
        quantities=(
            Quantity(
                name=Text.of(en="Reference temperature", vi="Nhiệt độ chuẩn"),
                ref_types=("basic_referenceValue",),
                values=tuple(Value.of(_text(t), "°C") for t in points),
            ),
            Quantity(
                name=Text.of(en="Indication", vi="Số chỉ"),
                ref_types=("basic_measuredValue",),
                values=tuple(Value.of(_text(x), "°C") for x in indications),
            ),
            Quantity(
                name=Text.of(en="Measurement error", vi="Sai số"),
                ref_types=("basic_measurementError",),
                values=tuple(
                    Value(
                        value=_text(e),
                        unit="\\degreecelsius",
                        uncertainty=ExpandedUncertainty(
                            value=EXPANDED_U, coverage_factor="2", coverage_probability="0.95"
                        ),
                    )
                    for e in errors
                ),
            ),
        ),
    )
    statements: tuple[Statement, ...] = ()
    if due is not None:
        statements = (
            Statement(
                ref_types=("basic_recalibration",),
                declaration=Text.of(en="Recalibration is due by", vi="Hạn hiệu chuẩn lại"),
                date=due,
            ),
        )
    return Dcc(
        unique_identifier=number,
        country_code="VN",
        begin_performance_date=dt.date(2026, 11, 2),
        end_performance_date=dt.date(2026, 11, 3),
        software=(Software(name=Text.of("etalon"), release="test", type="application"),),
        items=(
            Item(
                name=Text.of(en="PRT readout", vi="Bộ đọc nhiệt kế điện trở bạch kim"),
                manufacturer=Text.of("Example Instruments"),
                model="PRT-1",
                identifications=(
                    Identification(
                        issuer="manufacturer",
                        value=serial,
                        name=Text.of(en="Serial number", vi="Số sê-ri"),
                    ),
                ),
            ),
        ),
        laboratory=Laboratory(
            code="VILAS 001",
            name=Text.of(en="Vietnam Metrology Institute", vi="Viện Đo lường Việt Nam"),
            email="dcc@vmi.example",
            location=Location(city="Ha Noi", country_code="VN"),
        ),
        responsible_persons=(ResponsiblePerson(name=Text.of("Nguyễn Văn An"), main_signer=True),),
        customer=Contact(
            name=Text.of("Example Calibration Lab Co."),
            email="lab@example.vn",
            location=Location(city="Da Nang", country_code="VN"),
        ),
        statements=statements,
        measurement_results=(
            MeasurementResult(
                name=Text.of(en="Temperature", vi="Nhiệt độ"),
                results=(
                    Result(
                        name=Text.of(en="Calibration table", vi="Bảng hiệu chuẩn"), lists=(table,)
                    ),
                ),
            ),
        ),
    )


def prt_dcc(number: str, curve: ErrorCurve, **options: object) -> bytes:
    """:func:`prt_certificate` as DCC 3.1.2 XML (validated against the shipped schema)."""
    return dcc.build(prt_certificate(number, curve, **options))  # type: ignore[arg-type]
