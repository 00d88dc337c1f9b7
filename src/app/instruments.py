"""``etalon instruments list|show|link|unlink|import-dcc``: calibrated instruments from the
command line (docs/corrections.md).

Works on the record store named by a gateway config (``-c FILE``), also while that gateway runs
(SQLite WAL). Only the config's ``site``, ``records``, ``standards`` (trust anchors) and
``corrections`` sections are read. A link made here starts ``2 × corrections.reload_s + 1 s``
from now by default (``--at`` to choose a later instant), so that a running gateway has
loaded it before its instant.
Exit status: 0 done, 1 a problem with the input or the records (each named), 2 bad command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from pydantic import Field

from core.errors import ConfigError, EtalonError
from core.exits import EXIT_OK
from core.i18n import t
from gateway.cli_support import (
    GatewayParts,
    actor_of,
    command_group,
    common_options,
    lang_of,
    load_parts,
    refused,
    with_records,
)
from gateway.corrections import instruments
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.instruments import CorrectionsError, Refused
from gateway.records.store import RecordStore
from gateway.standards.config import StandardsConfig
from metrology.errors import DccError


class _GatewayParts(GatewayParts):
    """The parts of a gateway config this command needs (the rest is not validated here)."""

    standards: StandardsConfig | None = Field(None)
    corrections: CorrectionsConfig = Field(default_factory=CorrectionsConfig)


def add_instruments_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``etalon instruments ...``."""
    common = common_options(actor=True, lang=True)
    parser, commands = command_group(
        subparsers,
        "instruments",
        "calibrated instruments: certificates (DCC) and corrections of their channels",
        __doc__,
        common,
    )
    listing = commands.add_parser("list", parents=[common], help="instruments with their links")
    listing.add_argument("--json", action="store_true", help="as JSON")
    show = commands.add_parser(
        "show", parents=[common], help="one instrument: links, certificates, tables"
    )
    show.add_argument("instrument", help="SITE/AGENT/INSTRUMENT")
    show.add_argument("--json", action="store_true", help="as JSON")
    importing = commands.add_parser(
        "import-dcc", parents=[common], help="register an instrument's DCC 3.1.2 certificate"
    )
    importing.add_argument("file", type=Path, help="the DCC file (XML)")
    importing.add_argument("--due", help="due date (ISO 8601) when the DCC states none")
    importing.add_argument(
        "--accept-unsigned",
        action="store_true",
        help="register it even if its signature is invalid (the verdict is recorded)",
    )
    link = commands.add_parser(
        "link", parents=[common], help="correct a channel with a certificate's table"
    )
    link.add_argument("channel", help="SITE/AGENT/INSTRUMENT/CHANNEL")
    link.add_argument("certificate", type=int, help="the instrument certificate's id")
    link.add_argument("--table", type=int, help="which table (default: the one in its unit)")
    link.add_argument("--at", help="when it starts (ISO 8601, UTC if no zone; not in the past)")
    unlink = commands.add_parser("unlink", parents=[common], help="stop correcting a channel")
    unlink.add_argument("channel", help="SITE/AGENT/INSTRUMENT/CHANNEL")
    unlink.add_argument("--at", help="when it ends (ISO 8601; not in the past)")
    return parser


def _when(ns: int | None, lang: str) -> str:
    if ns is None:
        return t("corrections.in_force", lang)
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat(timespec="milliseconds")


def _instant(text: str | None, default_ns: int) -> int:
    if text is None:
        return default_ns
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise Refused("corrections.error.due", due=text, reason=str(exc)) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1e9)


def instruments_main(args: argparse.Namespace) -> int:
    """Run one ``etalon instruments`` command."""
    lang = lang_of(args)
    if getattr(args, "config", None) is None:
        print(f"etalon instruments: {t('corrections.config_required', lang)}", file=sys.stderr)
        return 2
    try:
        parts = load_parts(args.config, _GatewayParts)
    except ConfigError as exc:
        return refused("instruments", *exc.problems)
    command = args.instruments_command
    try:
        if command == "list":
            return with_records(parts, lambda records: _list(records, args, lang))
        if command == "show":
            return with_records(parts, lambda records: _show(records, args, lang))
        if command == "import-dcc":
            return with_records(
                parts, lambda records: _import(records, parts, args, lang), write=True
            )
        if command == "link":
            return with_records(
                parts, lambda records: _link(records, parts, args, lang), write=True
            )
        if command == "unlink":
            return with_records(
                parts, lambda records: _unlink(records, parts, args, lang), write=True
            )
    except (CorrectionsError, DccError) as exc:
        return refused("instruments", exc.message(lang))
    except EtalonError as exc:
        return refused("instruments", exc)
    return 2


