"""``etalon standards add|import|list|show|export|import-dcc|export-dcc``: the registry from the
command line.

Works on the record store named by a gateway config (``-c FILE``), also while that gateway runs
(SQLite WAL; every change is one short transaction). Only the config's ``site``, ``records`` and
``standards`` sections are read, so the gateway's secrets need not be in the environment.
Exit status: 0 done, 1 a problem with the input or the registry (each named), 2 bad command line.
What ``list`` and ``show`` print is in :mod:`gateway.standards.show`; the argument tree and the
commands that read it stay together here, each option declared beside the one command that
reads it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from core.errors import ConfigError, EtalonError
from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import t, translate_reason
from gateway import cli_support
from gateway.cli_support import (
    GatewayParts,
    actor_of,
    command_group,
    common_options,
    lang_of,
    refused,
    with_records,
)
from gateway.standards import messages  # noqa: F401 - registers this command's texts
from gateway.standards.config import DccConfig, StandardsConfig
from gateway.standards.errors import ImportProblems, RegistryError
from gateway.standards.files import CertificateFiles
from gateway.standards.models import CertificateSpec, StandardSpec
from gateway.standards.registry import (
    Registry,
)
from gateway.standards.show import format_list, format_show, signature_line
from gateway.standards.transfer import (
    ImportSummary,
    export_certificates_csv,
    export_document,
    export_json,
    export_standards_csv,
    import_into,
    parse_channels,
    parse_import,
    parse_traceability,
    read_certificate_files,
)
from metrology.errors import DccError

T = TypeVar("T")


class _GatewayParts(GatewayParts):
    """The parts of a gateway config the registry needs: the record store's, and ``standards``."""

    standards: StandardsConfig | None = Field(None)


def load_parts(path: Path) -> _GatewayParts:
    """site, records and standards of a gateway config; ConfigError names file, line, field."""
    return cli_support.load_parts(path, _GatewayParts)


