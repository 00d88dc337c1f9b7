"""Under ``--lang vi`` nothing a user reads is English unless it is a name, a unit or a technical
detail: every ``--help`` of every command and subcommand, argparse's own words, and a sample of
bodies and errors. A text missing from the catalogue fails here, by the catalogue's own record of
misses and by the English words it would print."""

from __future__ import annotations

import argparse
import io
import re
import subprocess
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest
import yaml

from app.cli import build_parser, main
from app.parser_texts import parsers, translate_parser, use_language
from core import i18n
from tests.support.processes import REPO, child_env, etalon_command


def commands() -> list[str | None]:
    """Every subcommand of ``etalon`` (each builds its own parser tree when it is the one run)."""
    parser = build_parser(None)
    [action] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return [None, *action.choices]


ALLOWED = {
    # names of things, protocols, formats, products
    "etalon", "modbus", "rtu", "tcp", "opc", "ua", "scpi", "visa", "dmm", "uut", "mqtt", "api",
    "json", "yaml", "yml", "csv", "xml", "html", "pdf", "pem", "dcc", "idn", "influxdb", "url",
    "ewma", "cusum", "nelson", "allan", "greenhall", "birge", "engineeringunits", "ethernet", "rs",
    "pty", "ctrl", "iso", "sha", "id", "ca", "cas", "cli", "stdout", "broker", "token",
    "schema", "endpoint", "auto", "sigma", "rms", "http", "errno", "ascii", "dc", "mosquitto",
    # units and symbols
    "ppm", "ms", "rh", "hpa", "min", "h", "s", "v", "k", "u", "x", "d", "m", "ohm",
    # words that are Vietnamese syllables too
    "an", "tin", "con", "hay", "sau", "theo", "cho", "khi", "trong", "thanh", "la", "in", "do",
    "so",
    # config values and keys quoted in help (a standard's kind, a channel's scale=)
    "resistance", "frequency", "scale", "offset",
}  # fmt: skip
"""Tokens allowed in Vietnamese output (lower-case)."""

COMMON_ENGLISH = {
    "the", "of", "and", "or", "to", "in", "on", "at", "by", "for", "with", "from", "is", "are",
    "be", "not", "no", "this", "that", "a", "it", "its", "as", "every", "each", "one", "all",
    "read", "write", "file", "run", "show", "list", "default", "value", "values", "error",
    "usage", "options", "arguments", "help", "message", "exit", "required", "invalid",
    "standard", "certificate", "channel", "instrument", "good", "bad", "time", "port",
}  # fmt: skip


def english_vocabulary() -> set[str]:
    """Every word of every English text the program has, plus common English words."""
    words = set(COMMON_ENGLISH)
    for texts in i18n._CATALOGUE.values():
        words |= {w.lower() for w in re.findall(r"[A-Za-z]+", texts["en"])}
    if not NAMES:
        all_help("en")
    return words - ALLOWED - (NAMES - FUNCTION_WORDS)


FUNCTION_WORDS = {
    "the", "of", "and", "or", "to", "at", "on", "by", "for", "with", "from", "is", "are", "be",
    "not", "no", "a", "all", "it", "as", "cannot", "has", "have", "such", "already",
}  # fmt: skip
"""English words that stay English even where an option is named after them (``--no-…``,
``--from``, ``--all``): a sentence made of them is English."""


def english_words(text: str, vocabulary: set[str]) -> list[str]:
    """English words of ``text``, leaving out options (--x), METAVARS, {placeholders},
    `code`, paths, URLs, identifiers with digits or dots, and the allowed names."""
    text = re.sub(r"\[Errno \d+\][^(]*", " ", text)  # the OS's own words: technical detail
    text = re.sub(r"`[^`]*`|https?://\S+|\S*/\S*|\$\w+|\{[^}]*\}|'[^']*'|\"[^\"]*\"", " ", text)
    found = []
    for token in re.findall(r"(?<![\w-])-{0,2}[A-Za-z][\w.-]*", text):
        if token.startswith("-") or token.isupper() or re.search(r"[\d_.]", token):
            continue
        for word in token.split("-"):
            if word.lower() in vocabulary and word.lower() not in ALLOWED:
                found.append(word)
    return found


