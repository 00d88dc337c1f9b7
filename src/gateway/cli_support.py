"""What the commands working on a gateway's record store share (``etalon instruments``, and
``etalon standards`` / ``etalon records`` when they take it up): the parts of the gateway config
they read, the options accepted before or after the command word, who acts, and opening the
record store for one command.

Such a command reads only the config sections it needs (``site``, ``id``, ``records`` and what a
subclass of :class:`GatewayParts` adds), so the gateway's secrets need not be in the
environment; it works while that gateway runs (SQLite WAL, short transactions).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from core.config_loader import load_yaml, validation_problems
from core.errors import ConfigError
from core.exits import EXIT_CONFIG
from core.i18n import language, translate_reason
from core.models import Name
from gateway.records.chain import LedgerSettings
from gateway.records.config import RecordsConfig
from gateway.records.store import RecordStore

T = TypeVar("T")


class GatewayParts(BaseModel):
    """The parts of a gateway config a record-store command needs (the rest is not validated
    here); a command needing more sections subclasses it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    site: Name
    id: Name = "gw-1"
    records: RecordsConfig


P = TypeVar("P", bound=GatewayParts)


def load_parts(path: Path, model: type[P]) -> P:
    """The sections ``model`` declares of the gateway config at ``path``; ConfigError names
    file, line, field."""
    data, root = load_yaml(path)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None


def common_options(*, actor: bool = False, lang: bool = False) -> argparse.ArgumentParser:
    """A parent parser of the options every subcommand accepts, before or after its word:
    ``-c FILE``, and ``--actor`` / ``--lang`` when asked for."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "-c", "--config", type=Path, default=argparse.SUPPRESS, help="the gateway's config file"
    )
    if actor:
        common.add_argument(
            "--actor",
            default=argparse.SUPPRESS,
            help="who makes the change, for the audit log (default: cli:$USER)",
        )
    if lang:
        common.add_argument("--lang", default=argparse.SUPPRESS, help="en or vi")
    return common


def command_group(
    subparsers: Any, name: str, help: str, doc: str | None, common: argparse.ArgumentParser
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """``etalon NAME COMMAND …``: the group's parser (its description the first paragraph of
    the module's ``doc``, ``common``'s options accepted before the command word) and the
    subparsers its commands are added to (``args.NAME_command``)."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=" ".join(doc.split("\n\n")[0].split()) if doc else None,
        parents=[common],
    )
    commands = parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")
    return parser, commands


def refused(command: str, *problems: object) -> int:
    """Each problem on stderr as ``etalon COMMAND: problem``, in the process's language (a
    problem made in English where the language was not known, a registry's refusal, through
    :func:`core.i18n.translate_reason`); returns the exit status of a request that cannot be done
    as asked (1, ``core.exits.EXIT_CONFIG``)."""
    lang = language()
    for problem in problems:
        print(f"etalon {command}: {translate_reason(str(problem), lang)}", file=sys.stderr)
    return EXIT_CONFIG


def lang_of(args: argparse.Namespace) -> str:
    """The language of the command's messages (``--lang``, else the process's)."""
    return language(getattr(args, "lang", None))


def actor_of(args: argparse.Namespace) -> str:
    """Who acts, for the audit log: ``--actor``, else ``cli:$USER`` (``cli`` when the user
    cannot be told)."""
    if getattr(args, "actor", None):
        return str(args.actor)
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def with_records(
    parts: GatewayParts, work: Callable[[RecordStore], Awaitable[T]], *, write: bool = False
) -> T:
    """Run ``work`` on the record store, opened for this one command and closed after it;
    ``write``: the command changes records (it needs the ledger's signing key, and signs a
    checkpoint when it is done)."""

    async def run() -> T:
        ledger = LedgerSettings.of(
            parts.records, parts.site, parts.id, writer=write, sign_each_session=True
        )
        records = RecordStore(parts.records.path, ledger)
        await records.open()
        try:
            return await work(records)
        finally:
            await records.close()

    return asyncio.run(run())
