"""What ``etalon standards list`` and ``show`` print for a metrologist, in English and
Vietnamese (``--json`` prints the records as they are)."""

from __future__ import annotations

from typing import Any

from core.i18n import t
from gateway.standards import messages  # noqa: F401 - registers these texts
from gateway.standards.registry import (
    CertificateRecord,
    StandardRecord,
    TraceabilityChain,
    TraceView,
)


def _due_state(certificate: CertificateRecord | None, now_ns: int, lang: str) -> str:
    if certificate is None:
        return t("standards.due.none", lang)
    if certificate.due_ns is None:
        return t("standards.due.no_date", lang)
    days = (certificate.due_ns - now_ns) / 86_400e9
    if days < 0:
        return t("standards.due.overdue", lang, days=f"{-days:.0f}")
    return t("standards.due.in", lang, days=f"{days:.0f}")


def format_list(standards: list[StandardRecord], now_ns: int, lang: str = "en") -> str:
    """The table of ``etalon standards list``: one standard a line, columns aligned."""
    if not standards:
        return t("standards.none", lang)
    rows = [tuple(t("standards.columns", lang).split("|"))]
    for record in standards:
        latest = record.latest_certificate
        rows.append(
            (
                record.id,
                record.kind,
                f"{record.nominal:g} {record.unit}",
                record.owner_lab,
                str(len(record.certificates)),
                latest.calibration_date[:10] if latest else "-",
                (latest.due_date or "-")[:10] if latest else "-",
                _due_state(latest, now_ns, lang),
                t(f"standards.status.{record.status}", lang),
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _trace_lines(view: TraceView, depth: int, out: list[str], lang: str = "en") -> None:
    mark = t("standards.show.national", lang) if view.national else ""
    registered = t("standards.show.registered", lang) if view.registered else ""
    certificate = (
        t("standards.show.trace_certificate", lang, number=view.certificate)
        if view.certificate
        else ""
    )
    out.append(
        f"{'  ' * depth}{'└ ' if depth else ''}{view.lab}: {view.standard}{certificate}"
        f"{mark}{registered}"
    )
    for child in view.traceable_to:
        _trace_lines(child, depth + 1, out, lang)


def format_show(
    record: StandardRecord,
    chain: TraceabilityChain,
    latest: dict[str, Any] | None,
    lang: str = "en",
) -> str:
    """The text of ``etalon standards show``."""

    def say(key: str, **values: object) -> str:
        return t(f"standards.show.{key}", lang, **values)

    status = t(f"standards.status.{record.status}", lang)
    lines = [say("title", id=record.id, kind=record.kind, status=status)]
    if record.description:
        lines.append(f"  {record.description}")
    maker = " ".join(x for x in (record.manufacturer, record.model) if x)
    if maker or record.serial:
        serial = say("serial", serial=record.serial) if record.serial else ""
        lines.append(f"  {maker}{serial}".rstrip())
    lines.append(
        "  " + say("nominal", nominal=f"{record.nominal:g}", unit=record.unit, lab=record.owner_lab)
    )
    if record.tolerance:
        around = say(f"around.{record.tolerance.around}")
        lines.append("  " + say("tolerance", tolerance=record.tolerance.compact(), around=around))
    lines.append(say("channels", count=len(record.channels)))
    for link in record.channels:
        conversion = say("conversion.same")
        if link.scale != 1.0 or link.offset != 0.0:
            conversion = say("conversion", scale=repr(link.scale), offset=repr(link.offset))
        note = f" -- {link.note}" if link.note else ""
        lines.append(
            f"  {link.site}:{link.agent}/{link.instrument}/{link.channel} "
            f"[{link.unit}] ({conversion}){note}"
        )
    lines.append(say("certificates", count=len(record.certificates)))
    for certificate in record.certificates:
        due = say("due", date=certificate.due_date) if certificate.due_date else ""
        lines.append(
            "  "
            + say(
                "certificate",
                id=certificate.id,
                number=certificate.number,
                issuer=certificate.issuer,
                date=certificate.calibration_date,
            )
            + due
        )
        lines.append(
            "     "
            + say(
                "value",
                value=repr(certificate.value),
                unit=record.unit,
                U=f"{certificate.expanded_uncertainty:g}",
                k=f"{certificate.coverage_factor:g}",
            )
        )
        conditions = certificate.conditions
        parts = [
            f"{conditions.temperature_c:g} °C" if conditions.temperature_c is not None else "",
            f"{conditions.pressure_hpa:g} hPa" if conditions.pressure_hpa is not None else "",
            f"{conditions.humidity_rh:g} %rh" if conditions.humidity_rh is not None else "",
            conditions.notes or "",
        ]
        if any(parts):
            lines.append("     " + say("conditions", conditions=", ".join(p for p in parts if p)))
        if certificate.points:
            lines.append("     " + say("dcc_results", count=len(certificate.points)))
            for point in certificate.points:
                u = f" ± {point.expanded_uncertainty}" if point.expanded_uncertainty else ""
                k = f" (k = {point.coverage_factor})" if point.coverage_factor else ""
                lines.append(f"       {point.value}{u} {point.unit}{k}")
        if certificate.signature is not None:
            lines.append(f"     {signature_line(certificate.signature, lang)}")
        file = certificate.file
        if file is not None:
            verdict = t(f"standards.file.{file.state or 'ok'}", lang)
            lines.append(
                "     "
                + say(
                    "file",
                    name=file.name,
                    media_type=file.media_type,
                    size=file.size,
                    sha256=file.sha256,
                    verdict=verdict,
                )
            )
        else:
            lines.append("     " + say("no_file"))
    verdict = (
        t("standards.trace.complete", lang)
        if chain.complete
        else t("standards.trace.open", lang, ends="; ".join(chain.open_ends))
    )
    lines.append(say("traceability", verdict=verdict))
    trace: list[str] = []
    _trace_lines(chain.root, 1, trace, lang)
    lines.extend(trace)
    if latest is not None:
        lines.append(say("latest", at=latest.get("evaluated_at", "-")))
        for key in (
            "measured",
            "reference",
            "reference_expanded_u",
            "predicted_out_of_tolerance",
            "calibration_due",
        ):
            if latest.get(key) is not None:
                lines.append(f"  {say('latest.' + key)}: {latest[key]}")
    return "\n".join(lines)


def signature_line(signature: dict[str, Any] | None, lang: str) -> str:
    """A certificate's signature verdict in one line."""
    if signature is None:
        return t("standards.dcc.no_dcc", lang)
    signer = signature.get("signer") or {}
    accepted = signature.get("accepted_by")
    return t(
        f"standards.dcc.signature.{signature.get('status', 'unsigned')}",
        lang,
        signer=signer.get("subject", "-"),
        checked=str(signature.get("checked_at", "-")),
        reason=signature.get("reason", ""),
    ) + (t("standards.dcc.accepted_by", lang, who=accepted) if accepted else "")
