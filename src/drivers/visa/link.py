"""The byte pipe under a VISA session: what both ways of talking to an instrument offer.

A session's logic (identify, drain the error queue, run a due set, write and confirm) is written
once, as coroutines (:mod:`drivers.visa.session`), over a :class:`Link`:

- :class:`~drivers.visa.pyvisa_link.PyvisaLink` — pyvisa, for every resource kind. It blocks, so
  its coroutines never suspend: the session's worker thread runs them to the end in one step
  (:func:`drive`), and a hung instrument holds up that thread alone.
- :class:`~drivers.visa.socket_link.SocketLink` — raw SCPI over TCP (``TCPIP::…::SOCKET``) with
  asyncio on the event loop: no thread, one wake-up per query, like bare pyvisa's blocking read.
- :class:`~drivers.visa.hislip_link.HislipLink` — HiSLIP (``TCPIP::…::hislipN::INSTR``) and
  :class:`~drivers.visa.vxi11_link.Vxi11Link` — VXI-11 (``TCPIP::host::INSTR``) the same way.
- :class:`~drivers.visa.serial_link.SerialLink` — a serial port (``ASRL/dev/…::INSTR``, POSIX) the
  same way, its file descriptor watched by the loop.

A link says what went wrong in two ways only, and the session words it (and re-opens): a
``TimeoutError`` (no reply within the link's timeout) or a :class:`LinkError` (anything else that
spends the session); a reply that does not decode raises ``UnicodeDecodeError``.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class LinkError(Exception):
    """The link failed (closed, refused, reset): the session is spent. The message says how."""


class Link(Protocol):
    """An open session's I/O (see the module doc)."""

    async def write(self, command: str) -> None:
        """Send ``command`` with the write termination."""

    async def query(self, command: str) -> str:
        """Send ``command``, wait the query delay, read one reply (termination stripped)."""

    def set_timeout(self, seconds: float) -> None:
        """The timeout of the next operations (a reply, or the whole of a write)."""

    async def clear(self) -> None:
        """Drop whatever the instrument still meant to send us (device clear)."""

    def close(self) -> None:
        """Close the session; never raises."""


def drive(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (a job over a :class:`PyvisaLink`) to its end, here
    and now: the worker thread's way to run the session's coroutines without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise RuntimeError("a blocking VISA job awaited something that suspends")
