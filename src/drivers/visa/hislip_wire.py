"""HiSLIP's wire format (IVI-6.1): the message header, the message types and codes both ends use
(etalon's client link, :mod:`drivers.visa.hislip_link`, and the SCPI simulator's server).

Every message is a 16-byte header — ``"HS"``, the message type, a control code, a 32-bit message
parameter, a 64-bit payload length, all big-endian — and the payload. A session is two TCP
connections to the same port: the *synchronous* channel carries the data (``Data`` and
``DataEnd``, the latter marking END: the last message of a program or response message) and the
*asynchronous* channel the out-of-band requests (device clear, status, max message size).
"""

from __future__ import annotations

import struct
from enum import IntEnum

PORT = 4880
"""HiSLIP's registered TCP port."""

HEADER = struct.Struct("!2sBBIQ")
HEADER_SIZE = HEADER.size

FIRST_MESSAGE_ID = 0xFFFF_FF00
"""The client's first message id after Initialize and after a device clear (ids go up by 2)."""

ANY_MESSAGE_ID = 0xFFFF_FFFF
"""A server's reply to no message in particular: a client takes it for the one it waits for."""

MAX_MESSAGE = 1 << 20
"""The largest message (header included) etalon's client and the simulator accept — the size a
client announces by ``AsyncMaxMsgSize`` (VISA's default, as pyvisa-py's). A larger length in a
header is a protocol violation, refused before its payload is waited for."""

VERSION = (1, 0)
"""The protocol version both ends speak (HiSLIP 1.0: no overlap mode, no TLS)."""


class Message(IntEnum):
    """HiSLIP message types (39–127 reserved, 128–255 vendor-specific)."""

    INITIALIZE = 0
    INITIALIZE_RESPONSE = 1
    FATAL_ERROR = 2
    ERROR = 3
    ASYNC_LOCK = 4
    ASYNC_LOCK_RESPONSE = 5
    DATA = 6
    DATA_END = 7
    DEVICE_CLEAR_COMPLETE = 8
    DEVICE_CLEAR_ACKNOWLEDGE = 9
    ASYNC_REMOTE_LOCAL_CONTROL = 10
    ASYNC_REMOTE_LOCAL_RESPONSE = 11
    TRIGGER = 12
    INTERRUPTED = 13
    ASYNC_INTERRUPTED = 14
    ASYNC_MAX_MSG_SIZE = 15
    ASYNC_MAX_MSG_SIZE_RESPONSE = 16
    ASYNC_INITIALIZE = 17
    ASYNC_INITIALIZE_RESPONSE = 18
    ASYNC_DEVICE_CLEAR = 19
    ASYNC_SERVICE_REQUEST = 20
    ASYNC_STATUS_QUERY = 21
    ASYNC_STATUS_RESPONSE = 22
    ASYNC_DEVICE_CLEAR_ACKNOWLEDGE = 23
    ASYNC_LOCK_INFO = 24
    ASYNC_LOCK_INFO_RESPONSE = 25


FATAL_ERRORS = {
    0: "unidentified error",
    1: "poorly formed message header",
    2: "attempt to use connection without both channels established",
    3: "invalid initialization sequence",
    4: "server refused connection due to maximum number of clients exceeded",
    5: "secure connection failed",
}
ERRORS = {
    0: "unidentified error",
    1: "unrecognized message type",
    2: "unrecognized control code",
    3: "unrecognized vendor defined message",
    4: "message too large",
    5: "authentication failed",
}


class WireError(Exception):
    """A header that breaks the protocol; the message says how (the connection is spent), and
    ``kind`` what (``malformed header``, ``oversized``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def type_name(message_type: int) -> str:
    """A message type as the spec names it (``DataEnd``), or its number."""
    try:
        return "".join(word.capitalize() for word in Message(message_type).name.split("_"))
    except ValueError:
        return f"type {message_type}"


def pack(message_type: int, control: int = 0, parameter: int = 0, payload: bytes = b"") -> bytes:
    """One whole message."""
    return HEADER.pack(b"HS", message_type, control, parameter, len(payload)) + payload


def unpack_header(buffer: bytes | bytearray, max_payload: int) -> tuple[int, int, int, int]:
    """(type, control code, parameter, payload length) of the header at the start of
    ``buffer``; WireError for a wrong prologue or a payload longer than ``max_payload``."""
    prologue, message_type, control, parameter, length = HEADER.unpack_from(buffer)
    if prologue != b"HS":
        raise WireError(
            "malformed header", f"malformed header (prologue {bytes(buffer[:HEADER_SIZE])!r})"
        )
    if length > max_payload:
        raise WireError(
            "oversized",
            f"{type_name(message_type)} of {length} bytes exceeds the maximum message size "
            f"({max_payload + HEADER_SIZE} bytes)",
        )
    return message_type, control, parameter, length


def error_text(message_type: int, control: int, payload: bytes) -> str:
    """What an Error or FatalError message says: its code's meaning and its own text."""
    codes = FATAL_ERRORS if message_type == Message.FATAL_ERROR else ERRORS
    meaning = codes.get(control, f"code {control}")
    text = payload[:200].decode("latin-1").strip()
    return f"{type_name(message_type)} {control} ({meaning})" + (f": {text}" if text else "")
