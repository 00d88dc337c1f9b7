"""Import and export of the registry: YAML/JSON documents and CSV files.

Import validates everything first -- every row's fields, the references between rows and to
what is registered, every certificate file and its hash -- and imports nothing if anything is
wrong: each problem is one line ``FILE:LINE: field: reason``. Then one transaction adds the
standards, channel links and certificates, each with its audit-log entry.

CSV files are one of two kinds, told apart by their header:

- standards (``id, kind, nominal, unit, owner_lab`` …): ``tolerance`` in the compact form
  (``±2 ppm``, ``±1 µV/V + 1 µV/V/year``), ``channels`` as ``[SITE:]AGENT/INSTRUMENT/CHANNEL
  [UNIT] scale=S offset=O`` entries separated by ``;``;
- certificates (``standard, number, issuer, calibration_date, value, expanded_uncertainty,
  coverage_factor`` …): ``traceable_to`` as branches separated by ``;``, each a chain of levels
  ``LAB | STANDARD | CERTIFICATE | national`` separated by ``>`` (descriptions only in YAML).
"""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import json
import re
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from core.config_loader import load_yaml, locate, validation_problems
from core.csv_cells import neutralise, restore
from core.errors import ConfigError
from gateway.standards.errors import ImportProblems, InvalidInput, RegistryError
from gateway.standards.files import CertificateFiles, StoredFile, sniff
from gateway.standards.models import (
    FORMAT,
    CertificateEntry,
    CertificateSpec,
    ChannelLink,
    StandardEntry,
    StandardsDocument,
    StandardSpec,
    TraceabilityNode,
)
from gateway.standards.registry import (
    NewCertificate,
    StandardRecord,
    audit,
    certificate_id_of,
    insert_certificate,
    insert_standard,
    load_certificate,
    load_standard,
    load_standards,
    same_certificate,
    update_certificate,
    update_standard,
)

STANDARD_COLUMNS = [
    "id",
    "kind",
    "description",
    "nominal",
    "unit",
    "manufacturer",
    "model",
    "serial",
    "owner_lab",
    "tolerance",
    "tolerance_around",
    "status",
    "channels",
    "certificate_model",
    "monitor_model",
    "period_s",
    "baseline_start",
    "baseline_end",
]
_ANALYSIS_COLUMNS = (
    "certificate_model",
    "monitor_model",
    "period_s",
    "baseline_start",
    "baseline_end",
)
CERTIFICATE_COLUMNS = [
    "standard",
    "number",
    "issuer",
    "calibration_date",
    "due_date",
    "value",
    "expanded_uncertainty",
    "coverage_factor",
    "temperature_c",
    "pressure_hpa",
    "humidity_rh",
    "conditions_notes",
    "notes",
    "file",
    "file_sha256",
    "traceable_to",
]
_CONDITION_COLUMNS = {
    "temperature_c": "temperature_c",
    "pressure_hpa": "pressure_hpa",
    "humidity_rh": "humidity_rh",
    "conditions_notes": "notes",
}
_CHANNEL = re.compile(
    r"^\s*(?:(?P<site>[^:/\s]+):)?(?P<agent>[^/\s]+)/(?P<instrument>[^/\s]+)/(?P<channel>[^/\s\[]+)"
    r"\s*(?:\[(?P<unit>[^\]]+)\])?(?P<rest>.*)$"
)
_SETTING = re.compile(r"^(scale|offset)=(\S+)$")


@dataclass(frozen=True)
class Where:
    """Where an item came from, to name its line and field in a problem."""

    path: Path
    line: int | None = None
    yaml_root: yaml.Node | None = None
    yaml_loc: tuple[int | str, ...] = ()
    columns: dict[str, str] = field(default_factory=dict)

    def problem(self, field_name: str, reason: str) -> str:
        """``FILE:LINE: field: reason``."""
        if self.yaml_root is not None:
            line, shown = locate(self.yaml_root, (*self.yaml_loc, field_name))
            return f"{self.path}:{line}: {shown}: {reason}"
        shown = self.columns.get(field_name, field_name)
        return f"{self.path}:{self.line}: {shown}: {reason}"


@dataclass(frozen=True)
class Item:
    """A standard or a certificate read from a file, with where it came from."""

    spec: BaseModel
    where: Where
    standard: str = ""


@dataclass
class ParsedImport:
    """What a file holds, validated field by field."""

    path: Path
    standards: list[Item] = field(default_factory=list)
    certificates: list[Item] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """Entries with problems are left out of the lists and named here."""


