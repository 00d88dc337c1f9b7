"""DCC import: a validated, signature-checked DCC extracted into registry rows (the points
with their exact decimal text, the certificate, the standard made from its item when new), the
original bytes kept byte for byte."""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import orjson
from pydantic import ValidationError

from gateway.standards.config import DccConfig
from gateway.standards.errors import InvalidInput, NotFound
from gateway.standards.models import (
    CertificateSpec,
    StandardSpec,
    TraceabilityNode,
)
from gateway.standards.registry import (
    CertificateExtras,
    NewCertificate,
    Registry,
    StandardRecord,
    insert_certificate,
    insert_standard,
    load_standard,
    load_standards,
    transaction,
)
from metrology import dcc, units
from metrology.dcc import (
    Dcc,
    Item,
    Point,
    SignatureVerdict,
)

MAX_DCC_BYTES = dcc.MAX_DCC_BYTES

_KINDS: list[tuple[str, str]] = [
    (r"\volt", "dc_voltage"),
    (r"\ampere", "dc_current"),
    (r"\ohm", "resistance"),
    (r"\farad", "capacitance"),
    (r"\henry", "inductance"),
    (r"\hertz", "frequency"),
    (r"\second", "time_interval"),
    (r"\kelvin", "temperature"),
    (r"\degreecelsius", "temperature"),
    (r"\pascal", "pressure"),
    (r"\bar", "pressure"),
    (r"\kilogram", "mass"),
    (r"\metre", "length"),
    (r"\newton", "force"),
    (r"\newton\metre", "torque"),
]


class SignatureRefused(InvalidInput):
    """The DCC's signature is invalid and was not accepted explicitly."""


@dataclass(frozen=True)
class DccImported:
    """What an import did."""

    standard: str
    certificate_id: int
    number: str
    issuer: str
    created_standard: bool
    points: int
    signature: SignatureVerdict


def _base(unit: str) -> list[Any]:
    return sorted(units.parse_dsi(unit).base())


def kind_of(unit: str, ref_types: Sequence[str] = ()) -> str:
    """The registry's kind of standard for values in a D-SI unit."""
    try:
        base = _base(unit)
    except dcc.UnsupportedUnit:
        return "other"
    for known, kind in _KINDS:
        if base == _base(known):
            return kind
    if unit == r"\percent" and any("humidity" in ref.lower() for ref in ref_types):
        return "humidity"
    return "other"


def nominal_of(value: str) -> float:
    """A nominal value for a standard made from a DCC: the certified value to 4 significant
    digits (10.0000123 V → 10.00 V, 1.01800452 V → 1.018 V, 100.000213 Ω → 100.0 Ω)."""
    number = Decimal(value)
    if number == 0:
        return 0.0
    exponent = number.adjusted() - 3
    return float(number.quantize(Decimal(1).scaleb(exponent)))


def standard_id_for(item: Item, taken: set[str]) -> str:
    """An id for a standard made from a DCC's item: its serial number (or model), made a name."""
    raw = item.serial_number or item.model or item.name.get("en")
    base = re.sub(r"[^A-Za-z0-9_.\-]+", "-", raw).strip("-._")[:56] or "dcc-item"
    if not base[0].isalnum():
        base = f"S{base}"
    candidate, number = base, 2
    while candidate in taken:
        candidate, number = f"{base}-{number}", number + 1
    return candidate


# -- points --------------------------------------------------------------------------------------


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json") if model is not None else None


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


def point_row(position: int, point: Point) -> dict[str, Any]:
    """A DCC point as its ``certificate_points`` row (JSON columns as text)."""
    value = point.value
    uncertainty = value.uncertainty
    try:
        symbol = value.symbol()
    except dcc.UnsupportedUnit as exc:
        raise InvalidInput(f"{point.path}: unit {value.unit!r} is not known here: {exc}") from None
    return {
        "position": position,
        "path": point.path,
        "measurement_result": _json(_dump(point.measurement_result)),
        "result": _json(_dump(point.result)),
        "quantity": _json(_dump(point.quantity)),
        "ref_types": _json(list(point.ref_types)),
        "row_index": point.row,
        "value": value.value,
        "unit": symbol,
        "dsi_unit": value.unit,
        "expanded_uncertainty": uncertainty.value if uncertainty else None,
        "coverage_factor": uncertainty.coverage_factor if uncertainty else None,
        "coverage_probability": uncertainty.coverage_probability if uncertainty else None,
        "distribution": uncertainty.distribution if uncertainty else None,
        "label": value.label,
        "date_time": value.date_time.isoformat() if value.date_time else None,
        "coverage_interval": _json(_dump(value.coverage_interval)),
        "conditions": _json([_dump(condition) for condition in point.conditions]),
    }


