"""The ``etalon`` argument parser in the user's language.

Help texts are written in English where the arguments are declared; their Vietnamese is in the
catalogue (:func:`core.i18n.register_texts`, the tables of :mod:`app.help_texts`). Before the
parser is built, :func:`use_language` points argparse's own texts ("usage:", "options", its
errors) at the catalogue; once built, :func:`translate_parser` rewrites every description, help,
group title and epilog of the parser tree. Texts the catalogue lacks stay in English and are
remembered in :attr:`core.i18n.TextTranslator.missing` (a test fails on them).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from typing import Any

from app import help_texts
from core.i18n import TextTranslator, has_text

help_texts.register_all()


def use_language(lang: str) -> TextTranslator:
    """Make argparse's own texts (usage, headings, errors) come from the catalogue."""
    translator = TextTranslator(lang)
    argparse._ = translator  # type: ignore[attr-defined]  # argparse's gettext hook
    argparse.ngettext = translator.plural  # type: ignore[attr-defined]
    return translator


def parsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    """The parser and every subparser under it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            seen: set[int] = set()
            for child in action.choices.values():
                if id(child) not in seen:  # aliases share a parser
                    seen.add(id(child))
                    yield from parsers(child)


class _NamedType:
    """An argument's type under another name: argparse names the type in "invalid TYPE value"
    by its ``__name__`` (``float``), which is English."""

    def __init__(self, convert: Callable[[str], Any], name: str) -> None:
        self._convert = convert
        self.__name__ = name

    def __call__(self, text: str) -> Any:
        return self._convert(text)


def translate_parser(parser: argparse.ArgumentParser, translator: TextTranslator) -> None:
    """Rewrite the texts of the whole parser tree in the translator's language: help, titles,
    and the names of the argument types (those the catalogue knows, ``argparse_types``)."""
    if translator.lang == "en":
        return
    for each in parsers(parser):
        if each.description:
            each.description = translator(each.description)
        if each.epilog:
            each.epilog = translator(each.epilog)
        for group in each._action_groups:
            if group.title:
                group.title = translator(group.title)
            if group.description:
                group.description = translator(group.description)
        for action in each._actions:
            if action.help and action.help != argparse.SUPPRESS:
                action.help = translator(action.help)
            name = getattr(action.type, "__name__", None)
            if callable(action.type) and isinstance(name, str) and has_text(name):
                action.type = _NamedType(action.type, translator(name))
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    if choice.help:
                        choice.help = translator(choice.help)
