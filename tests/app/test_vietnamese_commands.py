"""Under ``--lang vi`` every command that answers and ends speaks Vietnamese, on its errors too:
each leaf of the ``etalon`` parser tree (``standards show``, ``hub labs``, ``pki acl``…) is run
with its required arguments given a value that names nothing, against a gateway's and a hub's
config whose services are absent, and what it prints is searched for English by the detector of
``test_vietnamese``. A command left out is one that runs until stopped."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest

from app.cli import build_parser
from app.parser_texts import parsers
from tests.app.test_vietnamese import commands, english_vocabulary, english_words, in_process
from tests.support.processes import REPO

RUN_UNTIL_STOPPED = {"demo", "agent", "gateway", "sim"}
"""Commands that run until stopped (their texts are in test_vietnamese and the demo's tests)."""
STARTS_A_RUN = {("calibrate", "run"), ("calibrate", "resume")}
"""Commands that drive a bench (test_vietnamese's sample covers their refusals)."""
MACHINE_OUTPUT = {"schema"}
"""Commands whose output is for programs (JSON Schemas)."""
NOTHING = "xyzzy"


def leaves() -> list[list[str]]:
    """Each command that has no subcommands, as the words that name it."""
    out = []
    for command in commands():
        if command is None or command in RUN_UNTIL_STOPPED | MACHINE_OUTPUT:
            continue
        for parser in parsers(build_parser(command)):
            words = parser.prog.split()[1:]
            if words[:1] != [command] or tuple(words[:2]) in STARTS_A_RUN:
                continue
            if not any(isinstance(a, argparse._SubParsersAction) for a in parser._actions):
                out.append(words)
    return out


def arguments(words: list[str], configs: dict[str, Path]) -> list[str]:
    """The required arguments of the command ``words``, each given a value that names nothing
    (a choice: its first), ``-c`` the config of its group."""
    parser = next(p for p in parsers(build_parser(words[0])) if p.prog.split()[1:] == words)
    out: list[str] = []
    for action in parser._actions:
        value = str(next(iter(action.choices))) if action.choices else NOTHING
        if action.dest == "config":
            out += [action.option_strings[-1], str(configs.get(words[0], configs["gateway"]))]
        elif action.option_strings:
            if action.required:
                out += [action.option_strings[-1]] + ([] if action.nargs == 0 else [value])
        elif action.nargs not in ("?", "*"):
            out += [value] * (action.nargs if isinstance(action.nargs, int) else 1)
    return out


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A gateway's config (records, standards) in a temporary folder, a hub's whose database is
    not there."""
    folder = tmp_path_factory.mktemp("vi-commands")
    gateway = folder / "gateway.yaml"
    gateway.write_text(
        (REPO / "config" / "gateway-standards.yaml")
        .read_text(encoding="utf-8")
        .replace("/tmp/etalon", str(folder)),
        encoding="utf-8",
    )
    hub = folder / "hub.yaml"
    hub.write_text(
        (REPO / "config" / "hub.yaml")
        .read_text(encoding="utf-8")
        .replace("/tmp/etalon", str(folder))
        .replace("port=5432", "port=1"),
        encoding="utf-8",
    )
    return {"gateway": gateway, "hub": hub}


@pytest.mark.parametrize("words", leaves(), ids=" ".join)
def test_every_command_answers_in_vietnamese(
    words: list[str],
    configs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ETALON_CALIBRATION_DIR", str(tmp_path / "calibration"))
    monkeypatch.setenv("ETALON_API_URL", "http://127.0.0.1:1")
    for index, name in enumerate(("ETALON_HUB_DB_PASSWORD", "ETALON_TOKEN_OPS", "ETALON_TOKEN_QM")):
        monkeypatch.setenv(name, f"secret-{index}-" + "s" * 32)  # two tokens differ
    monkeypatch.setattr("sys.stdin", io.StringIO("short\n"))  # a token to hash, refused
    args = [*words, *arguments(words, configs)]
    code, text = in_process(*args)
    assert text.strip(), args
    vocabulary = english_vocabulary()
    found = english_words(text.replace(str(tmp_path), " "), vocabulary)
    assert found == [], f"etalon --lang vi {' '.join(args)} → {code}\n{text}"
