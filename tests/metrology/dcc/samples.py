"""Certificates the tests build: the shapes a lab issues and receives.

- ``single``: one 10 V reference value with U, k, p;
- ``zener``: a Zener reference at its 1.018 V and 10 V outputs (two results);
- ``resistor``: a 100 Ω standard resistor measured at three currents (a table: current →
  resistance with U), ambient conditions as influence conditions;
- ``instrument_table``: a DMM's calibration table — reference value, indication, error with U at
  each point, conformity per point — the shape issue 19 applies as corrections.
"""

from __future__ import annotations

import datetime as dt

from metrology.dcc import (
    CertificateReference,
    Contact,
    Dcc,
    ExpandedUncertainty,
    Identification,
    InfluenceCondition,
    Item,
    Laboratory,
    Location,
    MeasurementResult,
    MeasuringEquipment,
    Quantity,
    QuantityList,
    ResponsiblePerson,
    Result,
    Software,
    Statement,
    Text,
    UsedMethod,
    Value,
)


def laboratory() -> Laboratory:
    return Laboratory(
        code="VILAS 001",
        name=Text.of(en="Vietnam Metrology Institute", vi="Viện Đo lường Việt Nam"),
        email="dcc@vmi.example",
        phone="+84 24 3836 3242",
        location=Location(
            street="Hoang Quoc Viet",
            street_no="8",
            city="Ha Noi",
            post_code="100000",
            country_code="VN",
        ),
    )


def customer() -> Contact:
    return Contact(
        name=Text.of("Example Calibration Lab Co."),
        email="lab@customer.example",
        location=Location(city="Da Nang", country_code="VN"),
    )


def person() -> ResponsiblePerson:
    return ResponsiblePerson(
        name=Text.of("Nguyễn Văn An"),
        role="Head of the electrical laboratory",
        main_signer=True,
    )


def serial(value: str) -> Identification:
    return Identification(
        issuer="manufacturer", value=value, name=Text.of(en="Serial number", vi="Số sê-ri")
    )


def gum_method() -> UsedMethod:
    return UsedMethod(
        name=Text.of(en="Expanded uncertainty", vi="Độ không đảm bảo đo mở rộng"),
        description=Text.of(
            en="The expanded uncertainty is the standard uncertainty multiplied by k = 2 "
            "(coverage probability about 95 %), evaluated according to the GUM.",
            vi="Độ không đảm bảo đo mở rộng là độ không đảm bảo chuẩn nhân với k = 2 "
            "(xác suất phủ khoảng 95 %), đánh giá theo GUM.",
        ),
        ref_types=("basic_uncertainty",),
        norms=("JCGM 100:2008",),
    )


def ambient(temperature: str = "23.0", humidity: str = "45") -> tuple[InfluenceCondition, ...]:
    return (
        InfluenceCondition(
            name=Text.of(en="Ambient temperature", vi="Nhiệt độ môi trường"),
            ref_types=("basic_temperature",),
            quantities=(
                Quantity(
                    name=Text.of(en="Temperature", vi="Nhiệt độ"),
                    values=(
                        Value.of(temperature, "°C", uncertainty="0.5", k="2", probability="0.95"),
                    ),
                ),
            ),
        ),
        InfluenceCondition(
            name=Text.of(en="Relative humidity", vi="Độ ẩm tương đối"),
            ref_types=("basic_humidityRelative",),
            quantities=(Quantity(values=(Value.of(humidity, "%"),)),),
        ),
    )


def recalibration(on: dt.date) -> Statement:
    return Statement(
        ref_types=("basic_recalibration",),
        declaration=Text.of(en="Recalibration is due by", vi="Hạn hiệu chuẩn lại"),
        date=on,
    )


