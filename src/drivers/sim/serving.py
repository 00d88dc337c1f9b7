"""What every simulator server shares: ``async with`` start/stop, TCP connections it tracks and
closes, and a raw pseudo-terminal (optionally symlinked) that stands for a serial line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self, TypeVar

from core.i18n import language, load_table, register, translate_reason
from core.logs import log_event

register(load_table(__package__, "messages.json"))  # what a simulator prints when it starts

ConnectionHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
S = TypeVar("S", bound="Served")
log = logging.getLogger("etalon.drivers.sim")


class Served:
    """A simulator started by ``start()`` and stopped by ``stop()``; ``async with`` does both."""

    async def start(self) -> None:
        """Begin serving."""
        raise NotImplementedError

    async def stop(self) -> None:
        """Stop serving; idempotent."""
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        try:
            await self.start()
        except BaseException:  # a failed or cancelled start-up closes what it opened
            await self.stop()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def serve_until(
    server: S,
    stop: asyncio.Event,
    where: Callable[[S], Iterable[str]],
    started: asyncio.Event | None = None,
) -> None:
    """``etalon sim …``: serve until ``stop`` is set, first printing the lines ``where`` says
    about the started ``server`` (its addresses), in the process's language, and setting
    ``started`` (a start-up cancelled before then closes what it opened)."""
    log_event(log, logging.INFO, "simulator starting")
    async with server:
        for line in where(server):
            print(translate_reason(line, language()), flush=True)
        if started is not None:
            started.set()
        await stop.wait()


def flags(args: argparse.Namespace, *names: str) -> dict[str, Any]:
    """The command line's values of the flags ``names`` (argparse destinations named like the
    config fields they give), for a simulator's config."""
    return {name: getattr(args, name) for name in names}


def medium_lines(kind: str, medium: str, server: Any, link: Path | None) -> list[str]:
    """What a simulator on a pty (``server.pty_path``) or TCP (``server.host``:``server.port``)
    prints when it starts: ``KIND on WHERE``, and the symlink to the pty if there is one."""
    where = server.pty_path if medium == "pty" else f"{server.host}:{server.port}"
    return [f"{kind} on {where}"] + ([f"  linked as {link}"] if link else [])


class StreamServed(Served):
    """A simulator with a TCP listener whose connections (and helper tasks) it tracks, so it can
    drop them all (a rebooted network stack) and close them on ``stop()``."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def _listen(self, handler: ConnectionHandler, host: str, port: int) -> int:
        """Listen on ``host``:``port``; the port bound (a free one for 0)."""
        self._server = await asyncio.start_server(handler, host, port)
        port_bound: int = self._server.sockets[0].getsockname()[1]
        return port_bound

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str | None = None) -> None:
        """Run a helper task that ``stop()`` waits for."""
        task = asyncio.create_task(coroutine, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def drop_connections(self) -> None:
        """Close every open connection now (the device rebooted its network stack)."""
        for writer in list(self._writers):
            writer.close()

    async def _converse(
        self,
        writer: asyncio.StreamWriter,
        conversation: Awaitable[None],
        expected: tuple[type[BaseException], ...],
        wait_closed: bool = False,
    ) -> None:
        """Run one connection's ``conversation`` as a tracked connection: errors in
        ``expected`` (the peer went away) end it quietly, and so does the cancellation
        ``stop()`` sends; the writer is closed at the end (and waited for with
        ``wait_closed``)."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self._writers.add(writer)
        try:
            await conversation
        except expected:
            pass
        except asyncio.CancelledError:
            # Python 3.11's start_server calls task.exception() on a finished handler, which
            # raises for a cancelled one; so a handler that *we* cancel in stop() ends normally.
            if not self._stopping:
                raise
        finally:
            self._writers.discard(writer)
            writer.close()
            if wait_closed:
                with contextlib.suppress(ConnectionError):
                    await writer.wait_closed()
            self._tasks.discard(task)

    async def _shut(self, cancel: Callable[[asyncio.Task[None]], bool]) -> None:
        """Close the listener and every connection, cancel the tasks ``cancel`` picks and wait
        for all of them."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            if cancel(task):
                task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None
        self._writers.clear()
        self._stopping = False


@dataclass
class PseudoTerminal:
    """A pseudo-terminal in raw mode: we hold ``master`` (non-blocking) and keep ``slave`` open
    so the master never sees EIO; the client opens ``path`` (or ``link``, a symlink to it)."""

    master: int
    slave: int
    path: str
    link: Path | None = None

    @classmethod
    def open(cls, link: Path | None = None) -> PseudoTerminal:
        """A new raw pseudo-terminal, symlinked as ``link`` when given (replacing an old one)."""
        master, slave = os.openpty()
        # Raw mode: no echo, no line editing, no CR/LF translation.
        tty.setraw(slave)
        tty.setraw(master)
        os.set_blocking(master, False)
        path = os.ttyname(slave)
        if link is not None:
            with contextlib.suppress(FileNotFoundError):
                link.unlink()
            link.symlink_to(path)
        return cls(master, slave, path, link)

    def read(self) -> bytes | None:
        """What the master can read now; None when nothing is there, ``b""`` on EIO (nobody has
        the other side open right now)."""
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError:
            return b""

    def write(self, data: bytes) -> None:
        """Send ``data`` to the other side; lost when it cannot be written, as on a wire."""
        with contextlib.suppress(OSError):
            os.write(self.master, data)

    def close(self) -> None:
        """Stop watching the master, close both ends and remove the symlink."""
        with contextlib.suppress(ValueError, RuntimeError):
            asyncio.get_running_loop().remove_reader(self.master)
        for fd in (self.master, self.slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self.link is not None and self.link.is_symlink():
            with contextlib.suppress(OSError):
                self.link.unlink()
