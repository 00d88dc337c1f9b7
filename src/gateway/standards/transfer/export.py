"""Export of the registry as a YAML/JSON document or as CSV tables (the import's formats)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from core.csv_cells import neutralise
from gateway.standards.files import CertificateFiles
from gateway.standards.models import (
    FORMAT,
    StandardEntry,
    StandardsDocument,
)
from gateway.standards.registry import (
    StandardRecord,
)
from gateway.standards.transfer.columns import (
    CERTIFICATE_COLUMNS,
    STANDARD_COLUMNS,
    format_channels,
    format_traceability,
)


def export_document(
    records: Sequence[StandardRecord], files: CertificateFiles
) -> StandardsDocument:
    """The registry as an import document (certificate files named by their stored path)."""
    entries = []
    for record in records:
        certificates = [
            certificate.spec(
                str(files.path_of(certificate.file.stored())) if certificate.file else None
            )
            for certificate in record.certificates
        ]
        entries.append(
            StandardEntry.model_validate(
                {**record.spec().model_dump(), "certificates": certificates}
            )
        )
    return StandardsDocument(
        format=FORMAT,
        exported_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        standards=entries,
    )


def export_json(document: StandardsDocument) -> str:
    """The document as JSON (importable again)."""
    data = document.model_dump(mode="json", exclude_none=True)
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return neutralise(value)  # a spreadsheet must not run it (core.csv_cells)
    return str(value)


def export_standards_csv(records: Sequence[StandardRecord]) -> str:
    """Standards as a standards CSV file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(STANDARD_COLUMNS)
    for record in records:
        tolerance = record.tolerance
        around = ""
        if tolerance is not None and not tolerance.per_year and tolerance.around != "nominal":
            around = tolerance.around
        writer.writerow(
            [
                record.id,
                record.kind,
                _cell(record.description),
                _cell(record.nominal),
                record.unit,
                _cell(record.manufacturer),
                _cell(record.model),
                _cell(record.serial),
                _cell(record.owner_lab),
                tolerance.compact() if tolerance else "",
                around,
                record.status,
                format_channels(record.channels),
                _cell(record.analysis.certificate_model),
                _cell(record.analysis.monitor_model),
                _cell(record.analysis.period_s),
                _cell(record.analysis.baseline_start),
                _cell(record.analysis.baseline_end),
            ]
        )
    return out.getvalue()


def export_certificates_csv(records: Sequence[StandardRecord], files: CertificateFiles) -> str:
    """Certificates as a certificates CSV file."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CERTIFICATE_COLUMNS)
    for record in records:
        for certificate in record.certificates:
            conditions = certificate.conditions
            file = certificate.file
            writer.writerow(
                [
                    record.id,
                    _cell(certificate.number),
                    _cell(certificate.issuer),
                    certificate.calibration_date,
                    _cell(certificate.due_date),
                    _cell(certificate.value),
                    _cell(certificate.expanded_uncertainty),
                    _cell(certificate.coverage_factor),
                    _cell(conditions.temperature_c),
                    _cell(conditions.pressure_hpa),
                    _cell(conditions.humidity_rh),
                    _cell(conditions.notes),
                    _cell(certificate.notes),
                    str(files.path_of(file.stored())) if file else "",
                    file.sha256 if file else "",
                    _cell(format_traceability(certificate.traceable_to)),
                ]
            )
    return out.getvalue()
