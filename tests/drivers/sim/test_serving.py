"""What every simulator server shares (drivers/sim/serving.py)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.sim.serving import PseudoTerminal, Served, serve_until


class HalfStarted(Served):
    """Opens a pseudo-terminal (linked), then waits in its start-up (as asyncua's init does)."""

    def __init__(self, link: Path) -> None:
        self.link = link
        self.pty: PseudoTerminal | None = None
        self.opened = asyncio.Event()

    async def start(self) -> None:
        self.pty = PseudoTerminal.open(self.link)
        self.opened.set()
        await asyncio.Event().wait()

    async def stop(self) -> None:
        if self.pty is not None:
            self.pty.close()
            self.pty = None


async def test_a_start_up_cancelled_half_way_closes_what_it_opened(tmp_path: Path) -> None:
    server = HalfStarted(tmp_path / "device")
    started = asyncio.Event()
    task = asyncio.create_task(serve_until(server, asyncio.Event(), lambda _: [], started))
    await server.opened.wait()
    assert (tmp_path / "device").is_symlink()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.pty is None
    assert not (tmp_path / "device").is_symlink()
    assert not started.is_set()
