"""Messages a user reads, in English and Vietnamese.

The language comes from ``--lang``, else ``ETALON_LANG``, else the locale of messages as the C
library and gettext resolve it (``LANGUAGE``, then the first set of ``LC_ALL``, ``LC_MESSAGES``,
``LANG``: ``vi_VN.UTF-8`` → Vietnamese), else English. Technical detail inside a message (a
server's answer) stays as the component produced it; a config's problems are translated by
:mod:`core.config_loader`.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from importlib import resources

LANGUAGES = ("en", "vi")

MessageTable = Mapping[str, Mapping[str, str]]
"""A feature's messages: key → language → text, every language of ``LANGUAGES`` present."""

_CATALOGUE: dict[str, Mapping[str, str]] = {}


def register(table: MessageTable) -> None:
    """Add a feature's declared table to the one catalogue.

    Every entry must have a text in each language of ``LANGUAGES``; a key another table already
    registered with different texts is refused (two features cannot both own one key). Registering
    the same table again is harmless, so a feature may register from every module that needs it.
    """
    for key, texts in table.items():
        missing = [lang for lang in LANGUAGES if lang not in texts]
        if missing:
            raise ValueError(f"message {key!r} has no text in {', '.join(missing)}")
        known = _CATALOGUE.get(key)
        if known is not None and dict(known) != dict(texts):
            raise ValueError(f"message {key!r} is registered twice with different texts")
    _CATALOGUE.update(table)


def known(key: str) -> bool:
    """Whether a message ``key`` is registered."""
    return key in _CATALOGUE


