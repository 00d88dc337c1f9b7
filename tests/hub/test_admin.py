"""The institute's API (admin role) and the staff sign-in: hostile bodies are refused with the
field and the reason, roles are enforced, and nothing is stored or chained on a refusal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from ledger import SigningKey
from tests.support.hub import bearer, hub_settings, running_hub, staff_env
from tests.support.postgres import PostgresServer

KEY = SigningKey.generate().public_key.to_text()


@pytest.fixture
async def admin(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, PostgresServer, str]]:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    async with (
        running_hub(hub_settings(tmp_path, postgres, hub_database)) as hub,
        httpx.AsyncClient(base_url=hub.url or "", timeout=30, follow_redirects=False) as client,
    ):
        r = await client.post(
            "/api/v1/admin/labs",
            json={"lab": "lab-a", "public_key": KEY, "name": "A"},
            headers=bearer("HUB_ADMIN_TOKEN"),
        )
        assert r.status_code == 201, r.text
        yield client, postgres, hub_database


def counts(postgres: PostgresServer, dbname: str) -> tuple[int, int, int]:
    with psycopg.connect(postgres.conninfo(dbname), password=postgres.password) as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM labs), (SELECT count(*) FROM trace_links), "
            "(SELECT count(*) FROM hub_audit)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


ENROL = {"lab": "lab-b", "public_key": KEY, "name": "B"}


HOSTILE_BODIES: list[tuple[str, Any, int, str]] = [
    ("/api/v1/admin/labs", ENROL | {"lab": "lab b"}, 422, "lab"),
    ("/api/v1/admin/labs", ENROL | {"lab": "../../etc"}, 422, "lab"),
    ("/api/v1/admin/labs", ENROL | {"public_key": "A" * 44}, 422, "public_key"),
    ("/api/v1/admin/labs", ENROL | {"public_key": "x"}, 422, "public_key"),
    ("/api/v1/admin/labs", ENROL | {"name": "B\x1b[2J"}, 422, "name"),
    ("/api/v1/admin/labs", ENROL | {"name": ""}, 422, "name"),
    ("/api/v1/admin/labs", ENROL | {"country": "Vietnam"}, 422, "country"),
    ("/api/v1/admin/labs", ENROL | {"role": "admin"}, 422, "role"),
    ("/api/v1/admin/labs", ENROL | {"lab": "lab-a"}, 409, ""),  # enrolled already
    ("/api/v1/admin/labs", ENROL | {"name": "x" * 2_000_000}, 413, ""),
    ("/api/v1/admin/labs", [ENROL], 422, ""),
    ("/api/v1/admin/labs/lab-a/revoke", {"reason": ""}, 422, "reason"),
    ("/api/v1/admin/labs/lab-a/revoke", {"reason": "a\u2028b"}, 422, "reason"),
    ("/api/v1/admin/labs/ghost/revoke", {"reason": "x"}, 404, ""),
    ("/api/v1/admin/labs/..%2Fx/revoke", {"reason": "x"}, 404, ""),
    (
        "/api/v1/admin/links",
        {"from_lab": "lab-a", "from_standard": "S", "to_kind": "cmc"},
        422,
        "to_ref",
    ),
    (
        "/api/v1/admin/links",
        {"from_lab": "lab-a", "from_standard": "S", "to_kind": "magic", "to_ref": "x"},
        422,
        "to_kind",
    ),
    (
        "/api/v1/admin/links",
        {"from_lab": "ghost", "from_standard": "S", "to_kind": "cmc", "to_ref": "x"},
        404,
        "",
    ),
    (
        "/api/v1/admin/links",
        {
            "from_lab": "lab-a",
            "from_standard": "S",
            "to_kind": "cmc",
            "to_ref": "x",
            "valid_until": "someday",
        },
        422,
        "valid_until",
    ),
    ("/api/v1/admin/links/999/withdraw", {"reason": "x"}, 404, ""),
    ("/api/v1/admin/links/-1/withdraw", {"reason": "x"}, 422, ""),
]
"""Admin requests refused: (path, body, the status, a word the refusal names)."""


async def test_hostile_admin_bodies(
    admin: tuple[httpx.AsyncClient, PostgresServer, str], subtests: pytest.Subtests
) -> None:
    # One hub for every refusal (each hub costs a database, its migrations and a server): a
    # refusal stores nothing, which each case checks, so each case meets the hub as it started.
    client, postgres, dbname = admin
    for case, (path, body, status, field) in enumerate(HOSTILE_BODIES):
        with subtests.test(case=case, path=path):
            before = counts(postgres, dbname)
            r = await client.post(path, json=body, headers=bearer("HUB_ADMIN_TOKEN"))
            assert r.status_code == status, r.text
            assert field in r.text
            assert counts(postgres, dbname) == before


async def test_roles(admin: tuple[httpx.AsyncClient, PostgresServer, str]) -> None:
    client, postgres, dbname = admin
    before = counts(postgres, dbname)
    for headers in ({}, bearer("HUB_VIEW_TOKEN"), bearer("HUB_OPS_TOKEN"), bearer("nope")):
        r = await client.post("/api/v1/admin/labs", json=ENROL, headers=headers)
        assert r.status_code in (401, 403), r.text
        r = await client.post(
            "/api/v1/admin/labs/lab-a/revoke", json={"reason": "x"}, headers=headers
        )
        assert r.status_code in (401, 403), r.text
    assert (await client.get("/api/v1/audit")).status_code in (401, 403)
    ok = await client.get("/api/v1/audit/verify", headers=bearer("HUB_OPS_TOKEN"))
    assert ok.status_code == 200 and ok.json()["ok"] is True, ok.text
    assert counts(postgres, dbname) == before


async def test_audit_page(admin: tuple[httpx.AsyncClient, PostgresServer, str]) -> None:
    """The audit chain a page at a time, in chain order, with its latest signed checkpoint."""
    client, _, _ = admin
    r = await client.get("/api/v1/audit", headers=bearer("HUB_OPS_TOKEN"))
    assert r.status_code == 200, r.text
    page = r.json()
    assert [list(e) for e in page["entries"]] == [
        ["seq", "ts_ns", "kind", "subject", "actor", "body_json", "prev", "hash"]
    ]
    assert [(e["seq"], e["kind"], e["subject"]) for e in page["entries"]] == [
        (1, "lab.enrolled", "lab-a")
    ]
    assert isinstance(page["checkpoint"], str) and '"count":1' in page["checkpoint"]
    later = await client.get("/api/v1/audit", params={"after": 1}, headers=bearer("HUB_OPS_TOKEN"))
    assert later.json() == {"entries": [], "checkpoint": page["checkpoint"]}


async def test_signin(admin: tuple[httpx.AsyncClient, PostgresServer, str]) -> None:
    client, _, _ = admin
    for form in (b"token=wrong", b"", b"token=" + b"x" * 10_000, b"\xff\xfe=\x00"):
        r = await client.post(
            "/ui/signin",
            content=form,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert r.status_code == 303 and r.headers["location"] == "/ui/signin?refused=true"
        assert "set-cookie" not in r.headers
    token = staff_env()["HUB_OPS_TOKEN"]
    r = await client.post(
        "/ui/signin",
        content=f"token={token}".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert r.status_code == 303 and "httponly" in r.headers["set-cookie"].lower()
    page = await client.get("/ui/refusals", params={"lang": "vi"})
    assert page.status_code == 200 and 'lang="vi"' in page.text
