"""Config of a line-based ASCII instrument on a serial port or a TCP serial server.

Per instrument: the command that asks for a reading (none for instruments that stream), the
write and read terminators, the encoding, and a regular expression whose named groups are the
channels' values. Example (a humidity/temperature/pressure transmitter that answers ``SEND``)::

    protocol: serial_ascii
    transport: {kind: serial, port: /dev/ttyUSB0, baudrate: 9600}
    command: SEND
    pattern: 'T=\\s*(?P<temperature>\\S+).*RH=\\s*(?P<humidity>\\S+).*P=\\s*(?P<pressure>\\S+)'
    channels:
      - {name: temperature, unit: °C}
"""

from __future__ import annotations

import codecs
import re
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel
from drivers.config import ChannelBase, InstrumentBase, compiled_text
from drivers.serial_line import SerialSettings


class AsciiSerialPort(SerialSettings):
    """A local serial port (RS-232/RS-485); ASCII instruments mostly run 9600 8N1."""

    kind: Literal["serial"]
    baudrate: int = Field(9600, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = "N"

    def url(self) -> str:
        """What pyserial opens."""
        return self.port


class AsciiTcpServer(FrozenModel):
    """A TCP serial server (serial-to-Ethernet converter) in raw TCP mode."""

    kind: Literal["tcp"]
    host: str = Field(..., min_length=1)
    port: int = Field(..., ge=1, le=65535)

    def url(self) -> str:
        """What pyserial opens."""
        return f"socket://{self.host}:{self.port}"


AsciiTransport = Annotated[AsciiSerialPort | AsciiTcpServer, Field(discriminator="kind")]


class SerialAsciiChannel(ChannelBase):
    """One value of the reply: which named group of the pattern holds it."""

    group: str | None = Field(
        None, description="Named group of the pattern; default: the channel name with - as _."
    )
    type: Literal["float", "int", "str"] = "float"

    @property
    def group_name(self) -> str:
        """The group this channel reads."""
        return self.group or self.name.replace("-", "_").replace(".", "_")


def _unescape(value: str) -> str:
    # YAML users write "\r\n" inside single quotes too; accept both spellings.
    return codecs.decode(value, "unicode_escape") if "\\" in value else value


class SerialAsciiInstrument(InstrumentBase):
    """A line-based ASCII instrument, polled by a command or streaming on its own."""

    protocol: Literal["serial_ascii"]
    transport: AsciiTransport
    command: str | None = Field(
        None, description="What to send to ask for a reading; none for instruments that stream."
    )
    write_terminator: str = "\r\n"
    read_terminator: str = "\r\n"
    encoding: str = "ascii"
    pattern: str = Field(
        ..., description="Regular expression searched in each reply line; named groups → channels."
    )
    channels: list[SerialAsciiChannel]

    @field_validator("write_terminator", "read_terminator")
    @classmethod
    def _terminator(cls, value: str) -> str:
        value = _unescape(value)
        if not value:
            raise ValueError("a terminator cannot be empty")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError as exc:
            raise ValueError(f"unknown encoding {value!r}") from exc
        return value

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        return compiled_text(value, "pattern does not compile")

    @model_validator(mode="after")
    def _groups_exist(self) -> SerialAsciiInstrument:
        groups = set(re.compile(self.pattern).groupindex)
        for channel in self.channels:
            if channel.group_name not in groups:
                raise ValueError(
                    f"channel {channel.name!r}: the pattern has no group "
                    f"(?P<{channel.group_name}>...) (it has: {', '.join(sorted(groups)) or 'none'})"
                )
        return self

    def compiled(self) -> re.Pattern[str]:
        """The compiled pattern."""
        return re.compile(self.pattern)
