"""The API application and the server that runs it inside the gateway's event loop."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI

from edge_agent import __version__
from gateway.api import (
    alerts,
    audit,
    calibrations,
    fleet,
    instruments,
    problems,
    readings,
    records,
    standards,
    system,
    ui,
    views,
)
from gateway.api.auth import FailedLogins, TokenBook
from gateway.api.context import ApiContext
from gateway.config import ApiTlsConfig

ROUTERS: list[APIRouter] = [
    system.router,
    views.router,
    fleet.router,
    readings.router,
    audit.router,
    records.router,
    standards.router,
    instruments.router,
    alerts.router,
    calibrations.router,
    ui.router,
]
"""Every router of the API; a feature adds its own module and one entry here."""


def create_app(context: ApiContext) -> FastAPI:
    """The FastAPI application for a running gateway."""
    assert context.config.api is not None
    app = FastAPI(
        title="etalon gateway API",
        version=__version__,
        description="Agents, channels, readings, standards, alerts and the audit log of an "
        "etalon gateway. Authenticate with `Authorization: Bearer TOKEN`.",
        # FastAPI's /docs and /redoc pages load their scripts from a CDN: labs are often
        # offline, so only the document itself is served.
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    app.state.tokens = TokenBook(context.config.api)
    app.state.failed_logins = FailedLogins(context.config.api.auth_failures)
    # Hooks of the embedded server: on_stopping ends long-lived responses (live streams) so the
    # server can stop; on_stopped releases what the routers hold (HTTP pools).
    app.state.on_stopping = []
    app.state.on_stopped = []
    problems.install(app)
    views.install(context, app)
    for router in ROUTERS:
        app.include_router(router)
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn in the gateway's own loop: the gateway, not uvicorn, owns SIGINT and SIGTERM."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the gateway."""
        yield

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        """End live streams first (uvicorn waits for open responses), then release resources."""
        stopping: list[Callable[[], None]] = self.app.state.on_stopping
        stopped: list[Callable[[], Awaitable[None]]] = self.app.state.on_stopped
        for hook in stopping:
            hook()
        try:
            await super().shutdown(sockets)
        finally:
            for close in stopped:
                with contextlib.suppress(Exception):
                    await close()


def build_server(
    app: FastAPI, host: str, port: int, tls: ApiTlsConfig | None = None
) -> EmbeddedServer:
    """A server for ``app`` on host:port, quiet (its access log is off); HTTPS with ``tls``."""
    ssl: dict[str, Any] = {}
    if tls is not None:
        ssl = {"ssl_certfile": str(tls.cert_file), "ssl_keyfile": str(tls.key_file)}
        if tls.key_password is not None:
            ssl["ssl_keyfile_password"] = tls.key_password.resolve()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **ssl,
    )
    return EmbeddedServer(config, app)
