"""Serial line settings shared by every driver that talks over RS-232/RS-485."""

from __future__ import annotations

from typing import Literal, TypedDict

from pydantic import Field

from core.models import FrozenModel


class SerialFraming(TypedDict):
    """A line's framing under the keyword names pyserial's ``Serial`` takes (pymodbus's serial
    client takes the same and passes them on)."""

    baudrate: int
    bytesize: int
    parity: str
    stopbits: int


class SerialSettings(FrozenModel):
    """One serial port: device path and framing."""

    port: str = Field(..., min_length=1, description="Device path, e.g. /dev/ttyUSB0 or COM3.")
    baudrate: int = Field(19_200, gt=0, le=4_000_000)
    bytesize: Literal[7, 8] = 8
    parity: Literal["N", "E", "O"] = "E"
    stopbits: Literal[1, 2] = 1

    def framing(self) -> SerialFraming:
        """The framing as the serial libraries take it: one translation for every driver."""
        return {
            "baudrate": self.baudrate,
            "bytesize": self.bytesize,
            "parity": self.parity,
            "stopbits": self.stopbits,
        }

    def char_time_s(self) -> float:
        """Time one character takes on the wire (start + data + parity + stop bits)."""
        bits = 1 + self.bytesize + (0 if self.parity == "N" else 1) + self.stopbits
        return bits / self.baudrate

    def t35_s(self) -> float:
        """The Modbus RTU inter-frame silence: 3.5 characters, fixed at 1.75 ms above 19200 Bd
        (Modbus over serial line, §2.5.1.1)."""
        if self.baudrate > 19_200:
            return 0.00175
        return 3.5 * self.char_time_s()
