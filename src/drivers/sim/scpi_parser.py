"""A small SCPI-1999 command parser for the simulated instruments.

It does what an instrument's parser does with a program message: split it into commands at
``;`` (outside quotes and channel lists), resolve each header against a command tree with short
and long forms (``VOLT`` / ``VOLTage``), optional nodes (``[SENSe]``), numeric suffixes
(``SENS1``) and the compound-command rule (a header without a leading ``:`` continues the
previous command's path), and split the parameters at commas.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass


class ScpiError(Exception):
    """A command the instrument refuses: goes to the error queue as ``code,"message"``."""

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f'{code:+d},"{message}"')

    @property
    def entry(self) -> str:
        """The error queue entry, as ``SYST:ERR?`` returns it."""
        return f'{self.code:+d},"{self.message}"'


UNDEFINED_HEADER = (-113, "Undefined header")
SYNTAX_ERROR = (-102, "Syntax error")
MISSING_PARAMETER = (-109, "Missing parameter")
PARAMETER_NOT_ALLOWED = (-108, "Parameter not allowed")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
QUEUE_OVERFLOW = (-350, "Queue overflow")


@dataclass(frozen=True)
class _Node:
    short: str
    long: str
    optional: bool

    def matches(self, token: str) -> bool:
        word = token.upper()
        if word in (self.short, self.long):
            return True
        # A numeric suffix selects an instance (SENS1, CALC2); instruments with one accept it.
        stripped = word.rstrip("0123456789")
        return stripped != word and stripped in (self.short, self.long)


def _parse_pattern(pattern: str) -> tuple[tuple[_Node, ...], bool]:
    """``[SENSe]:VOLTage:[DC]:NPLCycles?`` → nodes and whether it is a query."""
    is_query = pattern.endswith("?")
    body = pattern.rstrip("?")
    nodes = []
    for part in body.split(":"):
        optional = part.startswith("[") and part.endswith("]")
        name = part.strip("[]")
        short = "".join(c for c in name if c.isupper() or c.isdigit() or c == "*")
        nodes.append(_Node(short or name.upper(), name.upper(), optional))
    return tuple(nodes), is_query


Handler = Callable[[list[str]], str | None]


@dataclass(frozen=True)
class Command:
    """One entry of a command tree."""

    nodes: tuple[_Node, ...]
    is_query: bool
    handler: Handler

    def matches(self, tokens: Sequence[str]) -> bool:
        """Whether a header's mnemonics select this command."""
        return _match(self.nodes, tuple(tokens))


def _match(nodes: tuple[_Node, ...], tokens: tuple[str, ...]) -> bool:
    if not nodes:
        return not tokens
    head, rest = nodes[0], nodes[1:]
    if tokens and head.matches(tokens[0]) and _match(rest, tokens[1:]):
        return True
    return head.optional and _match(rest, tokens)


class CommandTree:
    """The commands one instrument understands."""

    def __init__(self) -> None:
        self._commands: list[Command] = []

    def add(self, pattern: str, handler: Handler) -> None:
        """Register a handler for a pattern such as ``[SENSe]:VOLTage:[DC]:NPLCycles?``."""
        nodes, is_query = _parse_pattern(pattern)
        self._commands.append(Command(nodes, is_query, handler))

    def find(self, tokens: Sequence[str], is_query: bool) -> Command:
        """The command a header selects; raises ScpiError(-113) if none."""
        for command in self._commands:
            if command.is_query == is_query and command.matches(tokens):
                return command
        raise ScpiError(*UNDEFINED_HEADER)


_HEADER = re.compile(r"^\s*(:?[*A-Za-z][A-Za-z0-9:*]*)(\?)?(?:\s+(.*))?$", re.DOTALL)


def split_outside(text: str, separator: str) -> list[str]:
    """Split at ``separator`` outside quotes and parentheses (channel lists like ``(@1,2)``)."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    current: list[str] = []
    for char in text:
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif char == separator and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


@dataclass(frozen=True)
class ParsedCommand:
    """One command of a program message, header resolved to mnemonics."""

    tokens: tuple[str, ...]
    is_query: bool
    params: list[str]
    text: str


def parse_message(message: str) -> list[ParsedCommand | ScpiError]:
    """Split a program message into commands; a malformed one becomes its ScpiError."""
    out: list[ParsedCommand | ScpiError] = []
    path: tuple[str, ...] = ()
    for raw in split_outside(message.strip(), ";"):
        text = raw.strip()
        if not text:
            continue
        match = _HEADER.match(text)
        if match is None:
            out.append(ScpiError(*SYNTAX_ERROR))
            continue
        header, question, rest = match.group(1), match.group(2), match.group(3)
        params = [p.strip() for p in split_outside(rest, ",")] if rest and rest.strip() else []
        if header.startswith("*"):
            tokens: tuple[str, ...] = (header.upper(),)
        else:
            absolute = header.startswith(":")
            own = tuple(t for t in header.strip(":").split(":") if t)
            tokens = own if absolute or not path else path + own
            path = tokens[:-1]
        out.append(ParsedCommand(tokens, question == "?", params, text))
    return out


def number(param: str, allowed: Sequence[str] = ("MIN", "MAX", "DEF")) -> float | str:
    """A numeric parameter, or one of the allowed keywords (returned upper-cased)."""
    word = param.strip().upper()
    for keyword in allowed:
        if word.startswith(keyword[:3]) and keyword.startswith(word[:3]):
            return keyword
    try:
        return float(param)
    except ValueError:
        raise ScpiError(*ILLEGAL_PARAMETER) from None


MAX_CHANNELS = 1000
"""Channels one list may name (a scanner card has tens): ``(@1:2000000000)`` is an error, not
two billion integers."""


def channel_list(param: str) -> list[int]:
    """``(@1,2)`` or ``(@1:3)`` → channel numbers (at most :data:`MAX_CHANNELS`)."""
    text = param.strip()
    if not (text.startswith("(@") and text.endswith(")")):
        raise ScpiError(*ILLEGAL_PARAMETER)
    channels: list[int] = []
    for part in text[2:-1].split(","):
        try:
            if ":" in part:
                first, last = (int(x) for x in part.split(":"))
                if last - first + 1 > MAX_CHANNELS - len(channels):
                    raise ScpiError(*ILLEGAL_PARAMETER)
                channels.extend(range(first, last + 1))
            else:
                channels.append(int(part))
        except ValueError:
            raise ScpiError(*ILLEGAL_PARAMETER) from None
        if len(channels) > MAX_CHANNELS:
            raise ScpiError(*ILLEGAL_PARAMETER)
    return channels