NAMES: set[str] = set()
"""Names the command line declares (commands, choices, destinations): words of the interface."""


def _names(parser: argparse.ArgumentParser) -> set[str]:
    out = set(parser.prog.split())
    for action in parser._actions:
        out |= {str(c) for c in action.choices or ()}
        out.add(action.dest)
        if isinstance(action.metavar, str):
            out.add(action.metavar)
    return {w.lower() for name in out for w in re.split(r"[-_ ]", name)}


def all_help(lang: str) -> tuple[str, set[str]]:
    """Every --help text of every parser under every command, and the catalogue's misses."""
    translator = use_language(lang)
    out = []
    for command in commands():
        parser = build_parser(command)
        translate_parser(parser, translator)
        for each in parsers(parser):
            NAMES.update(_names(each))
            out.append(each.format_help())
    use_language("en")
    return "\n".join(out), translator.missing


def test_every_help_text_and_argparse_word_is_in_the_catalogue() -> None:
    text, missing = all_help("vi")
    assert missing == set(), sorted(missing)
    found = english_words(text, english_vocabulary())
    assert found == [], sorted(set(found))
    assert "cách dùng:" in text and "tùy chọn:" in text and "hiện trợ giúp" in text


def test_the_detector_finds_english_help() -> None:
    """The same check on the English help finds English (it can fail)."""
    text, missing = all_help("en")
    assert missing == set()
    found = set(english_words(text, english_vocabulary()))
    assert {"the", "usage", "options"} <= found


def run_vi(*args: str, cwd: Path) -> tuple[int, str]:
    result = subprocess.run(
        etalon_command("--lang", "vi", *args),
        capture_output=True,
        text=True,
        env=child_env(),
        cwd=cwd,
        timeout=120,
    )
    return result.returncode, result.stdout + result.stderr


