"""The hub's PostgreSQL: connections (psycopg 3, async), pools, and the schema's migrations.

Migrations are plain SQL files shipped in ``hub/migrations/NNN_name.sql``, applied in order,
each in its own transaction, under an advisory lock (two hubs starting at once apply each file
once), and recorded with their SHA-256: a shipped file that was edited afterwards is refused, not
silently re-read.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from core.errors import ConfigError, NotFoundError, StoreError
from core.logs import log_event
from hub.config import DatabaseConfig

log = logging.getLogger("etalon.hub")

MIGRATION_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")
MIGRATION_LOCK = 0x6574616C6F6E  # 'etalon': the advisory lock every migrating hub takes
Connection = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class Migration:
    """One shipped SQL file."""

    version: int
    name: str
    sql: str
    sha256: str


def shipped_migrations() -> list[Migration]:
    """Every migration file shipped with the package, in order."""
    found: list[Migration] = []
    for resource in resources.files("hub").joinpath("migrations").iterdir():
        match = MIGRATION_NAME.match(resource.name)
        if match is None:
            continue
        data = resource.read_bytes()
        found.append(
            Migration(
                int(match.group(1)), match.group(2), data.decode(), hashlib.sha256(data).hexdigest()
            )
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"hub migrations are not numbered 1..N in order: {versions}")
    return found


def connect_kwargs(config: DatabaseConfig, *, application: str = "etalon-hub") -> dict[str, Any]:
    """Keyword arguments of every connection (the password never appears in a log or error)."""
    kwargs: dict[str, Any] = {
        "connect_timeout": max(1, round(config.connect_timeout_s)),
        "application_name": application,
        "options": f"-c statement_timeout={round(config.statement_timeout_s * 1000)}",
    }
    if config.password is not None:
        try:
            kwargs["password"] = config.password.resolve()
        except ValueError as exc:
            raise ConfigError([f"database.password: {exc}"]) from None
    return kwargs


def _reason(exc: psycopg.Error) -> str:
    """What PostgreSQL or libpq said, on one line, without the connection string."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def connect(config: DatabaseConfig, *, replica: bool = False) -> Connection:
    """One connection (for a command), in autocommit: its work goes in explicit
    ``conn.transaction()`` blocks, which then commit (inside an implicit transaction they would
    only be savepoints, rolled back at close). StoreError names the reason."""
    url = config.replica_url if replica and config.replica_url else config.url
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, **connect_kwargs(config))
    except psycopg.Error as exc:
        raise StoreError(f"database: cannot connect: {_reason(exc)}") from None


async def applied_migrations(conn: Connection) -> dict[int, str]:
    """Version → SHA-256 of the migrations this database has applied."""
    async with conn.cursor() as cur:
        await cur.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
        row = await cur.fetchone()
        if row is None or not row[0]:
            return {}
        await cur.execute("SELECT version, sha256 FROM schema_migrations")
        return {int(v): str(s) for v, s in await cur.fetchall()}


def _check_unchanged(shipped: list[Migration], applied: dict[int, str]) -> None:
    for migration in shipped:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.sha256:
            raise StoreError(
                f"migration {migration.version:03d}_{migration.name}.sql differs from the one this "
                "database applied (a shipped migration was edited): restore it and add a new one"
            )
    unknown = sorted(set(applied) - {m.version for m in shipped})
    if unknown:
        raise StoreError(
            f"the database has migrations this hub does not know ({unknown}): it is newer than "
            "this software"
        )


async def pending_migrations(conn: Connection) -> list[Migration]:
    """Shipped migrations this database has not applied (StoreError if one was edited)."""
    shipped = shipped_migrations()
    applied = await applied_migrations(conn)
    _check_unchanged(shipped, applied)
    return [m for m in shipped if m.version not in applied]


async def migrate(conn: Connection) -> list[Migration]:
    """Apply the pending migrations, in order, each in its own transaction; returns them."""
    done: list[Migration] = []
    try:
        await conn.set_autocommit(True)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, sha256 text NOT NULL, applied_ns bigint NOT NULL)"
        )
        await conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
        try:
            for migration in await pending_migrations(conn):
                async with conn.transaction():
                    await conn.execute(migration.sql.encode())
                    await conn.execute(
                        "INSERT INTO schema_migrations VALUES (%s, %s, %s, %s)",
                        (migration.version, migration.name, migration.sha256, time.time_ns()),
                    )
                done.append(migration)
                log_event(
                    log,
                    logging.INFO,
                    "migration applied",
                    version=migration.version,
                    migration=migration.name,
                )
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))
    except psycopg.Error as exc:
        raise StoreError(f"database: migration failed: {_reason(exc)}") from None
    return done


class Database:
    """The hub's connection pools: one to the primary, one for reads (a replica if given)."""

    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.primary = self._pool(config.url, "hub-primary")
        self.reader = self.primary
        if config.replica_url:
            self.reader = self._pool(config.replica_url, "hub-replica")

    def _pool(self, url: str, name: str) -> AsyncConnectionPool:
        return AsyncConnectionPool(
            url,
            kwargs=connect_kwargs(self.config),
            min_size=self.config.pool_min,
            max_size=self.config.pool_max,
            open=False,
            name=name,
            timeout=self.config.connect_timeout_s,
        )

    async def open(self) -> None:
        """Open the pools and wait for their first connections; StoreError if unreachable."""
        try:
            await self.primary.open(wait=True, timeout=self.config.connect_timeout_s)
            if self.reader is not self.primary:
                await self.reader.open(wait=True, timeout=self.config.connect_timeout_s)
        except psycopg.Error as exc:  # the pool's PoolTimeout is an OperationalError
            await self.close()
            raise StoreError(f"database: cannot connect: {_reason(exc)}") from None

    async def close(self) -> None:
        """Close the pools."""
        for pool in {id(self.primary): self.primary, id(self.reader): self.reader}.values():
            await pool.close()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A primary connection inside one transaction (committed when the block ends)."""
        try:
            async with self.primary.connection() as conn, conn.transaction():
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreError(f"database: {_reason(exc)}") from None

    @asynccontextmanager
    async def read(self) -> AsyncIterator[Connection]:
        """A connection for reads (the replica if configured)."""
        try:
            async with self.reader.connection() as conn:
                yield conn
        except psycopg.OperationalError as exc:
            raise StoreError(f"database: {_reason(exc)}") from None


async def fetch_all(conn: Connection, sql: str, params: Any = None) -> list[dict[str, Any]]:
    """Rows of a query as dicts (whatever the connection's row factory)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return list(await cur.fetchall())


async def fetch_one(conn: Connection, sql: str, params: Any = None) -> dict[str, Any] | None:
    """The first row of a query as a dict, or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        return await cur.fetchone()


async def fetch_found(conn: Connection, sql: str, params: Any, missing: str) -> dict[str, Any]:
    """The first row of a query as a dict; NotFoundError(``missing``) when there is none."""
    row = await fetch_one(conn, sql, params)
    if row is None:
        raise NotFoundError(missing)
    return row