def add_standards_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``etalon standards ...``."""
    # -c and --actor are accepted before or after the command word.
    common = common_options(actor=True)
    parser, commands = command_group(
        subparsers,
        "standards",
        "reference standards: add, import, list, show, export",
        __doc__,
        common,
    )

    listing = commands.add_parser("list", parents=[common], help="every standard, one a line")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.add_argument("--active", action="store_true", help="leave retired standards out")

    show = commands.add_parser(
        "show",
        parents=[common],
        help="one standard: certificates (file hashes verified), channels, traceability",
    )
    show.add_argument("id")
    show.add_argument("--json", action="store_true")

    add = commands.add_parser("add", help="register a standard or a certificate")
    what = add.add_subparsers(dest="add_what", required=True, metavar="WHAT")
    standard = what.add_parser("standard", parents=[common], help="a new standard")
    standard.add_argument("--id", required=True)
    standard.add_argument("--kind", required=True, help="dc_voltage, resistance, frequency, …")
    standard.add_argument("--nominal", required=True, type=float)
    standard.add_argument("--unit", required=True)
    standard.add_argument("--owner-lab", required=True)
    standard.add_argument("--description")
    standard.add_argument("--manufacturer")
    standard.add_argument("--model")
    standard.add_argument("--serial")
    standard.add_argument("--tolerance", help="'±2 ppm', '±5e-6 V', '±1 µV/V + 1 µV/V/year'")
    standard.add_argument("--tolerance-around", choices=["nominal", "certificate"])
    standard.add_argument(
        "--channel",
        action="append",
        default=[],
        help="[SITE:]AGENT/INSTRUMENT/CHANNEL [UNIT] [scale=S] [offset=O] (repeatable)",
    )
    certificate = what.add_parser(
        "certificate", parents=[common], help="a certificate of a registered standard"
    )
    certificate.add_argument("standard", help="the standard's id")
    certificate.add_argument("--number", required=True)
    certificate.add_argument("--issuer", required=True, help="the issuing laboratory")
    certificate.add_argument("--date", required=True, help="calibration date (ISO 8601)")
    certificate.add_argument("--due", help="due date of the next calibration")
    certificate.add_argument("--value", required=True, type=float, help="certified value")
    certificate.add_argument("--U", dest="expanded", required=True, type=float, help="U")
    certificate.add_argument("--k", required=True, type=float, help="coverage factor of U")
    certificate.add_argument("--temperature-c", type=float)
    certificate.add_argument("--pressure-hpa", type=float)
    certificate.add_argument("--humidity-rh", type=float)
    certificate.add_argument("--notes")
    certificate.add_argument("--file", type=Path, help="the certificate (PDF or DCC XML)")
    certificate.add_argument(
        "--traceable-to",
        help="'LAB | STANDARD | CERTIFICATE | national > …; …' (see docs/standards.md)",
    )

    importing = commands.add_parser(
        "import", parents=[common], help="import standards/certificates from YAML, JSON or CSV"
    )
    importing.add_argument("file", type=Path)
    importing.add_argument(
        "--update", action="store_true", help="change registered entries that differ"
    )
    importing.add_argument(
        "--dry-run", action="store_true", help="check everything, change nothing"
    )

    import_dcc = commands.add_parser(
        "import-dcc",
        parents=[common],
        help="register a Digital Calibration Certificate (DCC 3.1.2 XML)",
    )
    import_dcc.add_argument("file", type=Path)
    import_dcc.add_argument(
        "--standard",
        help="the registered standard it is for (default: the one with the DCC item's serial "
        "number, or a new standard made from the item)",
    )
    import_dcc.add_argument(
        "--accept-unsigned",
        action="store_true",
        help="register it even if its signature is invalid (the verdict is recorded)",
    )
    export_dcc = commands.add_parser(
        "export-dcc",
        parents=[common],
        help="write a certificate as a DCC 3.1.2 document (signed with the lab's key if set)",
    )
    export_dcc.add_argument("id", help="the standard's id")
    export_dcc.add_argument(
        "--certificate", type=int, help="the certificate's id (default: the latest)"
    )
    export_dcc.add_argument("--out", type=Path, required=True, help="file to write")

    export = commands.add_parser("export", parents=[common], help="export as JSON or CSV")
    export.add_argument("--format", choices=["json", "csv"], default="json")
    export.add_argument(
        "--what",
        choices=["standards", "certificates"],
        default="standards",
        help="CSV only: which table",
    )
    export.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    return parser


def _with_registry(
    parts: _GatewayParts, work: Callable[[Registry], Awaitable[T]], *, write: bool = False
) -> T:
    """Run ``work`` on the registry; ``write``: this command changes records (it needs the
    ledger's signing key, and signs a checkpoint when it is done)."""
    directory = (parts.standards or StandardsConfig()).certificates_path(parts.records.path)
    return with_records(
        parts, lambda records: work(Registry(records, directory, parts.site)), write=write
    )


def standards_main(args: argparse.Namespace) -> int:
    """Run one ``etalon standards`` command."""
    if getattr(args, "config", None) is None:
        print(t("standards.needs_config", lang_of(args)), file=sys.stderr)
        return 2
    try:
        parts = load_parts(args.config)
    except ConfigError as exc:
        return refused("standards", *exc.problems)
    command = args.standards_command
    try:
        if command == "list":
            return _with_registry(parts, lambda registry: _list(registry, args))
        if command == "show":
            return _with_registry(parts, lambda registry: _show(registry, args))
        if command == "add":
            return _with_registry(parts, lambda registry: _add(registry, args), write=True)
        if command == "import":
            return _import(parts, args)
        if command == "export":
            return _with_registry(parts, lambda registry: _export(registry, args))
        if command == "import-dcc":
            return _with_registry(
                parts, lambda registry: _import_dcc(registry, parts, args), write=True
            )
        if command == "export-dcc":
            return _with_registry(parts, lambda registry: _export_dcc(registry, parts, args))
    except ImportProblems as exc:
        refused("standards", t("standards.import.refused", lang_of(args), file=args.file))
        for problem in exc.problems:
            print(f"  {translate_reason(problem, lang_of(args))}", file=sys.stderr)
        return EXIT_CONFIG
    except DccError as exc:
        return refused("standards", exc.message(lang_of(args)))
    except (RegistryError, EtalonError) as exc:
        return refused("standards", exc)
    return 2


async def _list(registry: Registry, args: argparse.Namespace) -> int:
    standards = await registry.standards(active_only=args.active)
    if args.json:
        print(
            json.dumps(
                [
                    s.model_dump(mode="json", exclude={"certificates"})
                    | {
                        "certificates": len(s.certificates),
                        "latest_calibration": s.latest_certificate.calibration_date
                        if s.latest_certificate
                        else None,
                        "due": s.latest_certificate.due_date if s.latest_certificate else None,
                    }
                    for s in standards
                ],
                indent=2,
                ensure_ascii=False,
            )
        )
        return EXIT_OK
    print(format_list(standards, int(datetime.now(UTC).timestamp() * 1e9), lang_of(args)))
    return EXIT_OK


async def _show(registry: Registry, args: argparse.Namespace) -> int:
    record = await registry.standard(args.id)
    checked = [await registry.verified(certificate) for certificate in record.certificates]
    record = record.model_copy(update={"certificates": checked})
    chain = await registry.traceability(args.id)
    rows = await registry.records.query(
        "SELECT result FROM standard_latest WHERE standard_id=?", (args.id,)
    )
    latest = json.loads(rows[0]["result"]) if rows else None
    bad = [c for c in checked if c.file is not None and c.file.state != "ok"]
    if args.json:
        print(
            json.dumps(
                {
                    "standard": record.model_dump(mode="json"),
                    "traceability": chain.model_dump(mode="json"),
                    "latest_evaluation": latest,
                },
                indent=2,
                ensure_ascii=False,
            )
        )
    else:
        summary = None
        if latest is not None:
            summary = latest.get("summary", latest)
        print(format_show(record, chain, summary, lang_of(args)))
    for certificate in bad:
        assert certificate.file is not None
        print(
            t(
                "standards.show.file_bad",
                lang_of(args),
                number=certificate.number,
                name=certificate.file.name,
                verdict=t(f"standards.file.{certificate.file.state}", lang_of(args)),
                state=certificate.file.state,
                sha256=certificate.file.sha256,
            ),
            file=sys.stderr,
        )
    return EXIT_CONFIG if bad else EXIT_OK


# -- add / import / export -----------------------------------------------------------------------


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(input)'}: "
            f"{e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors(include_url=False)
        ]
        raise RegistryError("; ".join(problems)) from None


