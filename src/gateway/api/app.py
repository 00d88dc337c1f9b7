"""The API application and the server that runs it inside the gateway's event loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import uvicorn
from fastapi import APIRouter, FastAPI

from edge_agent import __version__
from gateway.api import alerts, system
from gateway.api.auth import TokenBook
from gateway.api.context import ApiContext

ROUTERS: list[APIRouter] = [system.router, alerts.router]
"""Every router of the API; a feature adds its own module and one entry here."""


def create_app(context: ApiContext) -> FastAPI:
    """The FastAPI application for a running gateway."""
    assert context.config.api is not None
    app = FastAPI(
        title="etalon gateway API",
        version=__version__,
        description="Agents, channels, readings, standards, alerts and the audit log of an "
        "etalon gateway. Authenticate with `Authorization: Bearer TOKEN`.",
    )
    app.state.context = context
    app.state.tokens = TokenBook(context.config.api)
    for router in ROUTERS:
        app.include_router(router)
    return app


class EmbeddedServer(uvicorn.Server):
    """uvicorn in the gateway's own loop: the gateway, not uvicorn, owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the gateway."""
        yield


def build_server(app: FastAPI, host: str, port: int) -> EmbeddedServer:
    """A server for ``app`` on host:port, quiet (its access log is off)."""
    config = uvicorn.Config(
        app, host=host, port=port, log_level="warning", access_log=False, lifespan="off"
    )
    return EmbeddedServer(config)
