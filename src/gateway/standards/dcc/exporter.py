"""DCC export: a DCC 3.1.2 document rebuilt from the registry rows alone (an imported
certificate's measurement results from its points; a typed-in one from its value, conditions and
this lab's identity), signed with the lab's key when configured."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from gateway.standards.config import DccConfig, DccLabConfig
from gateway.standards.errors import InvalidInput, NotFound
from gateway.standards.registry import (
    CertificatePoint,
    CertificateRecord,
    Registry,
    StandardRecord,
)
from metrology import dcc, units


def point_value(point: CertificatePoint) -> dcc.Value:
    """A registered point's value as the DCC model holds it."""
    uncertainty = None
    if point.expanded_uncertainty is not None:
        uncertainty = dcc.ExpandedUncertainty(
            value=point.expanded_uncertainty,
            coverage_factor=point.coverage_factor,
            coverage_probability=point.coverage_probability,
            distribution=point.distribution,
        )
    return dcc.Value.model_validate(
        {
            "value": point.value,
            "unit": point.dsi_unit,
            "label": point.label,
            "date_time": point.date_time,
            "uncertainty": uncertainty,
            "coverage_interval": point.coverage_interval,
        }
    )


def _text(data: dict[str, Any] | None) -> dcc.Text | None:
    return None if data is None else dcc.Text.model_validate(data)


def _influence(condition: dcc.Condition) -> dcc.InfluenceCondition:
    return dcc.InfluenceCondition(
        name=condition.name or dcc.Text.of(en="Condition", vi="Điều kiện"),
        ref_types=condition.ref_types,
        quantities=(dcc.Quantity(values=(condition.value,)),),
    )


_PATH = re.compile(
    r"^measurementResult\[(\d+)\]/result\[(\d+)\]((?:/list\[\d+\])*)/quantity\[(\d+)\]"
)


def _results_from_points(
    points: Sequence[CertificatePoint], context: dict[str, Any] | None
) -> list[dcc.MeasurementResult]:
    """The measurement results the points came from, rebuilt: each table's result columns in
    their places, their ``column`` conditions as the other columns, their ``influence``
    conditions on each result column (points() reads them back in the same order)."""
    tree: dict[int, dict[int, dict[str, list[CertificatePoint]]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(list))
    )
    for point in points:
        match = _PATH.match(point.path)
        if match is None:
            raise InvalidInput(f"point {point.position}: its path {point.path!r} is not a DCC's")
        m, r, where = int(match.group(1)), int(match.group(2)), match.group(3)
        tree[m][r][where].append(point)
    stored = (context or {}).get("measurement_results", [])
    measurements = []
    for m in range(1, max([*tree, len(stored)], default=0) + 1):
        mr_context = stored[m - 1] if m - 1 < len(stored) else {}
        results_context = mr_context.get("results", [])
        results = []
        for r in range(1, max([*tree.get(m, {}), len(results_context)], default=0) + 1):
            r_context = results_context[r - 1] if r - 1 < len(results_context) else {}
            tables = tree.get(m, {}).get(r, {})
            first = next((t[0] for t in tables.values() if t), None)
            quantities: tuple[dcc.Quantity, ...] = ()
            lists: list[dcc.QuantityList] = []
            for list_path, members in sorted(tables.items(), key=lambda t: _list_key(t[0])):
                columns = _columns(members)
                if not list_path:
                    quantities = columns
                else:
                    lists.append(_nest(list_path, columns))
            name = r_context.get("name") or (first.result if first else None)
            results.append(
                dcc.Result.model_validate(
                    {
                        **{k: v for k, v in r_context.items() if k != "name"},
                        "name": name or dcc.Text.of(en="Result", vi="Kết quả"),
                        "quantities": quantities,
                        "lists": _merge_lists(lists),
                    }
                )
            )
        first_point = next(
            (p for tables in tree.get(m, {}).values() for t in tables.values() for p in t), None
        )
        name = mr_context.get("name") or (first_point.measurement_result if first_point else None)
        measurements.append(
            dcc.MeasurementResult.model_validate(
                {
                    **{k: v for k, v in mr_context.items() if k not in ("name", "results")},
                    "name": name or dcc.Text.of(en="Measurement", vi="Phép đo"),
                    "results": results,
                }
            )
        )
    return measurements


def _condition(stored: dict[str, Any]) -> dcc.Condition:
    return dcc.Condition.model_validate({k: v for k, v in stored.items() if k != "symbol"})


