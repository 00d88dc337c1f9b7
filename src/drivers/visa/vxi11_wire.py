"""VXI-11's wire format: ONC RPC v2 (RFC 5531) calls and replies with XDR (RFC 4506) bodies over
TCP record marking, the portmapper's GETPORT and the VXI-11 core channel's procedures — what both
ends use (etalon's client link, :mod:`drivers.visa.vxi11_link`, and the SCPI simulator's server,
:mod:`drivers.sim.scpi_vxi11`).

A record on TCP is one or more *fragments*, each after a 4-byte big-endian *record mark*: the
fragment's length, with the top bit set on the record's last fragment. A call is the RPC header
(transaction id ``xid``, CALL, RPC version 2, program, version, procedure, two empty AUTH_NONE
blocks) and the procedure's XDR arguments; a reply carries the call's ``xid``, then either
MSG_ACCEPTED (an empty verifier, an accept status, on success the procedure's XDR result) or
MSG_DENIED. XDR is big-endian 32-bit words; opaque data and strings are a length and the bytes
padded to a multiple of 4.

A client asks the portmapper (program 100000 version 2, on TCP port 111 of every instrument) which
port serves the core channel (program 0x0607AF version 1, TCP), then calls ``create_link`` on it:
the link id goes with every later call.
"""

from __future__ import annotations

import struct

PORTMAPPER_PORT = 111
PORTMAPPER_PROG = 100000
PORTMAPPER_VERS = 2
GETPORT = 3
IPPROTO_TCP = 6

CORE_PROG = 0x0607AF
CORE_VERS = 1
CREATE_LINK = 10
DEVICE_WRITE = 11
DEVICE_READ = 12
DEVICE_READSTB = 13
DEVICE_TRIGGER = 14
DEVICE_CLEAR = 15
DEVICE_REMOTE = 16
DEVICE_LOCAL = 17
DEVICE_LOCK = 18
DEVICE_UNLOCK = 19
DEVICE_ENABLE_SRQ = 20
DEVICE_DOCMD = 22
DESTROY_LINK = 23
CREATE_INTR_CHAN = 25
DESTROY_INTR_CHAN = 26

FLAG_WAIT_LOCK = 1
FLAG_END = 8
"""device_write: this chunk ends the program message."""
FLAG_TERMCHAR_SET = 128
"""device_read: stop at ``termChar``."""

REASON_REQCNT = 1
"""device_read: ``requestSize`` bytes were read (the reply goes on)."""
REASON_CHR = 2
"""device_read: the read stopped at the termination character."""
REASON_END = 4
"""device_read: the reply's last byte (END)."""

IO_TIMEOUT = 15
"""The device error of an operation that did not end within its ``io_timeout``."""

ERRORS = {
    1: "syntax error",
    3: "device not accessible",
    4: "invalid link identifier",
    5: "parameter error",
    6: "channel not established",
    8: "operation not supported",
    9: "out of resources",
    11: "device locked by another link",
    12: "no lock held by this link",
    15: "I/O timeout",
    17: "I/O error",
    21: "invalid address",
    23: "abort",
    29: "channel already established",
}
"""VXI-11's device error codes (VXI-11 rev. 1.0, B.5.2)."""

LOCK_TIMEOUT_MS = 10_000
"""The ``lock_timeout`` every call sends, as pyvisa-py 0.8 (no call sets ``waitlock``, so a
device does not wait for a lock with it)."""

LAST_FRAGMENT = 0x8000_0000
MAX_RECORD = (1 << 20) + 1024
"""The most bytes of one record (its fragments together) either end accepts: 1 MiB of data and
the headers around it. A larger fragment length is refused before its bytes are waited for."""

CALL = 0
REPLY = 1
RPC_VERSION = 2
MSG_ACCEPTED = 0
MSG_DENIED = 1

ACCEPT_STATUS = {
    1: "program unavailable",
    2: "program version mismatch",
    3: "procedure unavailable",
    4: "garbage arguments",
    5: "system error",
}
REJECT_STATUS = {0: "RPC version mismatch", 1: "authentication error"}

