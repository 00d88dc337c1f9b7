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
    return await client.post(f"/api/v1/labs/{lab}/segments", content=body, headers=bearer(token))


def rows(postgres: PostgresServer, dbname: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(postgres.conninfo(dbname), password=postgres.password) as conn:
        return list(conn.execute(sql, params).fetchall())


async def test_revoked_lab_is_refused(
    hub: Hub, postgres: PostgresServer, hub_database: str
) -> None:
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


async def test_a_repeated_or_overlapping_push_adds_nothing(
    hub: Hub, postgres: PostgresServer, hub_database: str
) -> None:
    lab = LabLedger("lab-a")
    for n in range(5):
        lab.audit(f"a{n}")
    lab.checkpoint()
    for n in range(5):
        lab.audit(f"b{n}")
    lab.checkpoint()
    async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
        token = await enrolled(client, lab)
        first = lab.segment(1, 5)
        r = await push(client, "lab-a", token, first.to_json())
        assert r.json() | {"head": None} == {"accepted": True, "head": None, "new": 5, "known": 0}
        r = await push(client, "lab-a", token, first.to_json())  # the answer was lost: again
        assert (r.status_code, r.json()["new"], r.json()["known"]) == (200, 0, 5)
        r = await push(client, "lab-a", token, lab.segment(1).to_json())  # overlaps
        assert (r.status_code, r.json()["new"], r.json()["known"]) == (200, 5, 5)
        r = await client.get("/api/v1/labs/lab-a/cursor", headers=bearer(token))
        assert r.json()["count"] == 10 and r.json()["hash"] == lab.entries[-1].hash
    stored = rows(postgres, hub_database, "SELECT seq, hash FROM entries ORDER BY seq")
    assert stored == [(e.seq, e.hash) for e in lab.entries]
    assert rows(postgres, hub_database, "SELECT count(*) FROM refusals") == [(0,)]


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "malformed"),
        (b"not json", "malformed"),
        (b"[]", "malformed"),
        (b"[" * 100_000 + b"]" * 100_000, "malformed"),
        (
            b'{"format":"etalon-ledger/1","ledger":"lab-a","from_seq":1,"to_seq":1,'
            b'"entries":[],"checkpoints":[]}',
            "malformed",
        ),
        (b"\xff\xfe garbage", "malformed"),
    ],
)
async def test_hostile_push_bodies_are_refused_and_recorded(
    hub: Hub, postgres: PostgresServer, hub_database: str, body: bytes, reason: str
) -> None:
    lab = LabLedger("lab-a")
    lab.audit()
    lab.checkpoint()
    async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
        token = await enrolled(client, lab)
        r = await push(client, "lab-a", token, body)
        assert r.status_code == 422, r.text
        answer = r.json()
        assert answer["accepted"] is False and answer["reason"] == reason
        assert answer["messages"]["vi"] != answer["messages"]["en"]
        # The hub still takes the lab's honest push afterwards.
        assert (await push(client, "lab-a", token, lab.segment(1).to_json())).status_code == 200
    assert rows(postgres, hub_database, "SELECT reason FROM refusals") == [(reason,)]


async def test_another_labs_ledger_and_tokens(
    hub: Hub, postgres: PostgresServer, hub_database: str
) -> None:
    a, b = LabLedger("lab-a"), LabLedger("lab-b")
    for lab in (a, b):
        lab.audit()
        lab.checkpoint()
    async with httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client:
        token_a = await enrolled(client, a)
        token_b = await enrolled(client, b)
        # lab-a pushes lab-b's ledger under its own name: another ledger, refused.
        r = await push(client, "lab-a", token_a, b.segment(1).to_json())
        assert (r.status_code, r.json()["reason"]) == (409, "wrong_ledger"), r.text
        # lab-a's token on lab-b's route: not its own.
        r = await push(client, "lab-b", token_a, b.segment(1).to_json())
        assert r.status_code == 403, r.text
        # no token, an unknown token, a staff token: none may push.
        for headers in ({}, bearer("etalon-lab-not-a-real-token"), bearer("HUB_ADMIN_TOKEN")):
            r = await client.post(
                "/api/v1/labs/lab-a/segments", content=a.segment(1).to_json(), headers=headers
            )
            assert r.status_code in (401, 403), r.text
        # a path that cannot be a lab id
        r = await push(client, "..%2F..%2Fetc", token_a, a.segment(1).to_json())
        assert r.status_code in (403, 404, 422), r.text
        assert (await push(client, "lab-b", token_b, b.segment(1).to_json())).status_code == 200
    assert rows(postgres, hub_database, "SELECT lab, count FROM lab_heads ORDER BY lab") == [
        ("lab-a", 0),
        ("lab-b", 1),
    ]


async def test_a_push_past_the_size_limit_is_refused(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    settings = hub_settings(tmp_path, postgres, hub_database, api={"max_segment_bytes": 65536})
    lab = LabLedger("lab-a")
    for n in range(400):
        lab.audit(f"entry {n} " + "x" * 200)
    lab.checkpoint()
    async with (
        running_hub(settings) as running,
        httpx.AsyncClient(base_url=running.url or "", timeout=30) as client,
    ):
        token = await enrolled(client, lab)
        body = lab.segment(1).to_json()
        assert len(body) > 65536
        r = await push(client, "lab-a", token, body)
        assert r.status_code == 413
        assert rows(postgres, hub_database, "SELECT count FROM lab_heads") == [(0,)]