@dataclass
class ImportSummary:
    """What an import did."""

    standards_added: list[str] = field(default_factory=list)
    standards_updated: list[str] = field(default_factory=list)
    certificates_added: list[int] = field(default_factory=list)
    certificates_updated: list[int] = field(default_factory=list)
    unchanged: int = 0


# -- reading files -------------------------------------------------------------------------------


def parse_import(path: Path) -> ParsedImport:
    """Read and validate an import file (.yaml, .yml, .json or .csv); ImportProblems if bad."""
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml", ".json"):
        return _parse_document(path)
    if suffix == ".csv":
        return _parse_csv(path)
    raise ImportProblems([f"{path}: not a .yaml, .yml, .json or .csv file"])


def _entry_problems(
    path: Path, root: yaml.Node | None, prefix: tuple[int | str, ...], exc: ValidationError
) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        line, shown = locate(root, (*prefix, *error["loc"]))
        message = error["msg"].removeprefix("Value error, ")
        problems.append(f"{path}:{line}: {shown}: {message}")
    return problems


def _parse_document(path: Path) -> ParsedImport:
    """Each entry is validated on its own, so every bad entry is named and the good ones still
    go through the checks against the registry."""
    try:
        data, root = load_yaml(path)
    except ConfigError as exc:
        raise ImportProblems(exc.problems) from None
    entries = {key: data.get(key) for key in ("standards", "certificates")}
    problems = []
    for key, value in entries.items():
        if value is not None and not isinstance(value, list):
            line, shown = locate(root, (key,))
            problems.append(f"{path}:{line}: {shown}: must be a list")
    try:
        StandardsDocument.model_validate({k: v for k, v in data.items() if k not in entries})
    except ValidationError as exc:
        problems.extend(validation_problems(path, root, exc))
    if problems:
        raise ImportProblems(problems)
    parsed = ParsedImport(path)
    for i, raw in enumerate(entries["standards"] or ()):
        loc: tuple[int | str, ...] = ("standards", i)
        try:
            entry = StandardEntry.model_validate(raw)
        except ValidationError as exc:
            parsed.problems.extend(_entry_problems(path, root, loc, exc))
            continue
        parsed.standards.append(Item(entry, Where(path, yaml_root=root, yaml_loc=loc)))
        for j, certificate in enumerate(entry.certificates):
            where = Where(path, yaml_root=root, yaml_loc=(*loc, "certificates", j))
            parsed.certificates.append(Item(certificate, where, entry.id))
    for j, raw in enumerate(entries["certificates"] or ()):
        loc = ("certificates", j)
        try:
            top = CertificateEntry.model_validate(raw)
        except ValidationError as exc:
            parsed.problems.extend(_entry_problems(path, root, loc, exc))
            continue
        where = Where(path, yaml_root=root, yaml_loc=loc)
        spec = CertificateSpec.model_validate(top.model_dump(exclude={"standard"}))
        parsed.certificates.append(Item(spec, where, top.standard))
    return parsed


def _rows(path: Path) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ImportProblems([f"{path}: cannot read: {exc}"]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = [cell.strip() for cell in next(reader)]
    except StopIteration:
        raise ImportProblems([f"{path}: the file is empty"]) from None
    except csv.Error as exc:
        raise ImportProblems([f"{path}:1: not a readable CSV file: {exc}"]) from None

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) > len(header):
                    raise ImportProblems(
                        [
                            f"{path}:{reader.line_num}: (row): {len(row)} cells but "
                            f"{len(header)} columns in the header"
                        ]
                    )
                cells = {
                    name: (restore(row[i].strip()) if i < len(row) else "")
                    for i, name in enumerate(header)
                }
                yield reader.line_num, cells
        except csv.Error as exc:
            raise ImportProblems(
                [f"{path}:{reader.line_num}: not a readable CSV row: {exc}"]
            ) from None

    return header, rows()


def _header_problems(path: Path, header: list[str], allowed: list[str]) -> list[str]:
    problems = []
    seen: set[str] = set()
    for name in header:
        if name not in allowed:
            problems.append(
                f"{path}:1: {name or '(empty)'}: unknown column (columns: {', '.join(allowed)})"
            )
        if name in seen:
            problems.append(f"{path}:1: {name}: column appears twice")
        seen.add(name)
    return problems