def load_table(package: str | None, name: str = "messages.json") -> MessageTable:
    """A feature's declared table from the JSON catalogue ``name`` in ``package`` (pass the
    module's ``__package__``).

    Texts live in data files, one per feature, so a translator edits them without touching
    code; JSON because the standard library parses it in C (every ``etalon`` process loads
    several catalogues at start). The file holds ``{key: {language: text}}``; anything else is
    refused naming the file.
    """
    if not package:
        raise ValueError(f"{name}: a message catalogue belongs to a package")
    resource = resources.files(package).joinpath(name)
    data = json.loads(resource.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(
        isinstance(texts, dict) and all(isinstance(v, str) for v in texts.values())
        for texts in data.values()
    ):
        raise ValueError(f"{package}/{name}: not a table of key → language → text")
    return data


CORE_MESSAGES: MessageTable = load_table(__package__)
"""Messages of the ``etalon`` command itself (check, config errors, the demo's live view)."""

register(CORE_MESSAGES)


_chosen: str | None = None


def choose_language(lang: str | None) -> None:
    """Set the language of this process (the command line's ``--lang``): ``language()``
    without a request returns it, so texts made far from the command line (an argparse type
    check) speak it too."""
    global _chosen
    _chosen = lang


def language(requested: str | None = None) -> str:
    """The language to use: the requested one, the process's chosen one, ETALON_LANG, the
    locale's (:func:`_locale_languages`), or English."""
    for candidate in (requested, _chosen, os.environ.get("ETALON_LANG"), *_locale_languages()):
        if candidate:
            code = candidate.split("_")[0].split(".")[0].split("@")[0].lower()
            if code in LANGUAGES:
                return code
    return "en"


def accepted_language(header: str) -> str | None:
    """The most preferred language of an HTTP ``Accept-Language`` header that the catalogue has
    (``fr-FR, vi;q=0.9`` → ``vi``), by its weights, the earlier on a tie; None if it names none.
    A weight that is no number counts as 0 (refused), as RFC 9110 has a malformed one ignored."""
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, weight = part.strip().partition(";q=")
        code = tag.split("-")[0].strip().lower()
        try:
            quality = float(weight) if weight else 1.0
        except ValueError:
            quality = 0.0
        if code in LANGUAGES and quality > 0:
            ranked.append((-quality, index, code))
    return min(ranked)[2] if ranked else None


def _locale_languages() -> list[str]:
    """The languages of messages the locale asks for, in gettext's order: the first set of
    ``LC_ALL``, ``LC_MESSAGES``, ``LANG`` (the C library's precedence); before it the list of
    ``LANGUAGE`` (``vi:en``), which gettext ignores when that locale is C/POSIX."""
    locale = next(
        (value for name in ("LC_ALL", "LC_MESSAGES", "LANG") if (value := os.environ.get(name))),
        "",
    )
    if locale.split(".")[0] in ("", "C", "POSIX"):
        return []
    return [*os.environ.get("LANGUAGE", "").split(":"), locale]


def t(key: str, lang: str = "en", **values: object) -> str:
    """The message ``key`` in ``lang`` (English if missing), formatted with ``values``."""
    texts = _CATALOGUE[key]
    return texts.get(lang, texts["en"]).format(**values)


# -- texts keyed by their English wording (argparse's help, usage and errors) ------------------

TEXT_PREFIX = "en:"
"""Catalogue keys of texts that are their own key: ``"en:" + the English text``."""


def register_texts(table: Mapping[str, str]) -> None:
    """Add Vietnamese for texts written in English where they are used (argparse ``help=``,
    ``description=``, argparse's own messages): English text → Vietnamese text."""
    register({TEXT_PREFIX + en: {"en": en, "vi": vi} for en, vi in table.items()})


def has_text(text: str) -> bool:
    """Whether an English text has its translations in the catalogue."""
    return TEXT_PREFIX + text in _CATALOGUE


class TextTranslator:
    """``translate(english)`` in one language, remembering the texts the catalogue lacks (a
    test fails on them); a callable usable as gettext."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.missing: set[str] = set()
        self._given: set[str] = set()

    def __call__(self, text: str) -> str:
        """The text in this language (unchanged in English, or when it is not known)."""
        if self.lang == "en" or not text or text in self._given:
            return text
        texts = _CATALOGUE.get(TEXT_PREFIX + text)
        if texts is None:
            self.missing.add(text)
            return text
        translated = texts.get(self.lang, text)
        self._given.add(translated)
        return translated

    def plural(self, singular: str, plural: str, count: int) -> str:
        """ngettext: the singular or plural text, translated."""
        return self(singular if count == 1 else plural)


# -- reasons with placeholders (an error's English text made where the language is not known) ---

_patterns: list[tuple[re.Pattern[str], str]] = []
_patterns_of = [0]  # the catalogue's size when the patterns were made


_NESTED = ("reason", "what")
"""Placeholders that hold a reason of their own (``channel {name}: {reason}``), translated in
turn."""


def _reason_patterns() -> tuple[tuple[re.Pattern[str], str], ...]:
    """The reasons with placeholders (the catalogue's ``reason.*`` keys, any feature's): a
    pattern matching the English text, and its key; the most specific first (the longest fixed
    text), so ``channel {name}: {reason}`` is tried before ``channel {name}``."""
    if _patterns and len(_CATALOGUE) == _patterns_of[0]:
        return tuple(_patterns)
    _patterns_of[0] = len(_CATALOGUE)
    patterns = []
    for key, texts in list(_CATALOGUE.items()):
        if key.startswith("reason."):
            parts = re.split(r"\{(\w+)\}", texts["en"])
            regex = "".join(
                re.escape(part)
                if index % 2 == 0
                else f"(?P<{part}>.+?)"
                if part in _NESTED
                else f"(?P<{part}>(?:(?!; ).)+?)"  # a value, not several reasons joined
                for index, part in enumerate(parts)
            )
            fixed = sum(len(part) for part in parts[::2])
            patterns.append((fixed, re.compile(regex + r"\Z", re.DOTALL), key))
    patterns.sort(key=lambda entry: -entry[0])
    _patterns[:] = [(pattern, key) for _, pattern, key in patterns]
    return tuple(_patterns)


def translate_reason(reason: str, lang: str, depth: int = 0) -> str:
    """A reason made in English where the language was not known (a validator's, the YAML
    parser's, a registry's refusal) in ``lang``: by the catalogue, or by the reasons with
    placeholders, or part by part when it joins several with ``; ``;
    unchanged when none knows it."""
    if lang == "en" or depth > 4:
        return reason
    translated = TextTranslator(lang)(reason)
    if translated != reason:
        return translated
    # The pattern that leaves the least text untranslated (its plain values, and its nested
    # reasons that stay English) wins: ``{what} on {where}`` over ``modbus simulator
    # ({framing}) serving {map}`` for "modbus simulator (mbap) serving lab-bus on
    # 127.0.0.1:502"; of equals, the most specific (the patterns' order).
    best: tuple[int, dict[str, str], str] | None = None
    for pattern, key in _reason_patterns():
        match = pattern.match(reason)
        if match is None:
            continue
        values, left = {}, 0
        for name, value in match.groupdict().items():
            values[name] = translate_reason(value, lang, depth + 1) if name in _NESTED else value
            left += len(value) if values[name] == value else 0
        if best is None or left < best[0]:
            best = (left, values, key)
    if best is not None:
        return t(best[2], lang, **best[1])
    if "; " in reason:
        return "; ".join(translate_reason(part, lang, depth + 1) for part in reason.split("; "))
    return reason
