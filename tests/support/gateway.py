"""A gateway running in the test's own loop, and the API tokens tests use to reach it.

One table of tokens: the environment variable a config names, and its secret. A test sets the
variables (``monkeypatch.setenv`` or ``token_env()``) and sends ``bearer(ENV)``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from gateway.config import GatewayConfig
from gateway.service import Gateway

API_TOKENS = {
    "VIEW_TOKEN": "viewer-token-0123456789",
    "AUDIT_TOKEN": "auditor-token-0123456789",
    "OPS_TOKEN": "operator-token-0123456789",
    "ADMIN_TOKEN": "admin-token-0123456789",
}
"""Environment variable → secret of the viewer, auditor, operator and admin tokens."""


def api_settings(prefix: str = "") -> dict[str, Any]:
    """The ``api:`` section of a gateway config: a free port, the four tokens by role (their
    variables named ``PREFIX`` + the names of :data:`API_TOKENS`)."""
    return {
        "port": 0,
        "tokens": [
            {"name": "wall-screen", "role": "viewer", "token": {"env": f"{prefix}VIEW_TOKEN"}},
            {"name": "assessor", "role": "auditor", "token": {"env": f"{prefix}AUDIT_TOKEN"}},
            {"name": "nguyen", "role": "operator", "token": {"env": f"{prefix}OPS_TOKEN"}},
            {
                "name": "quality-manager",
                "role": "admin",
                "token": {"env": f"{prefix}ADMIN_TOKEN"},
            },
        ],
    }


def token_env(prefix: str = "") -> dict[str, str]:
    """The variables of :func:`api_settings`, with their secrets."""
    return {prefix + env: secret for env, secret in API_TOKENS.items()}


def bearer(env: str) -> dict[str, str]:
    """The header of the token a variable of :data:`API_TOKENS` names."""
    return {"Authorization": f"Bearer {API_TOKENS[env]}"}


@contextlib.asynccontextmanager
async def running_gateway(settings: dict[str, Any] | GatewayConfig) -> AsyncIterator[Gateway]:
    """A gateway in the test's own loop, stopped cleanly at the end."""
    config = settings if isinstance(settings, GatewayConfig) else None
    gateway = Gateway(config or GatewayConfig.model_validate(settings))
    stop = asyncio.Event()
    task = asyncio.create_task(gateway.run(stop))
    started = asyncio.create_task(gateway.started.wait())
    done, _ = await asyncio.wait({task, started}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        started.cancel()
        await task  # raises what stopped it
    assert started in done, "gateway did not start"
    try:
        yield gateway
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