def _base(identifier: str, item: Item, results: tuple[MeasurementResult, ...]) -> Dcc:
    return Dcc(
        unique_identifier=identifier,
        country_code="VN",
        identifications=(
            Identification(
                issuer="calibrationLaboratory",
                value="ORD-2026-0142",
                name=Text.of(en="Order number", vi="Số đơn hàng"),
            ),
        ),
        receipt_date=dt.date(2026, 3, 2),
        begin_performance_date=dt.date(2026, 3, 3),
        end_performance_date=dt.date(2026, 3, 5),
        issue_date=dt.date(2026, 3, 9),
        # pinned, so that the golden documents do not change with etalon's version
        software=(Software(name=Text.of("etalon"), release="test", type="application"),),
        items=(item,),
        laboratory=laboratory(),
        responsible_persons=(person(),),
        customer=customer(),
        statements=(
            Statement(
                norms=("ISO/IEC 17025:2017",),
                references=("7.8.4.3",),
                declaration=Text.of(
                    en="The results refer only to the item calibrated.",
                    vi="Các kết quả chỉ áp dụng cho đối tượng được hiệu chuẩn.",
                ),
            ),
            Statement(
                ref_types=("basic_traceability",),
                traceable=True,
                declaration=Text.of(
                    en="Traceable to the national standards of Viet Nam.",
                    vi="Liên kết chuẩn tới chuẩn quốc gia Việt Nam.",
                ),
            ),
            recalibration(dt.date(2027, 3, 5)),
        ),
        measurement_results=results,
    )


def single() -> Dcc:
    """A 10 V reference: one value with U, k and p."""
    item = Item(
        name=Text.of(en="DC voltage reference", vi="Chuẩn điện áp một chiều"),
        manufacturer=Text.of("Fluke"),
        model="732C",
        identifications=(serial("1234567"),),
    )
    result = MeasurementResult(
        name=Text.of(en="Output voltage", vi="Điện áp ra"),
        used_methods=(gum_method(),),
        influence_conditions=ambient(),
        results=(
            Result(
                name=Text.of(en="10 V output", vi="Đầu ra 10 V"),
                quantities=(
                    Quantity(
                        name=Text.of(en="Output voltage", vi="Điện áp ra"),
                        ref_types=("basic_measuredValue",),
                        values=(
                            Value.of(
                                "10.0000123",
                                "V",
                                uncertainty="0.0000008",
                                k="2",
                                probability="0.95",
                            ),
                        ),
                    ),
                ),
            ),
        ),
    )
    return _base("VMI-DCC-2026-0001", item, (result,))


def zener() -> Dcc:
    """A Zener reference at its 1.018 V and 10 V outputs."""
    item = Item(
        name=Text.of(en="Zener voltage reference", vi="Chuẩn điện áp Zener"),
        manufacturer=Text.of("Fluke"),
        model="732B",
        identifications=(
            serial("Z-98765"),
            Identification(
                issuer="customer", value="Z10-01", name=Text.of(en="Asset", vi="Mã tài sản")
            ),
        ),
    )

    def output(nominal: str, value: str, uncertainty: str) -> Result:
        return Result(
            name=Text.of(en=f"{nominal} V output", vi=f"Đầu ra {nominal} V"),
            quantities=(
                Quantity(
                    name=Text.of(en="Output voltage", vi="Điện áp ra"),
                    ref_types=("basic_measuredValue",),
                    values=(
                        Value.of(value, "V", uncertainty=uncertainty, k="2", probability="0.95"),
                    ),
                ),
            ),
        )

    result = MeasurementResult(
        name=Text.of(en="Output voltages", vi="Các điện áp ra"),
        used_methods=(gum_method(),),
        measuring_equipments=(
            MeasuringEquipment(
                name=Text.of(en="Josephson voltage standard", vi="Chuẩn điện áp Josephson"),
                ref_types=("basic_normalUsed",),
                certificate=CertificateReference(
                    referral=Text.of(en="JVS comparison", vi="So sánh JVS"),
                    referral_id="BIPM.EM-K10.b",
                    procedure="SHA-256",
                    value="0" * 64,
                ),
            ),
        ),
        influence_conditions=ambient("23.1", "41"),
        results=(
            output("1.018", "1.01800452", "0.00000011"),
            output("10", "9.99999921", "0.0000006"),
        ),
    )
    return _base("VMI-DCC-2026-0002", item, (result,))