def in_process_words(*args: str) -> tuple[int, str]:
    """``etalon ARGS`` in this process: its status and what it printed."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            code = main(list(args))
        except SystemExit as stop:
            code = int(stop.code or 0)
    use_language("en")
    i18n.choose_language(None)
    return code, out.getvalue() + err.getvalue()


def in_process(*args: str) -> tuple[int, str]:
    return in_process_words("--lang", "vi", *args)


@pytest.mark.parametrize(
    ("args", "status", "says"),
    [
        (["agent"], 2, "thiếu các đối số bắt buộc"),
        (["schema", "nope"], 2, "lựa chọn không hợp lệ"),
        (["agent", "-c", "x.yaml", "--once", "--count", "0"], 2, "một số nguyên"),
        (["alerts", "shelve", "3", "--for", "5x", "--reason", "r"], 2, "khoảng thời gian"),
        (["alerts", "--url", "http://127.0.0.1:1", "list"], 3, "không kết nối được"),
        (["standards", "list"], 2, "cần tệp cấu hình"),
        (["check", "config/gateway-sqlite.yaml"], 0, "hợp lệ"),
        (["gateway", "-c", "config/agent-sim.yaml"], 1, "không phải cấu hình cổng"),
        (["demo", "-c", "config/agent-sim.yaml"], 1, "không phải cấu hình trình diễn"),
    ],
)
def test_errors_and_bodies_in_vietnamese(args: list[str], status: int, says: str) -> None:
    vocabulary = english_vocabulary()
    args = [str(REPO / a) if a.startswith("config/") else a for a in args]
    code, text = in_process(*args)
    assert code == status, text
    assert says in text, text
    assert english_words(text, vocabulary) == [], text


def strings(data: object) -> set[str]:
    """Every string in a YAML document."""
    if isinstance(data, str):
        return {data}
    if isinstance(data, dict):
        return set().union(*(strings(v) for v in data.values()), set())
    if isinstance(data, list):
        return set().union(*(strings(v) for v in data), set())
    return set()


def without_data(text: str, path: Path) -> str:
    """``text`` without the strings of a YAML file: a lab's own words (names, descriptions,
    notes) are its data, in whatever language it wrote them."""
    for data in sorted(strings(yaml.safe_load(path.read_text())), key=len, reverse=True):
        text = text.replace(data, " ")
    return text


def test_standards_show_and_once_bodies_in_vietnamese(tmp_path: Path) -> None:
    """``etalon --lang vi standards show`` (the body was English) and ``agent --once``."""
    vocabulary = english_vocabulary()
    gateway = tmp_path / "gateway.yaml"
    gateway.write_text(
        (REPO / "config" / "gateway-standards.yaml")
        .read_text()
        .replace("/tmp/etalon", str(tmp_path))
    )
    standards = REPO / "config" / "standards" / "zener-lab.yaml"
    code, text = run_vi("standards", "-c", str(gateway), "import", str(standards), cwd=tmp_path)
    assert code == 0, text
    assert english_words(text, vocabulary) == [], text
    code, listing = run_vi("standards", "-c", str(gateway), "list", cwd=tmp_path)
    assert code == 0, listing
    first = listing.splitlines()[1].split()[0]
    code, text = run_vi("standards", "-c", str(gateway), "show", first, cwd=tmp_path)
    assert code == 0, text
    assert "Chuẩn " in text and "Giấy chứng nhận" in text and "Liên kết chuẩn" in text
    assert english_words(without_data(text, standards), vocabulary) == [], text
    code, text = run_vi(
        "agent", "-c", str(REPO / "config" / "agent-sim.yaml"), "--once", cwd=tmp_path
    )
    assert code == 0, text
    assert "thiết bị" in text and "tốt" in text
    assert english_words(without_data(text, REPO / "config" / "agent-sim.yaml"), vocabulary) == []


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LANG": "vi_VN.UTF-8"}, "vi"),
        ({"LC_ALL": "vi_VN.UTF-8", "LANG": "C.UTF-8"}, "vi"),
        ({"LC_MESSAGES": "vi_VN.UTF-8"}, "vi"),
        ({"LANGUAGE": "vi:en", "LANG": "en_US.UTF-8"}, "vi"),
        ({"LANGUAGE": "vi", "LANG": "C.UTF-8"}, "en"),  # gettext ignores LANGUAGE under C
        ({"LC_ALL": "C", "LANG": "vi_VN.UTF-8"}, "en"),  # LC_ALL wins, as in the C library
        ({"ETALON_LANG": "vi", "LC_ALL": "en_US.UTF-8"}, "vi"),
        ({}, "en"),
    ],
)
def test_the_locale_chooses_the_language(
    env: dict[str, str], expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("ETALON_LANG", "LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert i18n.language() == expected


def test_lang_is_accepted_after_every_command_word() -> None:
    """``scripts/demo --lang vi`` (the quick start's first command) passes it after ``demo``."""
    for command in commands():
        for each in parsers(build_parser(command)):
            assert "--lang" in each._option_string_actions, each.prog
    code, text = in_process_words("agent", "--lang", "vi")
    assert code == 2 and "thiếu các đối số bắt buộc" in text, text
    code, text = in_process_words("demo", "--lang", "vi", "--duration", "x")
    assert code == 2 and "giá trị không hợp lệ: 'x' (cần một số)" in text, text


def test_a_simulator_refuses_a_map_that_names_nothing_in_vietnamese(tmp_path: Path) -> None:
    """``etalon sim modbus-tcp --map nope`` printed a traceback (FileNotFoundError)."""
    code, text = run_vi("sim", "modbus-tcp", "--map", "nope", "--port", "0", cwd=tmp_path)
    assert code == 5, text
    assert "Traceback" not in text
    assert "không có bảng thanh ghi 'nope'" in text, text
    reason = text.split("(dựng sẵn:")[0]  # then the names of the shipped maps
    assert english_words(reason, english_vocabulary()) == [], text
