"""A calibration run as a Digital Calibration Certificate (DCC 3.1.2).

:func:`record_to_dcc` maps a :class:`~metrology.certificate.record.CalibrationRecord` onto the
DCC model; :func:`build_dcc` writes it (validated against the shipped XSD by
:func:`metrology.dcc.build`). Signing is the caller's: ``metrology.dcc.sign(document, …)``.

=================================  ==========================================================
DCC                                record
=================================  ==========================================================
coreData/uniqueIdentifier          ``run``
coreData/identifications           the procedure (id and version) and the record's SHA-256
begin/endPerformanceDate           ``started_ns`` / ``finished_ns`` (UTC dates)
performanceLocation                laboratory
items/item                         the unit under test: description, manufacturer and model
                                   (as it identified itself, else as declared), serial number
calibrationLaboratory              ``laboratory``
respPersons                        ``operator``
customer                           ``customer`` (else the laboratory: an internal calibration)
statements                         the results' scope; the decision rule; the reference's
                                   certificate; notes
measurementResult/usedMethods      GUM (uncertainty, k for ν_eff at p), ILAC-G8 (decision rule),
                                   the procedure
measuringEquipments                the reference (its certificate: number, issuer, and the DCC's
                                   SHA-256 where it came from one) and the other instruments
influenceConditions                mean temperature and humidity of the run
results/result/list (a table)      per measured point: nominal value, reference value,
                                   indication, error with U, k and p (rounded by the GUM's
                                   rules), the MPE, and the conformity per point
                                   (``basic_conformity``)
results/result (text)              the points that could not be measured, with the reason
=================================  ==========================================================
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_EVEN, Decimal

from metrology import dcc as dcc
from metrology import units
from metrology.certificate.labels import certificate_line, word
from metrology.certificate.record import CalibrationRecord, PointResult

_CONFORMITY = {
    "pass": "pass",
    "conditional_pass": "conditionalPass",
    "conditional_fail": "conditionalFail",
    "fail": "fail",
}


def _both(key: str, **values: object) -> dcc.Text:
    return dcc.Text.of(en=word(key, "en", **values), vi=word(key, "vi", **values))


def _date(ns: int) -> dt.date:
    return dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC).date()


def _same_place(value: float, place: Decimal) -> str:
    """A float to the decimal place of a rounded result (its exact shortest text first)."""
    return str(Decimal(repr(value)).quantize(place, rounding=ROUND_HALF_EVEN))


def _item(record: CalibrationRecord) -> dcc.Item:
    uut = record.uut
    said = uut.identity_end or uut.identity_start
    manufacturer = said.get("manufacturer") or uut.declared.get("manufacturer") or "—"
    model = said.get("model") or uut.declared.get("model")
    serial = said.get("serial") or uut.declared.get("serial") or "—"
    identifications = [
        dcc.Identification(
            issuer="manufacturer",
            value=serial,
            name=dcc.Text.of(en="Serial number", vi="Số sê-ri"),
        )
    ]
    for key, value in sorted(uut.declared.items()):
        if key in ("serial", "manufacturer", "model"):
            continue
        identifications.append(
            dcc.Identification(issuer="customer", value=value, name=dcc.Text.of(en=key, vi=key))
        )
    return dcc.Item(
        name=dcc.Text.of(en=uut.description, vi=uut.description),
        description=dcc.Text.of(
            en=f"{uut.specification} (instrument {uut.instrument}, channel {uut.channel})",
            vi=f"{uut.specification} (thiết bị {uut.instrument}, kênh {uut.channel})",
        ),
        manufacturer=dcc.Text.of(manufacturer),
        model=model,
        identifications=tuple(identifications),
    )


def _equipment(record: CalibrationRecord) -> tuple[dcc.MeasuringEquipment, ...]:
    reference = record.reference
    certificate = None
    info = reference.certificate
    if info is not None:
        certificate = dcc.CertificateReference(
            referral=dcc.Text.of(
                en=f"Certificate {info.number} issued by {info.issuer} on "
                f"{info.calibration_date.isoformat()}",
                vi=f"Giấy chứng nhận {info.number} do {info.issuer} cấp ngày "
                f"{info.calibration_date.isoformat()}",
            ),
            referral_id=info.number,
            procedure="SHA-256" if info.dcc_sha256 else "none",
            value=info.dcc_sha256 or "-",
        )
    equipments = [
        dcc.MeasuringEquipment(
            name=dcc.Text.of(en=reference.description, vi=reference.description),
            description=dcc.Text.of(
                en=f"Reference ({reference.kind} {reference.name}); value in use: "
                f"{reference.value_from}",
                vi=f"Chuẩn ({reference.kind} {reference.name}); giá trị sử dụng: "
                f"{reference.value_from}",
            ),
            ref_types=("basic_normalUsed",),
            certificate=certificate,
        )
    ]
    for instrument in record.instruments:
        if instrument.role == "reference":
            continue
        identity = instrument.identity
        identifications: tuple[dcc.Identification, ...] = ()
        if identity.get("serial"):
            identifications = (
                dcc.Identification(
                    issuer="manufacturer",
                    value=identity["serial"],
                    name=dcc.Text.of(en="Serial number", vi="Số sê-ri"),
                ),
            )
        equipments.append(
            dcc.MeasuringEquipment(
                name=dcc.Text.of(
                    en=f"{instrument.name} ({word('report.role.' + instrument.role, 'en')})",
                    vi=f"{instrument.name} ({word('report.role.' + instrument.role, 'vi')})",
                ),
                manufacturer=dcc.Text.of(identity["manufacturer"])
                if identity.get("manufacturer")
                else None,
                model=identity.get("model") or None,
                identifications=identifications,
            )
        )
    return tuple(equipments)


def _conditions(record: CalibrationRecord) -> tuple[dcc.InfluenceCondition, ...]:
    out = []
    for stats in record.environment:
        ref = "basic_temperature" if stats.quantity == "temperature" else "basic_humidityRelative"
        symbol = "°C" if stats.quantity == "temperature" else "%"
        unit = stats.unit if stats.quantity == "temperature" else "%"
        try:
            units.symbol_to_dsi(unit)
        except dcc.UnsupportedUnit:
            unit = symbol
        out.append(
            dcc.InfluenceCondition(
                name=_both(f"report.{stats.quantity}"),
                description=_both(
                    "report.env.line",
                    mean=f"{stats.mean:.2f}",
                    unit=stats.unit,
                    minimum=f"{stats.minimum:.2f}",
                    maximum=f"{stats.maximum:.2f}",
                    n=stats.n,
                ),
                ref_types=(ref,),
                quantities=(dcc.Quantity(values=(dcc.Value.of(f"{stats.mean:.2f}", unit),)),),
            )
        )
    return tuple(out)


def _table(points: tuple[PointResult, ...], unit: str) -> dcc.QuantityList:
    nominal, reference, indication, error, mpe, conformity = [], [], [], [], [], []
    dsi = units.symbol_to_dsi(unit)
    for p in points:
        assert p.rounded is not None and p.budget is not None
        assert p.reference_value is not None and p.indication is not None
        place = Decimal(1).scaleb(p.rounded.value.as_tuple().exponent)  # type: ignore[arg-type]
        nominal.append(dcc.Value.of(p.nominal, unit))
        reference.append(dcc.Value(value=_same_place(p.reference_value, place), unit=dsi))
        indication.append(dcc.Value(value=_same_place(p.indication, place), unit=dsi))
        k = p.rounded.coverage_factor
        probability = p.rounded.coverage_probability
        assert k is not None and probability is not None
        error.append(
            dcc.Value(
                value=str(p.rounded.value),
                unit=dsi,
                uncertainty=dcc.ExpandedUncertainty(
                    value=str(p.rounded.expanded_uncertainty),
                    coverage_factor=str(k),
                    coverage_probability=str(probability),
                ),
            )
        )
        if p.tolerance is not None:
            mpe.append(dcc.Value.of(f"{p.tolerance.mpe:.6g}", unit))
        conformity.append(_CONFORMITY[p.verdict.decision] if p.verdict else "noPass")
    columns = [
        dcc.Quantity(
            name=_both("report.col.nominal"), ref_types=("basic_nominalValue",),
            values=tuple(nominal),
        ),
        dcc.Quantity(
            name=_both("report.col.reference"), ref_types=("basic_referenceValue",),
            values=tuple(reference),
        ),
        dcc.Quantity(
            name=_both("report.col.indication"), ref_types=("basic_measuredValue",),
            values=tuple(indication),
        ),
        dcc.Quantity(
            name=_both("report.plot.error"),
            ref_types=("basic_measurementError",),
            values=tuple(error),
            metadata=(
                dcc.Statement(
                    ref_types=("basic_conformity",),
                    declaration=_both("report.col.decision"),
                    conformity=tuple(conformity),
                ),
            ),
        ),
    ]  # fmt: skip
    if len(mpe) == len(points):
        columns.append(
            dcc.Quantity(
                name=_both("report.col.mpe"),
                ref_types=("basic_toleranceLimit",),
                values=tuple(mpe),
            )
        )
    return dcc.QuantityList(
        name=dcc.Text.of(en=f"Calibration table ({unit})", vi=f"Bảng hiệu chuẩn ({unit})"),
        ref_types=("basic_table",),
        quantities=tuple(columns),
    )


def record_to_dcc(record: CalibrationRecord, record_sha256: str | None = None) -> dcc.Dcc:
    """The DCC model of a run (see the module doc)."""
    rule = record.decision_rule
    statements = [
        dcc.Statement(
            norms=("ISO/IEC 17025:2017",),
            references=("7.8.4",),
            declaration=_both("report.statement"),
        ),
        dcc.Statement(
            ref_types=("basic_decisionRule",),
            norms=("ILAC-G8:09/2019",),
            declaration=dcc.Text.of(
                en=f"{word(rule.kind, 'en')}: {rule.describe()}",
                vi=f"{word(rule.kind, 'vi')}: {rule.describe()}",
            ),
        ),
    ]
    certificate = record.reference.certificate
    if certificate is not None:
        line = {
            lang: certificate_line(certificate, lang)
            + (f" — {word('report.certificate.expired', lang)}" if certificate.expired else "")
            for lang in ("en", "vi")
        }
        statements.append(
            dcc.Statement(
                ref_types=("basic_traceability",),
                traceable=True,
                declaration=dcc.Text.of(en=line["en"], vi=line["vi"]),
                valid=not certificate.expired,
            )
        )
    for note in record.notes:
        statements.append(dcc.Statement(declaration=dcc.Text.of(en=note, vi=note)))
    ok = record.ok_points()
    results = []
    by_unit: dict[str, list[PointResult]] = {}
    for point in ok:
        by_unit.setdefault(point.unit, []).append(point)
    if by_unit:
        results.append(
            dcc.Result(
                name=_both("report.results"),
                ref_types=("basic_calibrationResult",),
                lists=tuple(_table(tuple(ps), u) for u, ps in by_unit.items()),
            )
        )
    failed = [p for p in record.points if p.status != "ok"]
    if failed:
        results.append(
            dcc.Result(
                name=_both("report.decision.incomplete"),
                texts=tuple(
                    dcc.Text.of(
                        en=f"{p.nominal:g} {p.unit}: "
                        + word("report.failed", "en", reason=p.reason or ""),
                        vi=f"{p.nominal:g} {p.unit}: "
                        + word("report.failed", "vi", reason=p.reason or ""),
                    )
                    for p in failed
                ),
            )
        )
    identifications = [
        dcc.Identification(
            issuer="calibrationLaboratory",
            value=f"{record.procedure.id} {record.procedure.version}",
            name=dcc.Text.of(en="Procedure", vi="Quy trình"),
        )
    ]
    if record_sha256 is not None:
        identifications.append(
            dcc.Identification(
                issuer="calibrationLaboratory",
                value=record_sha256,
                name=dcc.Text.of(en="Record SHA-256", vi="SHA-256 của hồ sơ"),
            )
        )
    p = f"{record.coverage_probability * 100:.2f}"
    measurement = dcc.MeasurementResult(
        name=dcc.Text.of(
            en=f"Calibration of {record.uut.description}",
            vi=f"Hiệu chuẩn {record.uut.description}",
        ),
        used_methods=(
            dcc.UsedMethod(
                name=dcc.Text.of(en="Expanded uncertainty", vi="Độ không đảm bảo đo mở rộng"),
                description=_both("report.coverage", p=p),
                ref_types=("basic_uncertainty",),
                norms=("JCGM 100:2008", "EA-4/02 M:2022"),
            ),
            dcc.UsedMethod(
                name=_both("report.decision_rule"),
                description=dcc.Text.of(en=rule.describe(), vi=rule.describe()),
                ref_types=("basic_conformity",),
                norms=("ILAC-G8:09/2019",),
            ),
            dcc.UsedMethod(
                name=_both("report.procedure"),
                description=dcc.Text.of(
                    en=f"{record.procedure.title} (SHA-256 {record.procedure.sha256})",
                    vi=f"{record.procedure.title} (SHA-256 {record.procedure.sha256})",
                ),
            ),
        ),
        measuring_equipments=_equipment(record),
        influence_conditions=_conditions(record),
        results=tuple(results)
        or (dcc.Result(name=_both("report.results"), texts=(_both("report.none"),)),),
    )
    customer = record.customer or record.laboratory
    return dcc.Dcc(
        unique_identifier=record.run,
        country_code=record.laboratory.country_code,
        identifications=tuple(identifications),
        begin_performance_date=_date(record.started_ns),
        end_performance_date=_date(record.finished_ns),
        performance_location="laboratory",
        issue_date=_date(record.finished_ns),
        items=(_item(record),),
        laboratory=dcc.Laboratory.of(record.laboratory),
        responsible_persons=(
            dcc.ResponsiblePerson(
                name=dcc.Text.of(record.operator), role="operator", main_signer=True
            ),
        ),
        customer=dcc.Contact.of(customer),
        statements=tuple(statements),
        measurement_results=(measurement,),
    )


def build_dcc(record: CalibrationRecord, record_sha256: str | None = None) -> bytes:
    """The DCC 3.1.2 document of a run (UTF-8 XML, valid against the shipped XSD)."""
    from metrology.dcc import build

    return build(record_to_dcc(record, record_sha256))
