"""Reading an import file (YAML, JSON or CSV) into validated items, every problem named
``FILE:LINE: field: reason``."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from core.config_loader import load_yaml, locate, validation_problems
from core.csv_cells import restore
from core.errors import ConfigError
from gateway.standards.errors import ImportProblems
from gateway.standards.models import (
    CertificateEntry,
    CertificateSpec,
    StandardEntry,
    StandardsDocument,
)
from gateway.standards.transfer.columns import (
    _ANALYSIS_COLUMNS,
    _CONDITION_COLUMNS,
    CERTIFICATE_COLUMNS,
    STANDARD_COLUMNS,
    parse_channels,
    parse_traceability,
)


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