def _parse_csv(path: Path) -> ParsedImport:
    header, rows = _rows(path)
    names = set(header)
    if {"id", "nominal"} <= names:
        kind, allowed = "standards", STANDARD_COLUMNS
    elif {"standard", "number"} <= names:
        kind, allowed = "certificates", CERTIFICATE_COLUMNS
    else:
        raise ImportProblems(
            [
                f"{path}:1: (header): neither a standards file (columns id, nominal, …) nor a "
                "certificates file (columns standard, number, …)"
            ]
        )
    problems = _header_problems(path, header, allowed)
    if problems:
        raise ImportProblems(problems)
    parsed = ParsedImport(path)
    rows_seen = 0
    for line, cells in rows:
        rows_seen += 1
        try:
            if kind == "standards":
                item = _standard_row(path, line, cells)
                parsed.standards.append(item)
            else:
                parsed.certificates.append(_certificate_row(path, line, cells))
        except _RowProblems as exc:
            parsed.problems.extend(exc.problems)
    if not rows_seen:
        raise ImportProblems([f"{path}: no data rows after the header"])
    return parsed


class _RowProblems(Exception):
    def __init__(self, problems: list[str]) -> None:
        self.problems = problems


def _pydantic_row(model: type[BaseModel], data: dict[str, Any], where: Where) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            loc = [str(part) for part in error["loc"]]
            name = ".".join(loc) if loc else "(row)"
            for depth in range(len(loc), 0, -1):
                candidate = ".".join(loc[:depth])
                if candidate in where.columns:
                    name = candidate
                    break
            message = error["msg"].removeprefix("Value error, ")
            problems.append(where.problem(name, message))
        raise _RowProblems(problems) from None


def parse_channels(text: str) -> list[dict[str, Any]]:
    """``[SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT] scale=S offset=O; …`` as channel-link fields."""
    links = []
    for entry in text.split(";"):
        if not entry.strip():
            continue
        match = _CHANNEL.match(entry)
        if not match:
            raise ValueError(f"{entry.strip()!r} is not [SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT]")
        link: dict[str, Any] = {
            key: match.group(key) for key in ("site", "agent", "instrument", "channel", "unit")
        }
        if link["unit"] is None:
            raise ValueError(f"{entry.strip()!r}: give the channel's unit in brackets, e.g. [V]")
        for word in match.group("rest").split():
            setting = _SETTING.match(word)
            if not setting:
                raise ValueError(
                    f"{entry.strip()!r}: {word!r} is not scale=NUMBER or offset=NUMBER"
                )
            link[setting.group(1)] = setting.group(2)
        links.append({k: v for k, v in link.items() if v is not None})
    return links


def format_channels(links: Sequence[ChannelLink]) -> str:
    """Channel links in the CSV form."""
    entries = []
    for link in links:
        text = (
            f"{link.site + ':' if link.site else ''}{link.agent}/{link.instrument}/"
            f"{link.channel} [{link.unit}]"
        )
        if link.scale != 1.0:
            text += f" scale={link.scale!r}"
        if link.offset != 0.0:
            text += f" offset={link.offset!r}"
        entries.append(text)
    return "; ".join(entries)


def parse_traceability(text: str) -> list[dict[str, Any]]:
    """``LAB | STANDARD | CERTIFICATE | national > …; …`` as traceability nodes (nested)."""
    branches = []
    for branch in text.split(";"):
        if not branch.strip():
            continue
        levels = []
        for level in branch.split(">"):
            parts = [part.strip() for part in level.split("|")]
            if len(parts) < 2 or len(parts) > 5 or not parts[0] or not parts[1]:
                raise ValueError(
                    f"{level.strip()!r} is not 'LAB | STANDARD [| CERTIFICATE] [| national] "
                    "[| DESCRIPTION]'"
                )
            node: dict[str, Any] = {"lab": parts[0], "standard": parts[1]}
            if len(parts) > 2 and parts[2]:
                node["certificate"] = parts[2]
            if len(parts) > 3:
                if parts[3].lower() not in ("national", ""):
                    raise ValueError(f"{level.strip()!r}: the fourth part may only be 'national'")
                node["national"] = parts[3].lower() == "national"
            if len(parts) > 4 and parts[4]:
                node["description"] = parts[4]
            levels.append(node)
        for lower, upper in itertools.pairwise(levels):
            lower["traceable_to"] = [upper]
        branches.append(levels[0])
    return branches


def format_traceability(nodes: Sequence[TraceabilityNode]) -> str:
    """Traceability in the CSV form (branching above the first level is flattened away)."""
    branches = []
    for node in nodes:
        levels = []
        current: TraceabilityNode | None = node
        while current is not None:
            parts = [
                current.lab,
                current.standard,
                current.certificate or "",
                "national" if current.national else "",
                current.description or "",
            ]
            while not parts[-1]:
                parts.pop()
            levels.append(" | ".join(parts))
            current = current.traceable_to[0] if current.traceable_to else None
        branches.append(" > ".join(levels))
    return "; ".join(branches)


