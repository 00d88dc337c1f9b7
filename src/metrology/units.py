r"""D-SI unit strings and the unit symbols a person writes (the registry's and the channels').

D-SI (PTB's SI data format, used by every DCC) writes a unit as a sequence of LaTeX-like tokens:
an optional prefix and a unit (``\milli\volt``), ``\tothe{n}`` for a power of the unit just
before it (``\metre\tothe{-1}``), and ``\per`` before a unit to divide by it, as siunitx does
(``\micro\volt\per\volt``, ``\joule\per\mole\per\kelvin``). The registry and the agents write
symbols: ``mV``, ``m⁻¹``, ``µV/V``, ``J/(mol·K)``.

Both directions are exact and refuse what they do not know, with the reason — a unit is never
guessed. ``dsi_to_symbol(symbol_to_dsi(s))`` gives back the canonical spelling of ``s``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from metrology.errors import UnsupportedUnit

PREFIXES: dict[str, tuple[str, int]] = {
    "yotta": ("Y", 24),
    "zetta": ("Z", 21),
    "exa": ("E", 18),
    "peta": ("P", 15),
    "tera": ("T", 12),
    "giga": ("G", 9),
    "mega": ("M", 6),
    "kilo": ("k", 3),
    "hecto": ("h", 2),
    "deca": ("da", 1),
    "deci": ("d", -1),
    "centi": ("c", -2),
    "milli": ("m", -3),
    "micro": ("µ", -6),
    "nano": ("n", -9),
    "pico": ("p", -12),
    "femto": ("f", -15),
    "atto": ("a", -18),
    "zepto": ("z", -21),
    "yocto": ("y", -24),
}
"""D-SI prefix name → (symbol, power of ten)."""

UNITS: dict[str, str] = {
    # SI base units
    "metre": "m",
    "kilogram": "kg",
    "gram": "g",
    "second": "s",
    "ampere": "A",
    "kelvin": "K",
    "mole": "mol",
    "candela": "cd",
    # SI derived units with special names
    "radian": "rad",
    "steradian": "sr",
    "hertz": "Hz",
    "newton": "N",
    "pascal": "Pa",
    "joule": "J",
    "watt": "W",
    "coulomb": "C",
    "volt": "V",
    "farad": "F",
    "ohm": "Ω",
    "siemens": "S",
    "weber": "Wb",
    "tesla": "T",
    "henry": "H",
    "degreecelsius": "°C",
    "lumen": "lm",
    "lux": "lx",
    "becquerel": "Bq",
    "gray": "Gy",
    "sievert": "Sv",
    "katal": "kat",
    # non-SI units accepted for use with the SI (SI brochure, table 8)
    "minute": "min",
    "hour": "h",
    "day": "d",
    "degree": "°",
    "arcminute": "′",
    "arcsecond": "″",
    "hectare": "ha",
    "litre": "L",
    "tonne": "t",
    "electronvolt": "eV",
    "dalton": "Da",
    "astronomicalunit": "au",
    "neper": "Np",
    "bel": "B",
    "decibel": "dB",
    "bar": "bar",
    # numbers
    "one": "1",
    "percent": "%",
    "ppm": "ppm",
}
"""D-SI unit name → symbol."""

NO_PREFIX = frozenset(
    {
        "kilogram",
        "degreecelsius",
        "minute",
        "hour",
        "day",
        "degree",
        "arcminute",
        "arcsecond",
        "hectare",
        "tonne",  # kt, Mt exist, but "ft", "pt", "at" must never read as femto-, pico-, atto-tonne
        "bel",  # the decibel is its own unit here
        "decibel",
        "one",
        "percent",
        "ppm",
    }
)
"""Units that take no prefix (``\\kilo\\kilogram`` or ``\\milli\\percent`` are refused)."""

SYMBOL_ALIASES: dict[str, str] = {
    "\u2126": "ohm",  # OHM SIGN (we write U+03A9 GREEK CAPITAL LETTER OMEGA)
    "Ohm": "ohm",
    "ohm": "ohm",
    "℃": "degreecelsius",
    "degC": "degreecelsius",
    "l": "litre",
    "%rh": "percent",  # relative humidity in percent: the quantity says "relative humidity"
    "%RH": "percent",
}
"""Other spellings read by :func:`symbol_to_dsi` (never written)."""

_MICRO = ("µ", "μ", "u")  # MICRO SIGN (written), GREEK SMALL LETTER MU, ASCII u

_TOKEN = re.compile(r"\\([A-Za-z]+)(?:\{([^{}]*)\})?")
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_TO_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
_EXPONENT = re.compile(r"^[+-]?\d+(?:\.\d+)?$")


@dataclass(frozen=True)
class UnitTerm:
    """One factor of a unit: prefix (a D-SI prefix name or None), unit name, exponent."""

    prefix: str | None
    unit: str
    exponent: Fraction = Fraction(1)

    def symbol(self) -> str:
        """``mV``, ``m⁻¹`` (the exponent's sign as written)."""
        prefix = PREFIXES[self.prefix][0] if self.prefix else ""
        return prefix + UNITS[self.unit] + _power(self.exponent)

    def dsi(self) -> str:
        """``\\milli\\volt``, ``\\metre\\tothe{-1}``."""
        text = (f"\\{self.prefix}" if self.prefix else "") + f"\\{self.unit}"
        if self.exponent != 1:
            text += f"\\tothe{{{_number(self.exponent)}}}"
        return text


@dataclass(frozen=True)
class Unit:
    """A unit as a product of terms (the order written is kept)."""

    terms: tuple[UnitTerm, ...]

    def dsi(self) -> str:
        """The D-SI string: positive terms, then ``\\per`` and each divisor; a unit with no
        positive term writes its negative powers (``\\metre\\tothe{-1}``)."""
        positive = [t for t in self.terms if t.exponent > 0]
        negative = [t for t in self.terms if t.exponent < 0]
        if not positive:
            return "".join(t.dsi() for t in self.terms)
        text = "".join(t.dsi() for t in positive)
        for term in negative:
            text += "\\per" + UnitTerm(term.prefix, term.unit, -term.exponent).dsi()
        return text

    def symbol(self) -> str:
        """The symbol: ``V``, ``µV/V``, ``m⁻¹``, ``J/(mol·K)``, ``m²``."""
        positive = [t for t in self.terms if t.exponent > 0]
        negative = [t for t in self.terms if t.exponent < 0]
        if not positive:
            return "·".join(t.symbol() for t in self.terms)
        numerator = "·".join(t.symbol() for t in positive)
        if not negative:
            return numerator
        divisors = [UnitTerm(t.prefix, t.unit, -t.exponent).symbol() for t in negative]
        denominator = divisors[0] if len(divisors) == 1 else "(" + "·".join(divisors) + ")"
        return f"{numerator}/{denominator}"

    def base(self) -> tuple[tuple[str, Fraction], ...]:
        """The terms without their prefixes (``\\kilogram`` as gram), to compare units that
        differ only by prefixes."""
        return tuple(("gram" if t.unit == "kilogram" else t.unit, t.exponent) for t in self.terms)

    def power_of_ten(self) -> int:
        """The power of ten that the prefixes contribute (``\\kilogram`` counts as kilo)."""
        total = Fraction(0)
        for term in self.terms:
            prefix = "kilo" if term.unit == "kilogram" else term.prefix
            if prefix:
                total += PREFIXES[prefix][1] * term.exponent
        if total.denominator != 1:
            raise UnsupportedUnit(self.dsi(), "a prefix under a fractional power")
        return int(total)


def _number(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f")


def _power(exponent: Fraction) -> str:
    if exponent == 1:
        return ""
    text = _number(exponent)
    if exponent.denominator == 1:
        return text.translate(_TO_SUPERSCRIPT)
    return f"^{text}"


def _exponent(text: str, unit: str) -> Fraction:
    if not _EXPONENT.match(text.strip()):
        raise UnsupportedUnit(unit, f"the power {text!r} is not a number")
    value = Fraction(text.strip())
    if value == 0:
        raise UnsupportedUnit(unit, "a power of 0")
    return value


def parse_dsi(unit: str) -> Unit:
    r"""A D-SI unit string as its terms; raises UnsupportedUnit with the reason for anything
    that is not a known prefix, unit, ``\per`` or ``\tothe{n}`` in a sensible order."""
    if not isinstance(unit, str) or not unit.strip():
        raise UnsupportedUnit(str(unit), "empty")
    text = unit.strip()
    terms: list[UnitTerm] = []
    prefix: str | None = None
    divide = False
    position = 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            raise UnsupportedUnit(
                unit, f"{text[position : match.start()]!r} is not a D-SI token (\\name)"
            )
        position = match.end()
        name, argument = match.group(1), match.group(2)
        if name == "tothe":
            if argument is None:
                raise UnsupportedUnit(unit, "\\tothe needs a power in braces: \\tothe{2}")
            if not terms or prefix is not None or divide:
                raise UnsupportedUnit(unit, "\\tothe must follow a unit")
            last = terms[-1]
            terms[-1] = UnitTerm(last.prefix, last.unit, last.exponent * _exponent(argument, unit))
            continue
        if argument is not None:
            raise UnsupportedUnit(unit, f"\\{name} takes no argument")
        if name == "per":
            if divide or prefix is not None:
                raise UnsupportedUnit(unit, "\\per must be followed by a unit")
            divide = True
        elif name in PREFIXES:
            if prefix is not None:
                raise UnsupportedUnit(unit, f"two prefixes in a row (\\{prefix}\\{name})")
            prefix = name
        elif name in UNITS:
            if prefix is not None and name in NO_PREFIX:
                raise UnsupportedUnit(unit, f"\\{name} takes no prefix (\\{prefix} given)")
            terms.append(UnitTerm(prefix, name, Fraction(-1 if divide else 1)))
            prefix, divide = None, False
        else:
            raise UnsupportedUnit(unit, f"\\{name} is not a D-SI prefix or unit known to etalon")
    if position != len(text):
        raise UnsupportedUnit(unit, f"{text[position:]!r} is not a D-SI token (\\name)")
    if prefix is not None or divide:
        raise UnsupportedUnit(unit, "ends with a prefix or \\per and no unit")
    if not terms:
        raise UnsupportedUnit(unit, "no unit")
    return Unit(tuple(terms))


_SYMBOLS: dict[str, str] = {symbol: name for name, symbol in UNITS.items()}


def _symbol_term(text: str, whole: str, sign: int) -> UnitTerm:
    body, exponent = text, Fraction(1)
    power = re.match(r"^(.*?)(?:\^\(?([+-]?\d+(?:\.\d+)?)\)?|([⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+))$", text)
    if power and (power.group(2) or power.group(3)):
        body = power.group(1)
        exponent = _exponent(power.group(2) or power.group(3).translate(_SUPERSCRIPTS), whole)
    if not body:
        raise UnsupportedUnit(whole, f"{text!r} has a power but no unit")
    name = SYMBOL_ALIASES.get(body) or _SYMBOLS.get(body)
    if name is not None:
        return UnitTerm(None, name, exponent * sign)
    for micro in _MICRO:
        if body.startswith(micro) and len(body) > len(micro):
            rest = body[len(micro) :]
            unit = SYMBOL_ALIASES.get(rest) or _SYMBOLS.get(rest)
            if unit is not None and unit not in NO_PREFIX:
                return UnitTerm("micro", unit, exponent * sign)
    hint = ""
    for prefix, (symbol, _) in PREFIXES.items():
        if body.startswith(symbol) and len(body) > len(symbol):
            rest = body[len(symbol) :]
            unit = SYMBOL_ALIASES.get(rest) or _SYMBOLS.get(rest)
            if unit is not None:
                if unit in NO_PREFIX:
                    hint = f" ({rest!r} takes no prefix)"
                    continue
                return UnitTerm(prefix, unit, exponent * sign)
    raise UnsupportedUnit(whole, f"{body!r} is not a unit symbol known to etalon{hint}")


def _split_product(text: str) -> list[str]:
    return [part for part in re.split(r"[·⋅*\s]+", text.strip()) if part]


def parse_symbol(symbol: str) -> Unit:
    """A unit symbol (``mV``, ``kΩ``, ``µV/V``, ``m⁻¹``, ``m^-1``, ``J/(mol·K)``, ``°C``, ``%``,
    ``ppm``) as its terms; raises UnsupportedUnit with the reason."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise UnsupportedUnit(str(symbol), "empty")
    text = symbol.strip()
    if text in SYMBOL_ALIASES or text in _SYMBOLS:
        return Unit((_symbol_term(text, symbol, 1),))
    if text.count("/") > 1:
        raise UnsupportedUnit(
            symbol, "more than one '/' is ambiguous: write the divisors in parentheses, J/(mol·K)"
        )
    numerator, slash, denominator = text.partition("/")
    if slash and not denominator.strip():
        raise UnsupportedUnit(symbol, "nothing after '/'")
    terms: list[UnitTerm] = []
    parts = _split_product(numerator)
    if parts == ["1"] and denominator:
        parts = []
    terms.extend(_symbol_term(part, symbol, 1) for part in parts)
    if denominator:
        inner = denominator.strip()
        if inner.startswith("(") and inner.endswith(")"):
            inner = inner[1:-1]
        elif len(_split_product(inner)) > 1:
            raise UnsupportedUnit(symbol, "several divisors must be in parentheses: J/(mol·K)")
        divisors = _split_product(inner)
        if not divisors:
            raise UnsupportedUnit(symbol, "nothing after '/'")
        terms.extend(_symbol_term(part, symbol, -1) for part in divisors)
    if not terms:
        raise UnsupportedUnit(symbol, "no unit")
    return Unit(tuple(terms))


def dsi_to_symbol(unit: str) -> str:
    r"""The symbol of a D-SI unit string: ``\milli\volt`` → ``mV``, ``\metre\tothe{-1}`` →
    ``m⁻¹``, ``\micro\volt\per\volt`` → ``µV/V``."""
    return parse_dsi(unit).symbol()


def symbol_to_dsi(symbol: str) -> str:
    r"""The D-SI string of a symbol: ``kΩ`` → ``\kilo\ohm``, ``ppm`` → ``\ppm``,
    ``°C`` → ``\degreecelsius``."""
    return parse_symbol(symbol).dsi()


def same_unit(first: str, second: str) -> bool:
    r"""Whether two D-SI strings name the same unit (``\metre\per\second`` and
    ``\metre\second\tothe{-1}`` do)."""
    a, b = parse_dsi(first), parse_dsi(second)
    return sorted(a.base()) == sorted(b.base()) and a.power_of_ten() == b.power_of_ten()


def scale_factor(from_unit: str, to_unit: str) -> Decimal:
    r"""The exact factor that turns a value in ``from_unit`` into ``to_unit`` when the two
    differ only by prefixes (``\milli\volt`` → ``\volt``: 0.001). Units of other kinds are
    refused (°C and K differ by an offset, % and ppm are other quantities' business)."""
    a, b = parse_dsi(from_unit), parse_dsi(to_unit)
    if sorted(a.base()) != sorted(b.base()):
        raise UnsupportedUnit(
            from_unit, f"cannot be converted to {to_unit!r}: not the same unit up to prefixes"
        )
    return Decimal(10) ** (a.power_of_ten() - b.power_of_ten())
