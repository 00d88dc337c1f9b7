"""The ``etalon`` command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.cli import agent_main
from gateway.drift_cli import add_drift_parser, drift_main


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="etalon", description="Edge data acquisition and drift monitoring."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    agent = sub.add_parser("agent", help="run an edge agent")
    agent.add_argument("-c", "--config", type=Path, required=True)
    add_drift_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    if args.command == "agent":
        return agent_main(args.config)
    if args.command == "drift":
        return drift_main(args)
    return 2


if __name__ == "__main__":
    sys.exit(main())
