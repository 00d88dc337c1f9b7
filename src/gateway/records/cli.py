"""``etalon records verify|rotate-key|key``: the record store's integrity from the command line.

Works on the record store a gateway config names (``-c FILE``), also while that gateway runs.
Only the config's ``site``, ``id`` and ``records`` sections are read.

Exit status: 0 verified (or done); 1 a problem with the config, the key or the store (named);
2 bad command line; 3 the records are not what was recorded (the first finding is printed:
the entry or row, and the kind of tampering).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from core.errors import ConfigError, EtalonError
from core.exits import EXIT_OK
from core.i18n import language, register
from gateway.cli_support import GatewayParts, load_parts, refused
from gateway.records.bodies import append_audit
from gateway.records.chain import LedgerSettings
from gateway.records.keys import load_key, trusted_keys, write_public_key
from gateway.records.messages import RECORDS_MESSAGES, text_of
from gateway.records.store import RecordStore
from gateway.records.verify import RecordsReport, verify_file
from ledger import LedgerError, PublicKey, SigningKey

register(RECORDS_MESSAGES)

EXIT_USAGE = 2
EXIT_TAMPERED = 3


def add_records_parser(subparsers: Any) -> argparse.ArgumentParser:
    """``etalon records ...``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help="the gateway's config file"
    )
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "records",
        help="the record store's integrity: verify, rotate-key, key",
        description=__doc__.splitlines()[0] if __doc__ else None,
        parents=[common],
    )
    commands = parser.add_subparsers(dest="records_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "verify",
        parents=[common],
        help="walk the ledger and the live tables; exit 3 naming the first broken thing",
    )
    check.add_argument("--json", action="store_true", help="the whole report as JSON")
    check.add_argument(
        "--trust",
        type=Path,
        action="append",
        default=[],
        help="a public key file to trust instead of the config's (repeatable)",
    )
    rotate = commands.add_parser(
        "rotate-key",
        parents=[common],
        help="sign the ledger with a new key from now on (recorded in the chain)",
    )
    rotate.add_argument(
        "--new-key", type=Path, help="the new key (PEM, mode 0600); default: a new random key"
    )
    rotate.add_argument("--actor", help="who rotates it, for the record (default: cli:$USER)")
    commands.add_parser("key", parents=[common], help="print the ledger's public key")
    return parser


def records_main(args: argparse.Namespace) -> int:
    """Run one ``etalon records`` command."""
    lang = language(getattr(args, "lang", None))
    if getattr(args, "config", None) is None:
        print("etalon records: the gateway's config is required (-c FILE)", file=sys.stderr)
        return EXIT_USAGE
    try:
        parts = load_parts(args.config, GatewayParts)
        command = args.records_command
        if command == "verify":
            return _verify(parts, args, lang)
        if command == "rotate-key":
            return _rotate(parts, args, lang)
        if command == "key":
            return _key(parts)
    except ConfigError as exc:
        return refused("records", *exc.problems)
    except (EtalonError, OSError) as exc:
        return refused("records", exc)
    return EXIT_USAGE


def _trusted(parts: GatewayParts, files: list[Path]) -> list[PublicKey]:
    if files:
        try:
            return [PublicKey.from_text(path.read_bytes()) for path in files]
        except (OSError, LedgerError) as exc:
            raise ConfigError([f"--trust: {exc}"]) from None
    keys = trusted_keys(parts.records)
    if keys:
        return keys
    # No pinned key and no public key file: the private key's own half, if readable here.
    try:
        return [load_key(parts.records, create=False).public_key]
    except ConfigError:
        return []


def print_report(report: RecordsReport, lang: str) -> None:
    """The report as a person reads it: the summary, the findings, what stays unproven."""
    print(report.summary(lang))
    if report.findings[1:]:
        print(text_of("records.verify.more", {"count": len(report.findings) - 1}, lang))
        for finding in report.findings[1:]:
            print(f"  - {finding.text(lang)}")
    if report.finding is not None and report.finding.entry is not None:
        entry = report.finding.entry
        print(
            f"  entry {entry.seq}: {entry.kind} {entry.subject!r} by {entry.actor!r} "
            f"at {entry.ts_ns}"
        )
    if report.chain is not None:
        for note in report.chain.notes:
            print(f"  ({note.text(lang)})")


def _verify(parts: GatewayParts, args: argparse.Namespace, lang: str) -> int:
    report = verify_file(parts.records, _trusted(parts, args.trust))
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2, ensure_ascii=False))
    else:
        print_report(report, lang)
    return EXIT_OK if report.ok else EXIT_TAMPERED


def _key(parts: GatewayParts) -> int:
    keys = trusted_keys(parts.records)
    if not keys:
        keys = [load_key(parts.records, create=False).public_key]
    for key in keys:
        print(key.key_id)
        print(key.to_pem().decode(), end="")
    return EXIT_OK


def _rotate(parts: GatewayParts, args: argparse.Namespace, lang: str) -> int:
    records = parts.records
    actor = args.actor or f"cli:{getpass.getuser()}"
    if records.ledger.key_env is not None and args.new_key is None:
        raise ConfigError(
            [
                f"the ledger's key comes from ${records.ledger.key_env}: give the new key with "
                f"--new-key FILE, then set ${records.ledger.key_env} to it"
            ]
        )
    try:
        new = SigningKey.load(args.new_key) if args.new_key else SigningKey.generate()
    except LedgerError as exc:
        raise ConfigError([f"--new-key: {exc}"]) from None
    staged = None
    if records.ledger.key_env is None:
        # The new key waits beside the old one until the rotation is committed; a crash in
        # between is finished at the next start (the chain names the key in force).
        staged = records.key_path().with_name(records.key_path().name + ".new")
        staged.unlink(missing_ok=True)
        new.save(staged)
    settings = LedgerSettings.of(records, parts.site, parts.id, sign_each_session=True)

    async def run() -> tuple[str, str, int]:
        store = RecordStore(records.path, settings)
        await store.open()
        try:
            ledger = store.ledger
            old = ledger.key
            assert old is not None

            def rotate(db: Any) -> int:
                db.execute("BEGIN IMMEDIATE")
                entry = ledger.rotate(db, new, actor)
                append_audit(
                    db,
                    actor,
                    "ledger key rotated",
                    "ledger",
                    {"old_key": old.key_id, "new_key": new.key_id, "entry": entry.seq},
                )
                db.execute("COMMIT")
                return entry.seq

            seq = await store.run(rotate)
            if staged is not None:
                staged.replace(records.key_path())
                write_public_key(records.public_key_path(), new.public_key)
            return old.key_id, new.key_id, seq
        finally:
            await store.close()

    try:
        old_id, new_id, seq = asyncio.run(run())
    except BaseException:
        if staged is not None:
            staged.unlink(missing_ok=True)
        raise
    if records.ledger.key_env is not None:
        params = {"old": old_id, "new": new_id, "seq": seq, "env": records.ledger.key_env}
        print(text_of("records.key.env_rotated", params, lang))
    else:
        params = {"old": old_id, "new": new_id, "seq": seq, "public": records.public_key_path()}
        print(text_of("records.key.rotated", params, lang))
    return EXIT_OK
