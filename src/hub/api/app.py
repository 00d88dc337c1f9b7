"""The hub's application and the server that runs it (uvicorn, in the hub's own loop)."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import Iterator
from typing import Any

import uvicorn
from fastapi import APIRouter, FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_agent import __version__
from hub.api import admin, pages, problems, push, registry, search_page, signin
from hub.api.auth import StaffTokens
from hub.api.context import HubContext

ROUTERS: list[APIRouter] = [
    push.router,
    registry.router,
    admin.router,
    pages.router,
    search_page.router,
    signin.router,
]
"""Every router of the hub's API."""

SMALL_BODY = 1024 * 1024
"""The largest body of any request but a lab's push or file (which have their own limits)."""


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse (413) a request body past its limit before it is read into memory: FastAPI reads
    a JSON body before it checks who sent it."""

    def __init__(self, app: ASGIApp, large: int) -> None:
        self.app = app
        self.large = large

    def _limit(self, path: str) -> int:
        if path.startswith("/api/v1/labs/") and ("/segments" in path or "/attachments/" in path):
            return self.large
        return SMALL_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit(scope["path"])
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._refuse(send, limit)
                return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except _TooLarge:
            if not started:
                await self._refuse(send, limit)

    @staticmethod
    async def _refuse(send: Send, limit: int) -> None:
        body = f'{{"detail":"the request body is larger than {limit} bytes"}}'.encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def create_app(context: HubContext) -> FastAPI:
    """The FastAPI application of a running hub."""
    app = FastAPI(
        title="etalon national hub API",
        version=__version__,
        description="Labs push their signed record ledgers; the hub serves the national "
        "registry of instruments and standards, its traceability graph and exports. "
        "Authenticate with `Authorization: Bearer TOKEN` (a lab's push token or a staff token).",
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    app.state.staff = StaffTokens(context.config.api)
    problems.install(app)
    app.add_exception_handler(StarletteHTTPException, pages.page_errors)
    for router in ROUTERS:
        app.include_router(router)
    large = max(context.config.api.max_segment_bytes, context.config.api.max_attachment_bytes)
    app.add_middleware(BodyLimit, large=large)
    return app


class HubServer(uvicorn.Server):
    """uvicorn in the hub's own loop: the hub, not uvicorn, owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave signal handling to the hub."""
        yield


def build_server(app: FastAPI, context: HubContext) -> HubServer:
    """A server for ``app`` on the configured address (HTTPS when ``api.tls`` is set)."""
    api = context.config.api
    options: dict[str, Any] = {}
    if api.tls is not None:
        options |= {
            "ssl_certfile": str(api.tls.cert_file),
            "ssl_keyfile": str(api.tls.key_file),
            "ssl_version": ssl.PROTOCOL_TLS_SERVER,
        }
    config = uvicorn.Config(
        app,
        host=api.host,
        port=api.port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=5,
        **options,
    )
    return HubServer(config)
