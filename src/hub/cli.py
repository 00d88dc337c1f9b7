"""``etalon hub``: run the national hub, and its institute's commands.

::

    etalon hub -c hub.yaml                                   run the hub (HTTP API and pages)
    etalon hub enrol -c hub.yaml --lab ID --key FILE --name NAME [--province P]
    etalon hub labs -c hub.yaml [--json]
    etalon hub revoke -c hub.yaml --lab ID --reason TEXT
    etalon hub token -c hub.yaml --lab ID                     a new push token
    etalon hub migrate -c hub.yaml [--check]
    etalon hub link add -c hub.yaml --from LAB/STD (--to LAB/STD | --national TEXT |
                                    --kcdb ID | --cmc ID) [--certificate N] [--valid-until D]
    etalon hub link list -c hub.yaml [--lab ID]
    etalon hub link withdraw -c hub.yaml --id N --reason TEXT
    etalon hub verify-audit -c hub.yaml

The commands work on the hub's database directly (the machine that runs the hub); the same
operations exist in the HTTP API for administrators. Exit status: 0 done, 1 a problem with the
input (named), 2 a bad command line, 5 the database could not be used.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from core.config_loader import load_config
from core.errors import ConfigError, EtalonError, InvalidInputError
from core.exits import EXIT_CONFIG, EXIT_OK, exit_code_for
from core.i18n import language, t
from hub.audit import HubAudit, verify_audit
from hub.config import HubConfig
from hub.db import Connection, connect, migrate, pending_migrations, shipped_migrations
from hub.errors import HubError, HubInvalid
from hub.labs import Enrolment, Revocation, enrol, list_labs, reissue_token, revoke
from hub.links import LinkSpec, add_link, list_links, withdraw_link
from hub.messages import ui
from ledger import LedgerError, PublicKey

T = TypeVar("T")


def add_hub_parser(sub: Any) -> None:
    """The ``hub`` command and its actions."""
    hub = sub.add_parser("hub", help="the national hub: run it, enrol and revoke labs, links")
    hub.add_argument("-c", "--config", type=Path, help="the hub's config (hub.yaml)")
    actions = hub.add_subparsers(dest="action", metavar="ACTION")

    def action(name: str, text: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = actions.add_parser(name, help=text)
        parser.add_argument(
            "-c",
            "--config",
            type=Path,
            default=argparse.SUPPRESS,
            help="the hub's config (hub.yaml)",
        )
        parser.add_argument(
            "--as", dest="actor", default=None, help="who does it (default: the login name)"
        )
        return parser

    enrol_ = action("enrol", "enrol a lab with its ledger public key; prints its push token")
    enrol_.add_argument("--lab", required=True, help="the lab's ledger id")
    enrol_.add_argument("--key", required=True, type=Path, help="its public key (PEM or base64)")
    enrol_.add_argument("--name", help="the lab's name (default: its id)")
    enrol_.add_argument("--province", help="its province or city")
    enrol_.add_argument("--country", default="VN", help="its country, ISO 3166 code (default: VN)")
    enrol_.add_argument("--contact", help="whom to contact at the lab")
    labs = action("labs", "list the enrolled labs")
    labs.add_argument("--json", action="store_true", help="as JSON")
    revoke_ = action("revoke", "revoke a lab: its later pushes are refused")
    revoke_.add_argument("--lab", required=True, help="the lab's ledger id")
    revoke_.add_argument("--reason", required=True, help="why, for the hub's audit chain")
    token = action("token", "issue a new push token for a lab (the old one stops working)")
    token.add_argument("--lab", required=True, help="the lab's ledger id")
    migrate_ = action("migrate", "apply the database migrations")
    migrate_.add_argument("--check", action="store_true", help="only say what is pending")
    action("verify-audit", "verify the hub's own audit chain")
    link = action("link", "traceability links typed in by the national institute")
    link_actions = link.add_subparsers(dest="link_action", metavar="LINK_ACTION", required=True)
    add = link_actions.add_parser("add", help="add a link")
    add.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help="the hub's config (hub.yaml)"
    )
    add.add_argument("--from", dest="source", required=True, help="LAB/STANDARD")
    target = add.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", help="LAB/STANDARD that calibrated it")
    target.add_argument("--national", help="designate it a national standard (the decision)")
    target.add_argument("--kcdb", help="the BIPM key comparison underpinning it (KCDB id)")
    target.add_argument("--cmc", help="the CMC underpinning it (KCDB id)")
    add.add_argument("--certificate", help="the certificate that makes the link")
    add.add_argument("--valid-until", help="YYYY-MM-DD: after it the link is expired")
    add.add_argument("--note", help="a note kept with the link")
    listing = link_actions.add_parser("list", help="list links")
    listing.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help="the hub's config (hub.yaml)"
    )
    listing.add_argument("--lab", help="only the links of this lab")
    listing.add_argument("--json", action="store_true", help="as JSON")
    withdraw = link_actions.add_parser("withdraw", help="withdraw an institute link")
    withdraw.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help="the hub's config (hub.yaml)"
    )
    withdraw.add_argument("--id", type=int, required=True, help="the link's id")
    withdraw.add_argument("--reason", required=True, help="why, for the hub's audit chain")


def _run(work: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(work())  # type: ignore[arg-type]


def _split(text: str, option: str) -> tuple[str, str]:
    lab, sep, standard = text.partition("/")
    if not sep or not lab or not standard:
        raise HubInvalid("hub.error.lab_standard", option=option, text=text)
    return lab, standard


def _problem(exc: ValidationError, where: str) -> InvalidInputError:
    first = exc.errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    return InvalidInputError(f"{where}: {loc + ': ' if loc else ''}{first.get('msg', '')}")


def _revocation(args: argparse.Namespace) -> Revocation:
    try:
        return Revocation(reason=args.reason)
    except ValidationError as exc:
        raise _problem(exc, "--reason") from None


def link_spec(args: argparse.Namespace) -> LinkSpec:
    """The link ``etalon hub link add`` describes; InvalidInputError names the option."""
    from_lab, from_standard = _split(args.source, "--from")
    data: dict[str, Any] = {
        "from_lab": from_lab,
        "from_standard": from_standard,
        "certificate": args.certificate,
        "note": args.note,
    }
    if args.to:
        to_lab, to_standard = _split(args.to, "--to")
        data |= {"to_kind": "standard", "to_lab": to_lab, "to_standard": to_standard}
    elif args.national:
        data |= {"to_kind": "national", "to_ref": args.national}
    elif args.kcdb:
        data |= {"to_kind": "kcdb_comparison", "to_ref": args.kcdb}
    else:
        data |= {"to_kind": "cmc", "to_ref": args.cmc}
    if args.valid_until:
        try:
            data["valid_until"] = dt.date.fromisoformat(args.valid_until)
        except ValueError:
            raise HubInvalid(
                "hub.error.date", option="--valid-until", text=args.valid_until
            ) from None
    try:
        return LinkSpec.model_validate(data)
    except ValidationError as exc:
        raise _problem(exc, "link") from None


def enrolment(args: argparse.Namespace) -> Enrolment:
    """The enrolment ``etalon hub enrol`` describes."""
    try:
        key_text = args.key.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise HubInvalid("hub.error.key_unreadable", file=str(args.key), reason=str(exc)) from None
    try:
        PublicKey.from_text(key_text.strip())
    except (LedgerError, ValueError) as exc:
        raise HubInvalid("hub.error.key_invalid", file=str(args.key), reason=str(exc)) from None
    try:
        return Enrolment(
            lab=args.lab,
            public_key=key_text.strip(),
            name=args.name or args.lab,
            province=args.province,
            country=args.country,
            contact=args.contact,
        )
    except ValidationError as exc:
        raise _problem(exc, "enrol") from None


async def _with_db(config: HubConfig, work: Callable[[Connection], Awaitable[T]]) -> T:
    conn = await connect(config.database)
    try:
        if await pending_migrations(conn):
            raise ConfigError([ui("hub.error.not_migrated", language())])
        async with conn.transaction():
            return await work(conn)
    finally:
        await conn.close()


def _audit(config: HubConfig) -> HubAudit:
    from hub.service import load_key

    return HubAudit(config.id, load_key(config.key_file))


def _labs_table(rows: list[dict[str, Any]], lang: str) -> str:
    if not rows:
        return ui("hub.cli.no_labs", lang)
    columns = ui("hub.cli.labs_columns", lang).split("|")
    header = ui(
        "hub.cli.labs_header",
        lang,
        **dict(zip(("lab", "name", "province", "entries", "state"), columns, strict=True)),
    )
    lines = [header]
    for row in rows:
        state = ui("hub.ui.lab.revoked" if row["revoked_ns"] else "hub.ui.lab.active", lang)
        lines.append(
            ui(
                "hub.cli.labs_header",
                lang,
                lab=row["id"],
                name=row["name"][:32],
                province=(row["province"] or "")[:16],
                entries=row["count"],
                state=state,
            )
        )
    return "\n".join(lines)


def hub_main(args: argparse.Namespace, serve: Callable[[HubConfig], int]) -> int:
    """Run ``etalon hub …``; ``serve(config)`` runs the hub itself (the process is app's)."""
    lang = language(getattr(args, "lang", None))
    path: Path | None = getattr(args, "config", None)
    if path is None:
        print(f"etalon hub: {ui('hub.cli.config_required', lang)}", file=sys.stderr)
        return 2
    try:
        config = load_config(path, HubConfig)
    except ConfigError as exc:
        print(f"etalon hub: {t('config.invalid', lang, file=path)}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    actor = getattr(args, "actor", None) or f"cli:{getpass.getuser()}"
    try:
        if args.action is None:
            return serve(config)
        return _dispatch(args, config, actor, lang)
    except (EtalonError, BaseExceptionGroup) as exc:
        code, text = exit_code_for(exc)
        if isinstance(exc, HubError):
            text = exc.message(lang)
        print(f"etalon hub: {text}", file=sys.stderr)
        return code


def _dispatch(args: argparse.Namespace, config: HubConfig, actor: str, lang: str) -> int:
    action = args.action
    if action == "migrate":
        return _migrate(config, args.check, lang)
    if action == "enrol":
        spec = enrolment(args)
        audit = _audit(config)
        token = _run(lambda: _with_db(config, lambda c: enrol(c, audit, spec, actor)))
        key = PublicKey.from_text(spec.public_key).key_id
        print(ui("hub.cli.enrolled", lang, lab=spec.lab, key=key, token=token))
        return EXIT_OK
    if action == "labs":
        rows = _run(lambda: _with_db(config, list_labs))
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        else:
            print(_labs_table(rows, lang))
        return EXIT_OK
    if action == "revoke":
        revocation = _revocation(args)
        audit = _audit(config)
        _run(lambda: _with_db(config, lambda c: revoke(c, audit, args.lab, revocation, actor)))
        print(ui("hub.cli.revoked", lang, lab=args.lab))
        return EXIT_OK
    if action == "token":
        audit = _audit(config)
        token = _run(lambda: _with_db(config, lambda c: reissue_token(c, audit, args.lab, actor)))
        print(ui("hub.cli.token", lang, lab=args.lab, token=token))
        return EXIT_OK
    if action == "verify-audit":
        audit = _audit(config)
        report = _run(
            lambda: _with_db(config, lambda c: verify_audit(c, config.id, [audit.key.public_key]))
        )
        if report.ok:
            count = report.head.count if report.head is not None else 0
            print(ui("hub.cli.audit_ok", lang, count=count, signed=report.signed_count))
            return EXIT_OK
        assert report.finding is not None
        print(ui("hub.cli.audit_broken", lang, finding=report.finding.text(lang)), file=sys.stderr)
        return EXIT_CONFIG
    if action == "link":
        return _link(args, config, actor, lang)
    return 2


def _migrate(config: HubConfig, check: bool, lang: str) -> int:
    async def work() -> list[Any]:
        conn = await connect(config.database)
        try:
            return await (pending_migrations(conn) if check else migrate(conn))
        finally:
            await conn.close()

    done = _run(work)
    version = len(shipped_migrations())
    if not done:
        print(ui("hub.cli.up_to_date", lang, version=version))
        return EXIT_OK
    names = ", ".join(f"{m.version:03d}_{m.name}" for m in done)
    print(ui("hub.cli.migrated", lang, count=len(done), names=names))
    return EXIT_CONFIG if check else EXIT_OK


def _link(args: argparse.Namespace, config: HubConfig, actor: str, lang: str) -> int:
    if args.link_action == "add":
        spec = link_spec(args)
        audit = _audit(config)
        link_id = _run(lambda: _with_db(config, lambda c: add_link(c, audit, spec, actor)))
        print(ui("hub.cli.link_added", lang, id=link_id))
        return EXIT_OK
    if args.link_action == "list":
        rows = _run(lambda: _with_db(config, lambda c: list_links(c, args.lab)))
        if args.json:
            print(json.dumps(rows, indent=2, ensure_ascii=False, default=str))
        elif not rows:
            print(ui("hub.cli.no_links", lang))
        for row in [] if args.json else rows:
            target = (
                f"{row['to_lab']}/{row['to_standard']}"
                if row["to_kind"] == "standard"
                else f"{row['to_kind']}:{row['to_ref']}"
            )
            print(
                f"{row['id']:>6} {row['source']:<11} {row['from_lab']}/{row['from_standard']}"
                f" -> {target}"
            )
        return EXIT_OK
    revocation = _revocation(args)
    audit = _audit(config)
    _run(lambda: _with_db(config, lambda c: withdraw_link(c, audit, args.id, revocation, actor)))
    print(ui("hub.cli.link_withdrawn", lang, id=args.id))
    return EXIT_OK