def _list_key(list_path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\[(\d+)\]", list_path))


def _columns(members: list[CertificatePoint]) -> tuple[dcc.Quantity, ...]:
    """One table: the result columns at their positions, the condition columns in the others."""
    by_column: dict[int, list[CertificatePoint]] = defaultdict(list)
    for point in members:
        match = _PATH.match(point.path)
        assert match is not None
        by_column[int(match.group(4))].append(point)
    width = max(by_column)
    sample = next(iter(by_column.values()))
    condition_columns: list[dcc.Quantity] = []
    column_conditions = [
        [_condition(c) for c in point.conditions if c["source"] == "column"] for point in sample
    ]
    for index in range(len(column_conditions[0]) if column_conditions else 0):
        cells = [row[index] for row in column_conditions]
        condition_columns.append(
            dcc.Quantity(
                name=cells[0].name,
                ref_types=cells[0].ref_types,
                values=tuple(cell.value for cell in cells),
            )
        )
    columns: list[dcc.Quantity] = []
    free = iter(condition_columns)
    for position in range(1, max(width, len(by_column) + len(condition_columns)) + 1):
        points = by_column.get(position)
        if points is None:
            column = next(free, None)
            if column is not None:
                columns.append(column)
            continue
        influences = tuple(
            _influence(_condition(c)) for c in points[0].conditions if c["source"] == "influence"
        )
        columns.append(
            dcc.Quantity(
                name=_text(points[0].quantity),
                ref_types=tuple(points[0].ref_types),
                values=tuple(point_value(point) for point in points),
                influence_conditions=influences,
            )
        )
    columns += list(free)
    return tuple(columns)


def _nest(list_path: str, columns: tuple[dcc.Quantity, ...]) -> dcc.QuantityList:
    """A table under ``/list[a]/list[b]…``: a list of quantities, wrapped once per level."""
    depth = list_path.count("/list[")
    table = dcc.QuantityList(quantities=columns)
    for _ in range(depth - 1):
        table = dcc.QuantityList(lists=(table,))
    return table


def _merge_lists(lists: list[dcc.QuantityList]) -> list[dcc.QuantityList]:
    """Rows of a list of lists (nested tables) under one outer list, in order."""
    flat = [table for table in lists if table.quantities]
    nested = [table for table in lists if table.lists]
    if nested:
        flat.append(dcc.QuantityList(lists=tuple(row for table in nested for row in table.lists)))
    return flat


def _typed_in(
    certificate: CertificateRecord, standard: StandardRecord, lab: DccLabConfig | None
) -> dict[str, Any]:
    """The DCC fields of a certificate that was typed in (not imported): this lab issued it."""
    if lab is None:
        raise InvalidInput(
            "standards.dcc.laboratory is not configured: a DCC needs the issuing lab's identity"
        )
    if certificate.issuer.casefold() not in {lab.name.casefold(), (lab.code or "").casefold()}:
        raise InvalidInput(
            f"certificate {certificate.number} was issued by {certificate.issuer}, not this lab "
            f"({lab.name}), and was not imported from a DCC: its issuer's identity is unknown"
        )
    serial = standard.serial
    identification = (
        dcc.Identification(
            issuer="manufacturer", value=serial, name=dcc.Text.of(en="Serial number", vi="Số sê-ri")
        )
        if serial
        else dcc.Identification(
            issuer="owner", value=standard.id, name=dcc.Text.of(en="Identifier", vi="Mã nhận dạng")
        )
    )
    item = dcc.Item(
        name=dcc.Text.of(standard.description or standard.id),
        manufacturer=dcc.Text.of(standard.manufacturer or "-"),
        model=standard.model,
        identifications=(identification,),
    )
    laboratory = dcc.Laboratory.of(lab)
    day = dt.date.fromisoformat(certificate.calibration_date[:10])
    statements = []
    if certificate.due_date:
        statements.append(
            dcc.Statement(
                ref_types=("basic_recalibration",),
                declaration=dcc.Text.of(en="Recalibration is due by", vi="Hạn hiệu chuẩn lại"),
                date=dt.date.fromisoformat(certificate.due_date[:10]),
            )
        )
    persons = tuple(
        dcc.ResponsiblePerson(
            name=dcc.Text.of(person.name),
            email=person.email,
            role=person.role,
            main_signer=person.main_signer or None,
        )
        for person in lab.responsible_persons
    )
    return {
        "unique_identifier": certificate.number,
        "country_code": lab.country_code,
        "begin_performance_date": day,
        "end_performance_date": day,
        "items": (item,),
        "laboratory": laboratory,
        "responsible_persons": persons,
        "customer": dcc.Contact(
            name=dcc.Text.of(standard.owner_lab), email=lab.email, location=dcc.Location.of(lab)
        ),
        "statements": tuple(statements),
    }


def _typed_in_results(
    certificate: CertificateRecord, standard: StandardRecord
) -> list[dcc.MeasurementResult]:
    try:
        unit = units.symbol_to_dsi(standard.unit)
    except dcc.UnsupportedUnit as exc:
        raise InvalidInput(f"standard {standard.id}: unit {standard.unit!r}: {exc}") from None
    conditions = []
    given = certificate.conditions
    for number, dsi, ref, en, vi in (
        (given.temperature_c, r"\degreecelsius", "basic_temperature", "Temperature", "Nhiệt độ"),
        (given.humidity_rh, r"\percent", "basic_humidityRelative", "Relative humidity",
         "Độ ẩm tương đối"),
        (given.pressure_hpa, r"\hecto\pascal", "basic_pressure", "Pressure", "Áp suất"),
    ):  # fmt: skip
        if number is not None:
            conditions.append(
                dcc.InfluenceCondition(
                    name=dcc.Text.of(en=en, vi=vi),
                    ref_types=(ref,),
                    quantities=(dcc.Quantity(values=(dcc.Value(value=repr(number), unit=dsi),)),),
                )
            )
    equipment = tuple(
        dcc.MeasuringEquipment(
            name=dcc.Text.of(node.standard),
            description=dcc.Text.of(
                en=node.lab + (f", certificate {node.certificate}" if node.certificate else ""),
                vi=node.lab + (f", giấy chứng nhận {node.certificate}" if node.certificate else ""),
            ),
        )
        for node in certificate.traceable_to
    )  # fmt: skip
    value = dcc.Value(
        value=certificate.value_text,
        unit=unit,
        uncertainty=dcc.ExpandedUncertainty(
            value=certificate.expanded_uncertainty_text,
            coverage_factor=certificate.coverage_factor_text,
            coverage_probability=certificate.coverage_probability or "0.95",
        ),
    )
    return [
        dcc.MeasurementResult(
            name=dcc.Text.of(en="Calibration", vi="Hiệu chuẩn"),
            measuring_equipments=equipment,
            influence_conditions=tuple(conditions),
            results=(
                dcc.Result(
                    name=dcc.Text.of(en="Certified value", vi="Giá trị chứng nhận"),
                    quantities=(
                        dcc.Quantity(
                            name=dcc.Text.of(en="Value", vi="Giá trị"),
                            ref_types=("basic_measuredValue",),
                            values=(value,),
                        ),
                    ),
                ),
            ),
        )
    ]


def rebuild(certificate: CertificateRecord, standard: StandardRecord, config: DccConfig) -> dcc.Dcc:
    """The DCC model of a registered certificate, from the registry rows alone."""
    if certificate.dcc is not None and certificate.points:
        fields = {k: v for k, v in certificate.dcc.items() if k != "measurement_results"}
        results = _results_from_points(certificate.points, certificate.dcc)
        return dcc.Dcc.model_validate({**fields, "measurement_results": results})
    fields = _typed_in(certificate, standard, config.laboratory)
    return dcc.Dcc.model_validate(
        {**fields, "measurement_results": _typed_in_results(certificate, standard)}
    )


def _signer(config: DccConfig) -> dict[str, Any] | None:
    signing = config.signing
    if signing is None:
        return None
    try:
        key = signing.key_file.read_bytes()
        chain = [
            signing.certificate_file.read_bytes(),
            *(p.read_bytes() for p in signing.chain_files),
        ]
        password = signing.password.resolve().encode() if signing.password else None
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"standards.dcc.signing: {exc}") from None
    return {"key": key, "certificates": chain, "password": password, "xades": signing.xades}


async def export_dcc(
    registry: Registry,
    standard_id: str,
    certificate_id: int | None,
    config: DccConfig,
) -> tuple[CertificateRecord, bytes]:
    """A DCC 3.1.2 document of a certificate (the latest when ``certificate_id`` is None),
    signed when ``standards.dcc.signing`` is configured."""
    standard = await registry.standard(standard_id)
    if certificate_id is None:
        if not standard.certificates:
            raise NotFound(f"standard {standard_id} has no certificate")
        certificate = standard.certificates[-1]
    else:
        certificate = await registry.certificate(standard_id, certificate_id)
    document = rebuild(certificate, standard, config)
    data = await asyncio.to_thread(dcc.build, document)
    signer = _signer(config)
    if signer is not None:
        try:
            data = await asyncio.to_thread(
                lambda: dcc.sign(
                    data,
                    key=signer["key"],
                    certificates=signer["certificates"],
                    password=signer["password"],
                    xades=signer["xades"],
                )
            )
        except dcc.SignatureError as exc:
            raise InvalidInput(f"standards.dcc.signing: {exc}") from None
    return certificate, data
