"""Smoke: a hub on a real PostgreSQL takes a lab's pushes."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.support.hub import LabLedger, bearer, hub_settings, running_hub, staff_env
from tests.support.postgres import PostgresServer


async def test_push(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    lab = LabLedger("lab-a")
    lab.standard("Z10")
    lab.identity("site/agent/dmm")
    lab.checkpoint()
    async with running_hub(hub_settings(tmp_path, postgres, hub_database)) as hub:
        async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
            r = await client.post(
                "/api/v1/admin/labs",
                json={"lab": "lab-a", "public_key": lab.key.public_key.to_text(), "name": "Lab A"},
                headers=bearer("HUB_ADMIN_TOKEN"),
            )
            assert r.status_code == 201, r.text
            token = r.json()["token"]
            segment = lab.segment(1)
            r = await client.post("/api/v1/labs/lab-a/segments", content=segment.to_json(), headers=bearer(token))
            assert r.status_code == 200, r.text
            print(r.json())
            r = await client.get("/api/v1/search", params={"q": "SN-"})
            print(r.json())
            r = await client.get("/ui/")
            assert r.status_code == 200, r.text
