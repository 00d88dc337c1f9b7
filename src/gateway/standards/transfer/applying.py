"""Checking parsed items against the registry and applying them in one transaction (nothing
if anything is wrong), and reading the certificate files they name."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.standards.errors import ImportProblems, InvalidInput, RegistryError
from gateway.standards.files import CertificateFiles, StoredFile, sniff
from gateway.standards.models import (
    CertificateSpec,
    StandardEntry,
    StandardSpec,
)
from gateway.standards.registry import (
    NewCertificate,
    audit,
    certificate_id_of,
    insert_certificate,
    insert_standard,
    load_certificate,
    load_standard,
    same_certificate,
    update_certificate,
    update_standard,
)
from gateway.standards.transfer.reading import ParsedImport


@dataclass
class ImportSummary:
    """What an import did."""

    standards_added: list[str] = field(default_factory=list)
    standards_updated: list[str] = field(default_factory=list)
    certificates_added: list[int] = field(default_factory=list)
    certificates_updated: list[int] = field(default_factory=list)
    unchanged: int = 0


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
