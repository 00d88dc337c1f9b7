"""Pushes to a hub in the test's loop (real PostgreSQL): idempotence, refusals, revocation,
hostile bodies. Each refusal must leave the lab's head and entries as they were."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from hub.service import Hub
from tests.support.hub import LabLedger, bearer, hub_settings, running_hub, staff_env
from tests.support.postgres import PostgresServer


@pytest.fixture
async def hub(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Hub]:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    async with running_hub(hub_settings(tmp_path, postgres, hub_database)) as running:
        yield running


async def enrolled(client: httpx.AsyncClient, lab: LabLedger) -> str:
    r = await client.post(
        "/api/v1/admin/labs",
        json={"lab": lab.lab, "public_key": lab.key.public_key.to_text(), "name": lab.lab},
        headers=bearer("HUB_ADMIN_TOKEN"),
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


async def push(client: httpx.AsyncClient, lab: str, token: str, body: bytes) -> httpx.Response:
    return await client.post(
        f"/api/v1/labs/{lab}/segments", content=body, headers=bearer(token)
    )


def rows(postgres: PostgresServer, dbname: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres.conninfo(dbname), password=postgres.password) as conn:
        return list(conn.execute(sql, params).fetchall())


async def test_revoked_lab_is_refused(hub: Hub, postgres: PostgresServer, hub_database: str) -> None:
    lab = LabLedger("lab-a")
    lab.standard("Z1")
    lab.checkpoint()
    async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
        token = await enrolled(client, lab)
        assert (await push(client, "lab-a", token, lab.segment(1).to_json())).status_code == 200
        r = await client.post(
            "/api/v1/admin/labs/lab-a/revoke",
            json={"reason": "closed"},
            headers=bearer("HUB_ADMIN_TOKEN"),
        )
        assert r.status_code == 200, r.text
        lab.audit()
        lab.checkpoint()
        r = await push(client, "lab-a", token, lab.segment(2).to_json())
        assert r.status_code == 403, r.text
        assert r.json()["reason"] == "revoked"
    assert rows(postgres, hub_database, "SELECT count FROM lab_heads")[0][0] == 1