MARK = struct.Struct("!I")
CALL_HEADER = struct.Struct("!IIIIIIIIIII")
"""Record mark, xid, CALL, RPC version, program, version, procedure, AUTH_NONE credential and
verifier (flavor, length) — a whole call's first 44 bytes."""
CALL_HEADER_SIZE = CALL_HEADER.size - 4
"""A call's header, not counting its record mark."""
REPLY_HEADER = struct.Struct("!IIIIII")
"""xid, REPLY, MSG_ACCEPTED, verifier flavor and length (empty), accept status: a successful
reply's first 24 bytes (a verifier with a body is parsed by :func:`reply_body`)."""
REPLY_HEADER_SIZE = REPLY_HEADER.size


class WireError(Exception):
    """Bytes that break the protocol, or a reply that refuses the call; the message says how,
    ``kind`` what (``malformed reply``, ``oversized``, ``RPC denied``, ``RPC not accepted``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def call(xid: int, prog: int, vers: int, proc: int, arguments: bytes) -> bytes:
    """One whole call in one fragment, its record mark first."""
    size = CALL_HEADER_SIZE + len(arguments)
    return (
        CALL_HEADER.pack(LAST_FRAGMENT | size, xid, CALL, RPC_VERSION, prog, vers, proc, 0, 0, 0, 0)
        + arguments
    )


def record(payload: bytes) -> bytes:
    """``payload`` as one record of one fragment."""
    return MARK.pack(LAST_FRAGMENT | len(payload)) + payload


def accepted(xid: int, result: bytes, status: int = 0) -> bytes:
    """A reply record: the call accepted (``status`` 0: its result follows)."""
    return record(REPLY_HEADER.pack(xid, REPLY, MSG_ACCEPTED, 0, 0, status) + result)


def opaque(data: bytes) -> bytes:
    """XDR variable-length opaque data (or a string's bytes): length, bytes, padding."""
    return MARK.pack(len(data)) + data + bytes(-len(data) % 4)


def unpack_opaque(buffer: bytes, offset: int) -> tuple[bytes, int]:
    """The opaque data at ``offset`` and the offset after its padding; WireError when the buffer
    is too short for it."""
    if len(buffer) < offset + 4:
        raise WireError("malformed reply", "an XDR opaque cut short")
    (length,) = MARK.unpack_from(buffer, offset)
    start = offset + 4
    if len(buffer) < start + length:
        raise WireError(
            "malformed reply",
            f"an XDR opaque of {length} bytes in {len(buffer) - start} bytes",
        )
    return buffer[start : start + length], start + length + (-length % 4)


def reply_body(record_: bytes) -> tuple[int, bytes]:
    """(xid, result) of a reply record; WireError when it is no reply, or refuses the call."""
    if len(record_) < 12:
        raise WireError("malformed reply", f"a record of {len(record_)} bytes is no RPC reply")
    xid, kind, status = struct.unpack_from("!III", record_)
    if kind != REPLY:
        raise WireError("malformed reply", f"an RPC message of type {kind}, not a reply")
    if status == MSG_DENIED:
        if len(record_) < 16:
            raise WireError("malformed reply", "MSG_DENIED cut short")
        (reject,) = struct.unpack_from("!I", record_, 12)
        raise WireError(
            "RPC denied", f"RPC call denied: {REJECT_STATUS.get(reject, f'status {reject}')}"
        )
    if status != MSG_ACCEPTED:
        raise WireError("malformed reply", f"an RPC reply of status {status}")
    if len(record_) < 16:
        raise WireError("malformed reply", "MSG_ACCEPTED cut short")
    _, offset = unpack_opaque(record_, 16)  # the verifier's body (after its flavor)
    if len(record_) < offset + 4:
        raise WireError("malformed reply", "MSG_ACCEPTED without its accept status")
    (accept,) = struct.unpack_from("!I", record_, offset)
    if accept != 0:
        raise WireError(
            "RPC not accepted",
            f"RPC call not accepted: {ACCEPT_STATUS.get(accept, f'status {accept}')}",
        )
    return xid, record_[offset + 4 :]


def error_text(code: int) -> str:
    """A VXI-11 device error as its code and meaning."""
    return f"VXI-11 error {code} ({ERRORS.get(code, 'unknown error')})"
