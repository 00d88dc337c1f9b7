"""Engineering units of OPC UA variables: EUInformation, UNECE Rec. 20 common codes, symbols.

An AnalogItem says its unit in its ``EngineeringUnits`` property, an EUInformation: a
``NamespaceUri`` (``http://www.opcfoundation.org/UA/units/un/cefact`` for UNECE codes), a
``UnitId`` (the common code's ASCII characters packed into an Int32: ``CEL`` → 0x43454C), a
``DisplayName`` (free text, e.g. "°C") and a ``Description``. The code is what a program can
rely on; the display name is what a person reads. :func:`unit_of` gives the symbol a reading
carries: the table's for a known code (the server's display name when it is one of the
spellings the table accepts for that code, e.g. "%rh" for percent), else the display name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UNECE_NAMESPACE = "http://www.opcfoundation.org/UA/units/un/cefact"
"""EUInformation.NamespaceUri of UNECE common codes (OPC UA Part 8)."""

MAX_UNIT_LENGTH = 32
"""The longest unit a reading may carry (the wire format's limit)."""
_NOT_PLAIN = re.compile(r"[\\\x00-\x1f\x7f]")
"""What a unit may not contain: a backslash (InfluxDB cannot round-trip it in a tag) and control
characters — a server's display name is free text."""

SYMBOLS: dict[str, tuple[str, ...]] = {
    # code: (symbol, other spellings a server may display for the same unit)
    "CEL": ("°C", "degC", "℃"),
    "KEL": ("K",),
    "FAH": ("°F", "degF"),
    "VLT": ("V",),
    "KVT": ("kV",),
    "2Z": ("mV",),
    "D82": ("µV", "μV", "uV"),
    "AMP": ("A",),
    "4K": ("mA",),
    "B84": ("µA", "μA", "uA"),
    "C39": ("nA",),
    "OHM": ("Ω", "\u2126", "ohm"),  # Greek capital omega, then the ohm sign
    "E45": ("mΩ", "mohm"),
    "B49": ("kΩ", "kohm"),
    "B75": ("MΩ", "Mohm"),
    "HTZ": ("Hz",),
    "KHZ": ("kHz",),
    "MHZ": ("MHz",),
    "A86": ("GHz",),
    "WTT": ("W",),
    "C31": ("mW",),
    "KWT": ("kW",),
    "PAL": ("Pa",),
    "A97": ("hPa",),
    "KPA": ("kPa",),
    "MPA": ("MPa",),
    "MBR": ("mbar",),
    "BAR": ("bar",),
    "P1": ("%", "%rh", "%RH", "% RH", "%r.h."),
    "59": ("ppm",),
    "C62": ("1",),
    "SEC": ("s",),
    "C26": ("ms",),
    "B98": ("µs", "μs", "us"),
    "MIN": ("min",),
    "HUR": ("h",),
    "DAY": ("d",),
    "MTR": ("m",),
    "CMT": ("cm",),
    "MMT": ("mm",),
    "4H": ("µm", "μm", "um"),
    "C45": ("nm",),
    "KGM": ("kg",),
    "GRM": ("g",),
    "LTR": ("l", "L"),
    "L2": ("l/min", "L/min"),
    "MTQ": ("m³", "m3"),
    "MQH": ("m³/h", "m3/h"),
    "MTS": ("m/s",),
    "DD": ("°",),
}
"""Common codes an instrument's server is likely to send, and their symbols (UNECE Rec. 20 as
the OPC Foundation's UNECE_to_OPCUA table gives them; '%' also for relative humidity)."""


def unit_id(code: str) -> int:
    """The EUInformation.UnitId of a common code: its ASCII characters, most significant first."""
    value = 0
    for char in code.upper():
        value = value << 8 | ord(char)
    return value


def common_code(value: int) -> str | None:
    """The common code a UnitId packs, or None (-1 means 'no code'; other values that are not
    1-3 upper-case letters or digits are not a UNECE code)."""
    if not 0 < value < 1 << 24:
        return None
    text = value.to_bytes(3, "big").lstrip(b"\x00")
    if not text or not all(ch in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789" for ch in text):
        return None
    return text.decode("ascii")


@dataclass(frozen=True, slots=True)
class EngineeringUnit:
    """What a node says its unit is, reduced to what etalon needs."""

    code: str | None
    """UNECE common code, when the UnitId is one."""
    display_name: str
    refused: str | None = None
    """A display name too long to be a unit (then left out), for the driver to report."""

    @property
    def symbol(self) -> str:
        """The unit a reading carries: the table's symbol of the code (or the display name when
        it is one of that code's spellings), else the display name, else the code."""
        spellings = SYMBOLS.get(self.code or "")
        if spellings is None:
            return self.display_name or (self.code or "")
        return self.display_name if self.display_name in spellings else spellings[0]

    def agrees_with(self, unit: str) -> bool:
        """Whether a unit a config gives names this unit (any accepted spelling)."""
        if unit in (self.symbol, self.display_name):
            return True
        return unit in SYMBOLS.get(self.code or "", ())


def engineering_unit(
    namespace_uri: str | None, unit_id_value: int, display_name: str
) -> EngineeringUnit:
    """An EUInformation's fields as an EngineeringUnit. The UnitId is read as a UNECE code when
    the namespace is UNECE's or not given (servers often leave it empty). The display name loses
    backslashes and control characters; one longer than a unit may be is refused."""
    code = None
    if namespace_uri in (None, "", UNECE_NAMESPACE):
        code = common_code(unit_id_value)
    display = _NOT_PLAIN.sub("", display_name).strip()
    if len(display) > MAX_UNIT_LENGTH:
        return EngineeringUnit(code, "", refused=display_name)
    return EngineeringUnit(code, display)
