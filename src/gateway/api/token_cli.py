"""``etalon token new|hash``: API tokens whose config entry holds only an argon2id hash.

``new`` draws a random token and prints it once with its config entry; ``hash`` reads a token on
standard input (never from the command line, where other users see it in the process list) and
prints its hash. Exit status: 0 done, 1 refused, 2 bad command line.
"""

from __future__ import annotations

import argparse
import secrets
import sys

from core.exits import EXIT_CONFIG, EXIT_OK
from core.i18n import MessageTable, load_table, register, t
from gateway.api.auth import MAX_TOKEN_CHARS, token_hasher

MIN_TOKEN_CHARS = 16

TOKEN_MESSAGES: MessageTable = load_table(__package__, "token_messages.json")
"""The texts of ``etalon token``."""

register(TOKEN_MESSAGES)


def add_token_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``etalon token`` and its subcommands."""
    parser = sub.add_parser("token", help="API tokens stored as argon2id hashes")
    commands = parser.add_subparsers(dest="token_command", required=True, metavar="COMMAND")
    new = commands.add_parser("new", help="a new random token and its config entry")
    new.add_argument("--name", required=True, help="who holds it (recorded in the audit log)")
    new.add_argument("--role", required=True, choices=["viewer", "auditor", "operator", "admin"])
    commands.add_parser("hash", help="the hash of a token read on standard input")


def hash_entry(name: str, role: str, token_hash: str) -> str:
    """One ``api.tokens`` entry in YAML (the hash quoted: it holds '$' and ',')."""
    return f"- {{name: {name}, role: {role}, token_hash: '{token_hash}'}}"


def token_main(args: argparse.Namespace, lang: str) -> int:
    """Run one ``etalon token`` command."""
    hasher = token_hasher()
    if args.token_command == "new":
        from pydantic import TypeAdapter, ValidationError

        from core.models import Name

        try:
            TypeAdapter(Name).validate_python(args.name)
        except ValidationError:
            print(t("token.name", lang, name=args.name), file=sys.stderr)
            return EXIT_CONFIG
        token = secrets.token_urlsafe(32)
        print(t("token.new", lang, name=args.name, role=args.role))
        print(f"  {token}")
        print(t("token.entry", lang))
        print(f"  {hash_entry(args.name, args.role, hasher.hash(token))}")
        return EXIT_OK
    if sys.stdin.isatty():
        print(t("token.prompt", lang), file=sys.stderr)
    token = sys.stdin.readline().strip()
    if not MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS:
        print(t("token.short", lang, least=MIN_TOKEN_CHARS, most=MAX_TOKEN_CHARS), file=sys.stderr)
        return EXIT_CONFIG
    print(hasher.hash(token))
    return EXIT_OK
