"""The hub process: its database (migrated at start if so configured), its audit key, and the
HTTP API the labs push to and readers query. ``await Hub(config).run(stop)``."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from core.errors import ConfigError, StoreError
from core.logs import log_event
from hub.api.app import HubServer, build_server, create_app
from hub.api.context import HubContext
from hub.audit import HubAudit
from hub.config import HubConfig
from hub.db import Database, connect, migrate, pending_migrations
from hub.ingest import Ingest
from ledger import LedgerError, SigningKey

log = logging.getLogger("etalon.hub")


def load_key(path: Path) -> SigningKey:
    """The hub's audit key (made on first use, 0600); ConfigError names the file."""
    try:
        return SigningKey.open(path)
    except LedgerError as exc:
        raise ConfigError([f"key_file: {exc}"]) from None


async def prepare_database(config: HubConfig) -> None:
    """Apply pending migrations (if configured), else refuse an older schema."""
    conn = await connect(config.database)
    try:
        if config.database.migrate_on_start:
            await migrate(conn)
        else:
            pending = await pending_migrations(conn)
            if pending:
                names = ", ".join(f"{m.version:03d}_{m.name}" for m in pending)
                raise StoreError(
                    f"the database lacks migrations {names}: run `etalon hub migrate -c CONFIG`"
                )
    finally:
        await conn.close()


class Hub:
    """One hub process (see the module doc)."""

    def __init__(self, config: HubConfig, started: asyncio.Event | None = None) -> None:
        """``started`` is set once the hub listens (a new event when not given)."""
        self.config = config
        self.key = load_key(config.key_file)
        self.db = Database(config.database)
        self.audit = HubAudit(config.id, self.key)
        self.ingest = Ingest(self.db, self.audit)
        self.started = started if started is not None else asyncio.Event()
        self.url: str | None = None
        self.server: HubServer | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set."""
        await prepare_database(self.config)
        try:  # a start-up cancelled while the pools open closes them too
            await self.db.open()
            async with self.db.write() as conn:
                await self.audit.check_key(conn)
            context = HubContext(self.config, self.db, self.audit, self.ingest)
            server = build_server(create_app(context), context)
            self.server = server
            task = asyncio.create_task(server.serve(), name="hub-api")
            try:
                while not server.started:
                    if task.done():
                        await task
                        raise OSError(
                            f"the hub cannot listen on {self.config.api.host}:"
                            f"{self.config.api.port}"
                        )
                    await asyncio.sleep(0.02)
                host, port = server.servers[0].sockets[0].getsockname()[:2]
                scheme = "https" if self.config.api.tls is not None else "http"
                self.url = f"{scheme}://{host}:{port}"
                log_event(log, logging.INFO, "hub listening", url=self.url, hub=self.config.id)
                self.started.set()
                waiter = asyncio.create_task(stop.wait(), name="hub-stop")
                done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
                waiter.cancel()
                if task in done:
                    await task
                    raise OSError("the hub's server stopped")
            finally:
                server.should_exit = True
                await asyncio.wait_for(asyncio.shield(task), 10)
        finally:
            await self.db.close()
            log_event(
                log,
                logging.INFO,
                "hub stopped",
                pushes=self.ingest.accepted,
                refused=self.ingest.refused,
                entries=self.ingest.entries_stored,
            )