async def _add(registry: Registry, args: argparse.Namespace) -> int:
    actor = actor_of(args)
    if args.add_what == "standard":
        data: dict[str, Any] = {
            "id": args.id,
            "kind": args.kind,
            "nominal": args.nominal,
            "unit": args.unit,
            "owner_lab": args.owner_lab,
        }
        for key in ("description", "manufacturer", "model", "serial"):
            if getattr(args, key):
                data[key] = getattr(args, key)
        if args.tolerance:
            data["tolerance"] = args.tolerance
            if args.tolerance_around:
                from gateway.standards.models import parse_tolerance

                try:
                    data["tolerance"] = parse_tolerance(args.tolerance) | {
                        "around": args.tolerance_around
                    }
                except ValueError as exc:
                    raise RegistryError(f"tolerance: {exc}") from None
        try:
            data["channels"] = [link for text in args.channel for link in parse_channels(text)]
        except ValueError as exc:
            raise RegistryError(f"channel: {exc}") from None
        spec = _validated(StandardSpec, data)
        await registry.add_standard(spec, actor)
        print(t("standards.added", lang_of(args), id=spec.id))
        return EXIT_OK
    certificate: dict[str, Any] = {
        "number": args.number,
        "issuer": args.issuer,
        "calibration_date": args.date,
        "value": args.value,
        "expanded_uncertainty": args.expanded,
        "coverage_factor": args.k,
    }
    if args.due:
        certificate["due_date"] = args.due
    if args.notes:
        certificate["notes"] = args.notes
    conditions = {
        key: getattr(args, key)
        for key in ("temperature_c", "pressure_hpa", "humidity_rh")
        if getattr(args, key) is not None
    }
    if conditions:
        certificate["conditions"] = conditions
    if args.traceable_to:
        try:
            certificate["traceable_to"] = parse_traceability(args.traceable_to)
        except ValueError as exc:
            raise RegistryError(f"traceable-to: {exc}") from None
    spec = _validated(CertificateSpec, certificate)
    file = None
    if args.file is not None:
        try:
            file = (args.file.read_bytes(), args.file.name)
        except OSError as exc:
            raise RegistryError(f"cannot read {args.file}: {exc.strerror}") from None
    certificate_id = await registry.add_certificate(args.standard, spec, actor, file)
    print(
        t(
            "standards.certificate_added",
            lang_of(args),
            number=spec.number,
            standard=args.standard,
            id=certificate_id,
        )
    )
    return EXIT_OK