def _standard_row(path: Path, line: int, cells: dict[str, str]) -> Item:
    columns = {name: name for name in STANDARD_COLUMNS}
    columns["tolerance.around"] = "tolerance_around"
    columns.update({f"analysis.{key}": key for key in _ANALYSIS_COLUMNS})
    where = Where(path, line, columns=columns)
    data: dict[str, Any] = {k: v for k, v in cells.items() if v and k in STANDARD_COLUMNS}
    data.pop("tolerance_around", None)
    analysis = {key: data.pop(key) for key in _ANALYSIS_COLUMNS if key in data}
    if analysis:
        data["analysis"] = analysis
    around = cells.get("tolerance_around", "")
    if "tolerance" in data:
        try:
            from gateway.standards.models import parse_tolerance

            tolerance = parse_tolerance(data["tolerance"])
        except ValueError as exc:
            raise _RowProblems([where.problem("tolerance", str(exc))]) from None
        if around:
            tolerance["around"] = around
        data["tolerance"] = tolerance
    elif around:
        raise _RowProblems([where.problem("tolerance_around", "given without a tolerance")])
    if "channels" in data:
        try:
            data["channels"] = parse_channels(data["channels"])
        except ValueError as exc:
            raise _RowProblems([where.problem("channels", str(exc))]) from None
    spec = _pydantic_row(StandardEntry, data, where)
    return Item(spec, where)


def _certificate_row(path: Path, line: int, cells: dict[str, str]) -> Item:
    columns = {name: name for name in CERTIFICATE_COLUMNS}
    columns.update({f"conditions.{v}": k for k, v in _CONDITION_COLUMNS.items()})
    where = Where(path, line, columns=columns)
    data: dict[str, Any] = {}
    conditions: dict[str, str] = {}
    for name, value in cells.items():
        if not value:
            continue
        if name in _CONDITION_COLUMNS:
            conditions[_CONDITION_COLUMNS[name]] = value
        elif name == "traceable_to":
            try:
                data["traceable_to"] = parse_traceability(value)
            except ValueError as exc:
                raise _RowProblems([where.problem("traceable_to", str(exc))]) from None
        else:
            data[name] = value
    if conditions:
        data["conditions"] = conditions
    if not data.get("standard"):
        raise _RowProblems([where.problem("standard", "Field required")])
    spec = _pydantic_row(CertificateEntry, data, where)
    assert isinstance(spec, CertificateEntry)
    plain = CertificateSpec.model_validate(spec.model_dump(exclude={"standard"}))
    return Item(plain, where, spec.standard)


# -- files ---------------------------------------------------------------------------------------


def read_certificate_files(parsed: ParsedImport) -> tuple[dict[int, tuple[bytes, str]], list[str]]:
    """The bytes of every certificate file the import names, by certificate index; problems."""
    found: dict[int, tuple[bytes, str]] = {}
    problems: list[str] = []
    for index, item in enumerate(parsed.certificates):
        spec = item.spec
        assert isinstance(spec, CertificateSpec)
        if spec.file is None:
            continue
        location = Path(spec.file)
        if not location.is_absolute():
            location = parsed.path.parent / location
        try:
            data = location.read_bytes()
        except OSError as exc:
            problems.append(item.where.problem("file", f"cannot read {location}: {exc.strerror}"))
            continue
        try:
            sniff(data)
        except InvalidInput as exc:
            problems.append(item.where.problem("file", f"{location}: {exc}"))
            continue
        if spec.file_sha256 is not None and hashlib.sha256(data).hexdigest() != spec.file_sha256:
            problems.append(
                item.where.problem(
                    "file_sha256", f"{location} does not have this SHA-256 (the file changed?)"
                )
            )
            continue
        found[index] = (data, location.name)
    return found, problems


# -- checking against the registry and applying ---------------------------------------------------