def dcc_fields(document: Dcc) -> dict[str, Any]:
    """What the registry keeps of a DCC besides its points: everything but the measured data
    (administrative data, item, laboratory, people, statements, and of each measurement result
    its methods, equipment and the names of its results)."""
    fields: dict[str, Any] = document.model_dump(
        mode="json",
        exclude={"software", "not_extracted", "schema_version", "measurement_results"},
    )
    fields["measurement_results"] = [
        {
            **measurement.model_dump(mode="json", exclude={"results", "influence_conditions"}),
            "results": [
                result.model_dump(mode="json", exclude={"quantities", "lists"})
                for result in measurement.results
            ],
        }
        for measurement in document.measurement_results
    ]
    return fields


def _decimal(text: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation:
        raise InvalidInput(f"{text!r} is not a decimal number") from None


def _scaled(text: str, factor: Decimal) -> str:
    """``text`` × ``factor``, exact, written as a plain decimal."""
    if factor == 1:
        return text
    product = _decimal(text) * factor
    return format(product, "f") if -30 < product.adjusted() < 30 else str(product)


def _main_point(points: Sequence[Point], standard: StandardRecord | None) -> tuple[Point, Decimal]:
    """The point that is the certificate's value for the standard, and the factor to the
    standard's unit: for a registered standard, the one in its unit nearest its nominal value;
    for a new one, the largest of the first point's unit."""
    measured = [p for p in points if p.value.uncertainty is not None] or list(points)
    if standard is None:
        unit = measured[0].value.unit
        same = [p for p in measured if p.value.unit == unit]
        return max(same, key=lambda p: abs(p.value.decimal())), Decimal(1)
    try:
        target = units.symbol_to_dsi(standard.unit)
    except dcc.UnsupportedUnit as exc:
        raise InvalidInput(f"standard {standard.id}: its unit {standard.unit!r}: {exc}") from None
    candidates: list[tuple[Point, Decimal]] = []
    for point in measured:
        try:
            candidates.append((point, units.scale_factor(point.value.unit, target)))
        except dcc.UnsupportedUnit:
            continue
    if not candidates:
        found = sorted({p.value.unit for p in measured})
        raise InvalidInput(
            f"the DCC's results are in {', '.join(found)}; standard {standard.id} is in "
            f"{standard.unit}: none converts"
        )
    nominal = Decimal(repr(standard.nominal))
    return min(candidates, key=lambda c: abs(c[0].value.decimal() * c[1] - nominal))


def _conditions(point: Point) -> dict[str, Any]:
    """Temperature and humidity of the certificate's conditions, from its main point."""
    found: dict[str, Any] = {}
    for condition in point.conditions:
        refs, value = condition.ref_types, condition.value
        if "basic_temperature" in refs and "temperature_c" not in found:
            if any(r in refs for r in ("basic_temperatureMin", "basic_temperatureMax")):
                continue
            number = value.decimal()
            if value.unit == r"\kelvin":
                found["temperature_c"] = float(number - Decimal("273.15"))
            elif value.unit == r"\degreecelsius":
                found["temperature_c"] = float(number)
        elif (
            "basic_humidityRelative" in refs
            and value.unit == r"\percent"
            and 0 <= value.decimal() <= 100
            and "humidity_rh" not in found
        ):
            found["humidity_rh"] = float(value.decimal())
    return found


def _traceable(document: Dcc, issuer: str) -> list[TraceabilityNode]:
    nodes = []
    for measurement in document.measurement_results:
        for equipment in measurement.measuring_equipments:
            reference = equipment.certificate
            nodes.append(
                TraceabilityNode(
                    lab=issuer,
                    standard=equipment.name.get("en")[:200],
                    certificate=reference.referral_id[:200] if reference else None,
                )
            )
    return nodes


@dataclass(frozen=True)
class Plan:
    """What an import writes: maybe a standard, the certificate and its extras."""

    standard: StandardSpec | None
    certificate: CertificateSpec
    extras: CertificateExtras


def plan_import(
    document: Dcc,
    verdict: SignatureVerdict,
    *,
    standard: StandardRecord | None,
    new_id: str | None,
    owner_lab: str,
    accepted_by: str | None,
) -> Plan:
    """The registry rows of a DCC (pure: nothing written)."""
    points = document.points()
    if not points:
        raise InvalidInput("the DCC holds no measured value (no si:real among its results)")
    rows = [point_row(position, point) for position, point in enumerate(points)]
    main, factor = _main_point(points, standard)
    uncertainty = main.value.uncertainty
    if uncertainty is None:
        raise InvalidInput(f"{main.path}: the certified value has no expanded uncertainty")
    item, lab = document.item, document.laboratory
    issuer = lab.name.get("en")
    new_standard = None
    if standard is None:
        assert new_id is not None
        try:
            symbol = main.value.symbol()
            new_standard = StandardSpec.model_validate(
                {
                    "id": new_id,
                    "kind": kind_of(main.value.unit, main.ref_types),
                    "description": item.name.get("en")[:200],
                    "nominal": nominal_of(main.value.value),
                    "unit": symbol,
                    "manufacturer": item.manufacturer.get("en")[:200],
                    "model": item.model[:200] if item.model else None,
                    "serial": item.serial_number[:200] if item.serial_number else None,
                    "owner_lab": owner_lab,
                }
            )
        except ValidationError as exc:
            raise InvalidInput(
                f"the DCC's item cannot be a standard here: {_reason(exc)}"
            ) from None
    value_text = _scaled(main.value.value, factor)
    u_text = _scaled(uncertainty.value, factor)
    try:
        spec = CertificateSpec.model_validate(
            {
                "number": document.unique_identifier[:200],
                "issuer": issuer[:200],
                "calibration_date": document.end_performance_date,
                "due_date": document.recalibration_date,
                "value": float(value_text),
                "expanded_uncertainty": float(u_text),
                "coverage_factor": float(uncertainty.coverage_factor),
                "conditions": _conditions(main),
                "traceable_to": _traceable(document, issuer[:200]),
            }
        )
    except ValidationError as exc:
        raise InvalidInput(f"the DCC cannot be a certificate here: {_reason(exc)}") from None
    signature = verdict.model_dump(mode="json")
    if accepted_by is not None:
        signature["accepted_by"] = accepted_by
    extras = CertificateExtras(
        value_text=value_text,
        expanded_uncertainty_text=u_text,
        coverage_factor_text=uncertainty.coverage_factor,
        coverage_probability=uncertainty.coverage_probability,
        points=rows,
        dcc=_json(dcc_fields(document)) or "{}",
        signature=_json(signature) or "{}",
    )
    return Plan(new_standard, spec, extras)


def _reason(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def load_anchors(config: DccConfig) -> list[Any]:
    """The trust anchors' certificates."""
    anchors: list[Any] = []
    for path in config.trust_anchors:
        try:
            anchors += dcc.load_certificates(path.read_bytes())
        except (OSError, dcc.SignatureError) as exc:
            raise InvalidInput(f"standards.dcc.trust_anchors: {path}: {exc}") from None
    return anchors


def _match(standards: list[StandardRecord], item: Item) -> StandardRecord | None:
    serial = item.serial_number
    if not serial:
        return None
    manufacturer = item.manufacturer.get("en").casefold()
    for record in standards:
        if record.serial == serial and (
            record.manufacturer is None or record.manufacturer.casefold() == manufacturer
        ):
            return record
    return None


async def import_dcc(
    registry: Registry,
    data: bytes,
    *,
    config: DccConfig,
    actor: str,
    standard_id: str | None = None,
    create: bool = True,
    accept_invalid: bool = False,
    file_name: str = "certificate.xml",
    owner_lab: str | None = None,
) -> DccImported:
    """Import a DCC (see the module doc). ``standard_id``: the standard it is for (created
    from the DCC's item when ``create`` and not registered); without it, the standard with
    the item's serial number, or a new one. ``accept_invalid``: register it even though its
    signature is invalid (the verdict and who accepted it are recorded)."""
    if len(data) > MAX_DCC_BYTES:
        raise InvalidInput(f"a DCC may have at most {MAX_DCC_BYTES // 2**20} MiB")
    document = await asyncio.to_thread(dcc.parse, data)
    anchors = load_anchors(config)
    verdict = await asyncio.to_thread(dcc.verify, data, anchors=anchors)
    if verdict.status == "invalid" and not accept_invalid:
        raise SignatureRefused(
            f"the DCC's signature is invalid: {verdict.reason} (nothing was registered; "
            "--accept-unsigned, or accept_unsigned=true, registers it with this verdict)"
        )
    accepted_by = actor if verdict.status == "invalid" else None
    stored, new_file = await registry._io(lambda: registry.files.put(data, file_name))
    digest = hashlib.sha256(data).hexdigest()
    assert stored.sha256 == digest

    def work(db: Any) -> tuple[str, int, bool, int]:
        standard = load_standard(db, standard_id, False) if standard_id else None
        if standard_id is not None and standard is None and not create:
            raise NotFound(f"no standard {standard_id}")
        new_id = None
        if standard is None:
            every = load_standards(db, with_certificates=False)
            standard = None if standard_id else _match(every, document.item)
            if standard is None:
                new_id = standard_id or standard_id_for(document.item, {s.id for s in every})
        plan = plan_import(
            document,
            verdict,
            standard=standard,
            new_id=new_id,
            owner_lab=owner_lab or document.customer.name.get("en")[:200],
            accepted_by=accepted_by,
        )
        if plan.standard is not None:
            insert_standard(db, plan.standard, actor, registry.default_site)
        target = plan.standard.id if plan.standard is not None else standard_id_or(standard)
        certificate_id = insert_certificate(
            db, NewCertificate(target, plan.certificate, stored, plan.extras), actor
        )
        return target, certificate_id, plan.standard is not None, len(plan.extras.points)

    try:
        target, certificate_id, created, count = await registry.records.run(
            lambda db: transaction(db, work)
        )
    except BaseException:
        if new_file:
            registry.files.remove(stored)
        raise
    return DccImported(
        standard=target,
        certificate_id=certificate_id,
        number=document.unique_identifier,
        issuer=document.laboratory.name.get("en"),
        created_standard=created,
        points=count,
        signature=verdict,
    )


def standard_id_or(standard: StandardRecord | None) -> str:
    assert standard is not None
    return standard.id