def resistor() -> Dcc:
    """A 100 Ω standard resistor measured at 1 mA, 5 mA and 10 mA."""
    item = Item(
        name=Text.of(en="Standard resistor 100 Ω", vi="Điện trở chuẩn 100 Ω"),
        manufacturer=Text.of("Tinsley"),
        model="5685A",
        identifications=(serial("R100-4471"),),
    )
    table = QuantityList(
        name=Text.of(en="Resistance at each measuring current", vi="Điện trở ở mỗi dòng đo"),
        quantities=(
            Quantity(
                name=Text.of(en="Measuring current", vi="Dòng đo"),
                ref_types=("basic_nominalValue",),
                values=(
                    Value.of("1", "mA"),
                    Value.of("5", "mA"),
                    Value.of("10", "mA"),
                ),
            ),
            Quantity(
                name=Text.of(en="Resistance", vi="Điện trở"),
                ref_types=("basic_measuredValue",),
                values=(
                    Value.of("100.000213", "Ω", uncertainty="0.000040", k="2", probability="0.95"),
                    Value.of("100.000215", "Ω", uncertainty="0.000040", k="2", probability="0.95"),
                    Value.of("100.000221", "Ω", uncertainty="0.000045", k="2", probability="0.95"),
                ),
            ),
        ),
    )
    result = MeasurementResult(
        name=Text.of(en="Resistance", vi="Điện trở"),
        used_methods=(gum_method(),),
        influence_conditions=ambient("23.00", "45"),
        results=(Result(name=Text.of(en="Resistance", vi="Điện trở"), lists=(table,)),),
    )
    return _base("VMI-DCC-2026-0003", item, (result,))


def instrument_table() -> Dcc:
    """A DMM's 10 V range: reference value, indication, error with U, conformity per point."""
    item = Item(
        name=Text.of(en="Digital multimeter", vi="Đồng hồ vạn năng số"),
        manufacturer=Text.of("Keysight"),
        model="34465A",
        identifications=(serial("MY12345678"),),
    )
    references = ("-10", "-5", "0", "5", "10")
    indications = ("-10.00012", "-5.00005", "0.000002", "5.00007", "10.00015")
    errors = ("-0.00012", "-0.00005", "0.000002", "0.00007", "0.00015")
    table = QuantityList(
        name=Text.of(en="DC voltage, 10 V range", vi="Điện áp một chiều, thang 10 V"),
        ref_types=("basic_table",),
        quantities=(
            Quantity(
                name=Text.of(en="Reference value", vi="Giá trị chuẩn"),
                ref_types=("basic_referenceValue",),
                values=tuple(Value.of(v, "V") for v in references),
            ),
            Quantity(
                name=Text.of(en="Indication", vi="Số chỉ"),
                ref_types=("basic_measuredValue",),
                values=tuple(Value.of(v, "V") for v in indications),
            ),
            Quantity(
                name=Text.of(en="Measurement error", vi="Sai số"),
                ref_types=("basic_measurementError",),
                values=tuple(
                    Value(
                        value=v,
                        unit="\\volt",
                        uncertainty=ExpandedUncertainty(
                            value="0.000035", coverage_factor="2", coverage_probability="0.95"
                        ),
                    )
                    for v in errors
                ),
                metadata=(
                    Statement(
                        ref_types=("basic_conformity",),
                        declaration=Text.of(en="Conformity", vi="Sự phù hợp"),
                        conformity=("pass", "pass", "pass", "pass", "pass"),
                    ),
                ),
            ),
        ),
    )
    result = MeasurementResult(
        name=Text.of(en="DC voltage", vi="Điện áp một chiều"),
        used_methods=(gum_method(),),
        influence_conditions=ambient("23.2", "48"),
        results=(
            Result(name=Text.of(en="Calibration table", vi="Bảng hiệu chuẩn"), lists=(table,)),
        ),
    )
    return _base("VMI-DCC-2026-0004", item, (result,))


ALL = {
    "single": single,
    "zener": zener,
    "resistor": resistor,
    "instrument_table": instrument_table,
}
