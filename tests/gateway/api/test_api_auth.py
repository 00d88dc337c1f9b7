"""The gateway's HTTP API: served by a running gateway; tokens and roles decide who may do what."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, Depends

from gateway.api import app as api_app
from gateway.api.auth import Principal, Role, require
from gateway.config import GatewayConfig
from gateway.service import Gateway
from tests.support.gateway import API_TOKENS, api_settings, bearer, running_gateway
from tests.support.services import Mosquitto

TOKENS = API_TOKENS

probe = APIRouter(prefix="/api/v1/test")


@probe.post("/operate")
async def operate(who: Principal = Depends(require(Role.OPERATOR))) -> dict[str, str]:  # noqa: B008
    return {"by": who.name}


@pytest.fixture
async def gateway(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(api_app, "ROUTERS", [*api_app.ROUTERS, probe])
    settings = {
        "site": "lab-1",
        "mqtt": {"port": mosquitto.port},
        "spool": {"path": str(tmp_path / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
        "records": {"path": str(tmp_path / "records.db")},
        "api": api_settings(),
    }
    async with running_gateway(settings) as gw:
        yield gw


async def test_roles_decide_access(gateway: Gateway) -> None:
    assert gateway.api_url is not None
    async with httpx.AsyncClient(base_url=gateway.api_url) as http:
        health = await http.get("/api/v1/health")
        assert health.status_code == 200
        assert health.json()["site"] == "lab-1"
        anonymous = await http.get("/api/v1/agents")
        assert anonymous.status_code == 401
        assert anonymous.json()["detail"].startswith("a token is required")
        assert (
            await http.get("/api/v1/agents", headers={"Authorization": "Bearer nope"})
        ).status_code == 401
        assert (await http.get("/api/v1/agents", headers=bearer("VIEW_TOKEN"))).json() == []
        metrics = await http.get("/api/v1/metrics", headers=bearer("VIEW_TOKEN"))
        assert metrics.status_code == 200
        assert "readings_written" in metrics.json()
        # A token in the query is only for the live stream (a browser's EventSource).
        query = await http.get("/api/v1/metrics", params={"access_token": TOKENS["VIEW_TOKEN"]})
        assert query.status_code == 401
        assert query.json()["detail"].startswith("access_token in the query is accepted only")
        refused = await http.post("/api/v1/test/operate", headers=bearer("VIEW_TOKEN"))
        assert refused.status_code == 403
        assert refused.json()["detail"] == "role viewer may not do this (needs operator)"
        for env, name in (("OPS_TOKEN", "nguyen"), ("ADMIN_TOKEN", "quality-manager")):
            done = await http.post("/api/v1/test/operate", headers=bearer(env))
            assert done.json() == {"by": name}
        assert (await http.post("/api/v1/test/operate")).status_code == 401
        openapi = await http.get("/openapi.json")
        assert openapi.json()["info"]["title"] == "etalon gateway API"


def test_short_or_shared_secrets_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A", "short")
    base = {
        "site": "s",
        "spool": {"path": "/tmp/s"},
        "store": {"kind": "sqlite", "path": "/tmp/x"},
        "records": {"path": "/tmp/r"},
    }
    with pytest.raises(ValueError, match="at least 16 characters"):
        GatewayConfig.model_validate(
            base | {"api": {"tokens": [{"name": "a", "role": "admin", "token": {"env": "A"}}]}}
        )