async def _list(records: RecordStore, args: argparse.Namespace, lang: str) -> int:
    found = await records.run(instruments.instruments_view)
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return EXIT_OK
    if not found:
        print(t("corrections.list.none", lang))
        return EXIT_OK
    rows = [t("corrections.list.header", lang).split("|")]
    for item in found:
        for channel, entry in sorted(item["channels"].items()):
            table = entry["table"]
            rows.append(
                [
                    item["path"],
                    item["serial"] or "-",
                    channel,
                    f"{entry['certificate']['number']} ({entry['certificate']['id']})",
                    f"{table['index']}: {table['name']}",
                    f"{table['low']:g} … {table['high']:g} {table['unit']}",
                    entry["certificate"]["due_date"] or t("corrections.no_due", lang),
                ]
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    return EXIT_OK


async def _show(records: RecordStore, args: argparse.Namespace, lang: str) -> int:
    site, agent, name = instruments.parse_instrument(args.instrument)
    found = await records.run(lambda db: instruments.instrument_view(db, site, agent, name))
    if args.json:
        print(json.dumps(found, indent=2, ensure_ascii=False))
        return EXIT_OK
    print(
        t(
            "corrections.show.instrument",
            lang,
            instrument=found["path"],
            manufacturer=found["manufacturer"] or "-",
            model=found["model"] or "-",
            serial=found["serial"] or "-",
        )
    )
    print(t("corrections.show.links", lang))
    numbers = {c["id"]: c["number"] for c in found["certificates"]}
    for item in found["links"]:
        print(
            t(
                "corrections.show.link",
                lang,
                channel=item["channel"],
                number=numbers.get(item["certificate_id"], "?"),
                id=item["certificate_id"],
                table=item["table_index"],
                from_=_when(item["from_ns"], lang),
                until=_when(item["until_ns"], lang),
            )
        )
    print(t("corrections.show.certificates", lang, serial=found["serial"] or "-"))
    for certificate in found["certificates"]:
        print(
            t(
                "corrections.show.certificate",
                lang,
                id=certificate["id"],
                number=certificate["number"],
                issuer=certificate["issuer"],
                date=certificate["calibration_date"],
                due=certificate["due_date"] or t("corrections.no_due", lang),
                sha256=certificate["file_sha256"][:16],
            )
        )
        for table in certificate["tables"]:
            print(
                t(
                    "corrections.show.table",
                    lang,
                    index=table["index"],
                    name=table["name_vi"] if lang == "vi" else table["name"],
                    kind=table["kind"],
                    unit=table["unit"],
                    low=f"{table['low']:g}",
                    high=f"{table['high']:g}",
                    points=len(table["points"]),
                )
            )
    return EXIT_OK


def _anchors(parts: _GatewayParts) -> list[Any]:
    from metrology import dcc

    anchors: list[Any] = []
    for path in (parts.standards or StandardsConfig()).dcc.trust_anchors:
        try:
            anchors += dcc.load_certificates(path.read_bytes())
        except (OSError, dcc.SignatureError) as exc:
            raise Refused("corrections.error.file", file=str(path), reason=str(exc)) from None
    return anchors


async def _import(
    records: RecordStore, parts: _GatewayParts, args: argparse.Namespace, lang: str
) -> int:
    try:
        data = args.file.read_bytes()
    except OSError as exc:
        raise Refused("corrections.error.file", file=str(args.file), reason=exc.strerror) from None
    due = None
    if args.due is not None:
        try:
            due = dt.date.fromisoformat(args.due)
        except ValueError as exc:
            raise Refused("corrections.error.due", due=args.due, reason=str(exc)) from None
    done = await instruments.import_certificate(
        records,
        data,
        anchors=_anchors(parts),
        actor=actor_of(args),
        accept_invalid=args.accept_unsigned,
        file_name=args.file.name,
        due=due,
    )
    certificate = done.certificate
    print(
        t(
            "corrections.imported",
            lang,
            number=certificate.number,
            issuer=certificate.issuer,
            id=certificate.id,
            manufacturer=certificate.manufacturer or "-",
            model=certificate.model or "-",
            serial=certificate.serial or "-",
            tables=len(certificate.tables),
            due=certificate.due_date or t("corrections.no_due", lang),
        )
    )
    print("  " + t("corrections.signature", lang, status=done.signature.status, reason=""))
    return EXIT_OK


def _channel_and_instant(
    parts: _GatewayParts, args: argparse.Namespace
) -> tuple[instruments.ChannelPath, int]:
    """The channel a link or unlink is about, and its instant: ``--at``, else far enough ahead
    (two reloads and a second) that a running gateway has loaded the change before it."""
    margin = int((2 * parts.corrections.reload_s + 1) * 1e9)
    return instruments.parse_channel(args.channel), _instant(args.at, time.time_ns() + margin)


async def _link(
    records: RecordStore, parts: _GatewayParts, args: argparse.Namespace, lang: str
) -> int:
    path, at = _channel_and_instant(parts, args)
    done = await instruments.link(
        records,
        path,
        args.certificate,
        table=args.table,
        config=parts.corrections,
        actor=actor_of(args),
        at_ns=at,
    )
    table = done.certificate.tables[done.link.table_index]
    print(
        t(
            "corrections.linked",
            lang,
            channel=done.link.path,
            table=table.index,
            name=table.name_vi if lang == "vi" else table.name,
            number=done.certificate.number,
            id=done.certificate.id,
            from_=_when(done.link.from_ns, lang),
        )
    )
    if done.replaced is not None and done.replaced_certificate is not None:
        print(
            t(
                "corrections.replaced",
                lang,
                number=done.replaced_certificate.number,
                id=done.replaced_certificate.id,
                until=_when(done.replaced.until_ns, lang),
            )
        )
    return EXIT_OK


async def _unlink(
    records: RecordStore, parts: _GatewayParts, args: argparse.Namespace, lang: str
) -> int:
    path, at = _channel_and_instant(parts, args)
    ended, certificate = await instruments.unlink(records, path, actor=actor_of(args), at_ns=at)
    print(
        t(
            "corrections.unlinked",
            lang,
            channel=ended.path,
            number=certificate.number,
            until=_when(ended.until_ns, lang),
        )
    )
    return EXIT_OK