def _import(parts: _GatewayParts, args: argparse.Namespace) -> int:
    parsed = parse_import(args.file)
    contents, problems = read_certificate_files(parsed)
    actor = actor_of(args)

    async def run(registry: Registry) -> ImportSummary:
        return await registry.records.run(
            lambda db: import_into(
                db,
                parsed,
                registry.files,
                contents,
                actor,
                registry.default_site,
                update=args.update,
                dry_run=args.dry_run,
                problems=problems,
            )
        )

    summary = _with_registry(parts, run, write=True)
    print(
        t(
            "standards.import.dry_run" if args.dry_run else "standards.import.done",
            lang_of(args),
            file=args.file,
            standards=len(summary.standards_added),
            certificates=len(summary.certificates_added),
            updated_standards=len(summary.standards_updated),
            updated_certificates=len(summary.certificates_updated),
            unchanged=summary.unchanged,
        )
    )
    return EXIT_OK


def _dcc_config(parts: _GatewayParts) -> DccConfig:
    return (parts.standards or StandardsConfig()).dcc


async def _import_dcc(registry: Registry, parts: _GatewayParts, args: argparse.Namespace) -> int:
    from gateway.standards.dcc import import_dcc

    lang = lang_of(args)
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise RegistryError(f"cannot read {args.file}: {exc.strerror}") from None
    done = await import_dcc(
        registry,
        data,
        config=_dcc_config(parts),
        actor=actor_of(args),
        standard_id=args.standard,
        create=False,
        accept_invalid=args.accept_unsigned,
        file_name=args.file.name,
    )
    key = "standards.dcc.imported_new" if done.created_standard else "standards.dcc.imported"
    print(
        t(
            key,
            lang,
            number=done.number,
            issuer=done.issuer,
            standard=done.standard,
            id=done.certificate_id,
            points=done.points,
        )
    )
    print("  " + signature_line(done.signature.model_dump(mode="json"), lang))
    return EXIT_OK


async def _export_dcc(registry: Registry, parts: _GatewayParts, args: argparse.Namespace) -> int:
    from gateway.standards.dcc import export_dcc

    certificate, data = await export_dcc(registry, args.id, args.certificate, _dcc_config(parts))
    try:
        args.out.write_bytes(data)
    except OSError as exc:
        raise RegistryError(f"cannot write {args.out}: {exc.strerror}") from None
    signed = _dcc_config(parts).signing is not None
    print(
        t(
            "standards.dcc.exported_signed" if signed else "standards.dcc.exported",
            lang_of(args),
            number=certificate.number,
            out=args.out,
            size=len(data),
        )
    )
    return EXIT_OK


async def _export(registry: Registry, args: argparse.Namespace) -> int:
    standards = await registry.standards()
    files: CertificateFiles = registry.files
    if args.format == "json":
        text = export_json(export_document(standards, files))
    elif args.what == "standards":
        text = export_standards_csv(standards)
    else:
        text = export_certificates_csv(standards, files)
    if args.output is None:
        sys.stdout.write(text)
    else:
        try:
            args.output.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise RegistryError(f"cannot write {args.output}: {exc.strerror}") from None
    return EXIT_OK