def _check_and_apply(
    db: sqlite3.Connection,
    parsed: ParsedImport,
    files: dict[int, StoredFile],
    actor: str,
    default_site: str,
    update: bool,
    problems: list[str],
) -> ImportSummary:
    summary = ImportSummary()
    in_file: dict[str, StandardSpec] = {}
    for item in parsed.standards:
        entry = item.spec
        assert isinstance(entry, StandardEntry)
        spec = StandardSpec.model_validate(entry.model_dump(exclude={"certificates"}))
        if spec.id in in_file:
            problems.append(item.where.problem("id", f"standard {spec.id} appears twice"))
            continue
        in_file[spec.id] = spec
        existing = load_standard(db, spec.id, with_certificates=False)
        if existing is None:
            insert_standard(db, spec, actor, default_site)
            summary.standards_added.append(spec.id)
            continue
        resolved = spec.model_copy(
            update={
                "channels": [
                    c if c.site else c.model_copy(update={"site": default_site})
                    for c in spec.channels
                ]
            }
        )
        if existing.spec() == resolved:
            summary.unchanged += 1
        elif update:
            update_standard(db, spec, actor, default_site)
            summary.standards_updated.append(spec.id)
        else:
            problems.append(
                item.where.problem(
                    "id",
                    f"standard {spec.id} is already registered with other values "
                    "(import with --update to change it)",
                )
            )
    seen_numbers: dict[tuple[str, str], str] = {}
    for index, item in enumerate(parsed.certificates):
        certificate = item.spec
        assert isinstance(certificate, CertificateSpec)
        key = (certificate.issuer, certificate.number)
        if key in seen_numbers:
            problems.append(
                item.where.problem(
                    "number",
                    f"certificate {certificate.number} of {certificate.issuer} appears twice",
                )
            )
            continue
        seen_numbers[key] = item.standard
        standard = in_file.get(item.standard) or load_standard(
            db, item.standard, with_certificates=False
        )
        if standard is None:
            problems.append(
                item.where.problem(
                    "standard", f"no standard {item.standard} (neither registered nor in the file)"
                )
            )
            continue
        existing_id = certificate_id_of(db, certificate.issuer, certificate.number)
        if existing_id is not None:
            record = load_certificate(db, existing_id)
            assert record is not None
            if record.standard != item.standard:
                problems.append(
                    item.where.problem(
                        "number",
                        f"certificate {certificate.number} of {certificate.issuer} is "
                        f"registered for standard {record.standard}",
                    )
                )
            elif same_certificate(record, certificate):
                summary.unchanged += 1
            elif update:
                update_certificate(db, existing_id, certificate, actor)
                summary.certificates_updated.append(existing_id)
            else:
                problems.append(
                    item.where.problem(
                        "number",
                        f"certificate {certificate.number} of {certificate.issuer} is already "
                        "registered with other values (import with --update to correct it)",
                    )
                )
            continue
        try:
            certificate_id = insert_certificate(
                db, NewCertificate(item.standard, certificate, files.get(index)), actor
            )
        except RegistryError as exc:
            problems.append(item.where.problem("value", str(exc)))
            continue
        summary.certificates_added.append(certificate_id)
    if problems:
        raise ImportProblems(problems)
    audit(
        db,
        actor,
        "standards.import",
        f"file:{parsed.path.name}",
        {
            "file": str(parsed.path),
            "standards_added": summary.standards_added,
            "standards_updated": summary.standards_updated,
            "certificates_added": summary.certificates_added,
            "certificates_updated": summary.certificates_updated,
            "unchanged": summary.unchanged,
        },
    )
    return summary


def import_into(
    db: sqlite3.Connection,
    parsed: ParsedImport,
    files: CertificateFiles,
    contents: dict[int, tuple[bytes, str]],
    actor: str,
    default_site: str,
    update: bool = False,
    dry_run: bool = False,
    problems: Sequence[str] = (),
) -> ImportSummary:
    """Check an import against the registry and apply it in one transaction, or raise
    ImportProblems and change nothing (files written for it are removed again). ``problems``:
    those already found (parsing, files), reported together with the registry's. ``dry_run``:
    check everything, then roll back."""
    stored: dict[int, StoredFile] = {}
    written: list[StoredFile] = []
    try:
        for index, (data, name) in contents.items():
            kept, new = files.put(data, name)
            stored[index] = kept
            if new:
                written.append(kept)
        db.execute("BEGIN IMMEDIATE")
        try:
            summary = _check_and_apply(
                db, parsed, stored, actor, default_site, update, [*parsed.problems, *problems]
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if dry_run:
            db.execute("ROLLBACK")
            for kept in written:
                files.remove(kept)
        else:
            db.execute("COMMIT")
        return summary
    except BaseException:
        for kept in written:
            files.remove(kept)
        raise


# -- export --------------------------------------------------------------------------------------


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


def registered(db: sqlite3.Connection) -> list[StandardRecord]:
    """Every standard with its certificates (for export)."""
    return load_standards(db, with_certificates=True)
