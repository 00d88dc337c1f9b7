"""What the hub serves from what labs pushed: search (and its hostile queries), exports (JSON
that its published schema reads back, CSV with formula cells neutralised), certificate files
(by SHA-256, only DCCs and PDFs), pages in English and Vietnamese."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hub.exports import RegistryExport
from tests.support.hub import NS_PER_DAY, LabLedger, bearer, hub_settings, running_hub, staff_env
from tests.support.postgres import PostgresServer

NOW = time.time_ns()
PDF = b"%PDF-1.4\n% a certificate\n%%EOF\n"


@pytest.fixture
async def served(
    tmp_path: Path, postgres: PostgresServer, hub_database: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[httpx.AsyncClient, str, LabLedger]]:
    for k, v in staff_env().items():
        monkeypatch.setenv(k, v)
    lab = LabLedger("lab-hue")
    lab.standard("R1", kind="resistance", description='=HYPERLINK("http://x")', serial="+R1")
    lab.certificate(
        "R1", "C-1", "nmi", calibrated_ns=NOW - NS_PER_DAY, due_ns=NOW + 10 * NS_PER_DAY, file=PDF
    )
    lab.identity("hue/gw/dmm")
    lab.checkpoint()
    async with (
        running_hub(hub_settings(tmp_path, postgres, hub_database)) as hub,
        httpx.AsyncClient(base_url=hub.url or "", timeout=30) as client,
    ):
        r = await client.post(
            "/api/v1/admin/labs",
            json={
                "lab": "lab-hue",
                "public_key": lab.key.public_key.to_text(),
                "name": "Phòng thí nghiệm Huế",
                "province": "Thừa Thiên Huế",
            },
            headers=bearer("HUB_ADMIN_TOKEN"),
        )
        token = r.json()["token"]
        r = await client.post(
            "/api/v1/labs/lab-hue/segments", content=lab.segment(1).to_json(), headers=bearer(token)
        )
        assert r.status_code == 200, r.text
        yield client, token, lab


async def test_search_and_due_counts(served: tuple[httpx.AsyncClient, str, LabLedger]) -> None:
    client, _, _ = served
    items = (await client.get("/api/v1/search", params={"kind": "resistance"})).json()["items"]
    assert [(i["item_key"], i["calibration"]) for i in items] == [("R1", "due")]
    items = (await client.get("/api/v1/search", params={"type": "instrument"})).json()["items"]
    assert [i["item_key"] for i in items] == ["hue/gw/dmm"]
    lab = (await client.get("/api/v1/labs/lab-hue")).json()
    assert "due" in str(lab)


@pytest.mark.parametrize(
    "params",
    [
        {"q": "a\x00b"},
        {"q": "x" * 101},
        {"limit": "0"},
        {"limit": "100000"},
        {"after": "-1"},
        {"lab": "../etc"},
        {"type": "everything"},
        {"calibration": "sometime"},
        {"province": "\x1b[31m"},
        {"unknown": "1"},
    ],
)
async def test_hostile_searches_are_refused(
    served: tuple[httpx.AsyncClient, str, LabLedger], params: dict[str, str]
) -> None:
    client, _, _ = served
    r = await client.get("/api/v1/search", params=params)
    assert r.status_code == 422, (params, r.status_code, r.text)
    assert r.json()["detail"]


async def test_wildcards_and_quotes_are_text(
    served: tuple[httpx.AsyncClient, str, LabLedger],
) -> None:
    client, _, _ = served
    for q in ("%", "_", "' OR 1=1 --", "\\"):
        r = await client.get("/api/v1/search", params={"q": q})
        assert r.status_code == 200 and r.json()["items"] == [], (q, r.text)


async def test_exports(served: tuple[httpx.AsyncClient, str, LabLedger]) -> None:
    client, _, _ = served
    assert (await client.get("/api/v1/export/registry.json")).status_code == 401
    r = await client.get("/api/v1/export/registry.json", headers=bearer("HUB_VIEW_TOKEN"))
    export = RegistryExport.model_validate_json(r.content)  # the published hub-export schema
    assert {item.key for item in export.items} == {"R1", "hue/gw/dmm"}
    r = await client.get("/api/v1/export/registry.csv", headers=bearer("HUB_VIEW_TOKEN"))
    rows = list(csv.DictReader(io.StringIO(r.text)))
    standard = next(row for row in rows if row["key"] == "R1")
    assert standard["description"].startswith("'=") and standard["serial"] == "'+R1"
    schema = (await client.get("/api/v1/schemas/hub-export")).json()
    assert schema["title"] == "RegistryExport"


async def test_certificate_files(served: tuple[httpx.AsyncClient, str, LabLedger]) -> None:
    client, token, lab = served
    (digest,) = lab.files
    r = await client.get("/api/v1/labs/lab-hue/attachments/missing", headers=bearer(token))
    assert r.json() == {"missing": [digest]}
    url = f"/api/v1/labs/lab-hue/attachments/{digest}"
    html = b"<html><body>not a certificate</body></html>"
    r = await client.put(url, content=html, headers=bearer(token))
    assert r.status_code == 422 and "SHA-256" in r.text
    other = "0" * 64
    r = await client.put(
        f"/api/v1/labs/lab-hue/attachments/{other}", content=PDF, headers=bearer(token)
    )
    assert r.status_code == 422
    r = await client.put(
        "/api/v1/labs/lab-hue/attachments/NOTHEX", content=PDF, headers=bearer(token)
    )
    assert r.status_code == 422
    r = await client.put(url, content=PDF, headers=bearer("HUB_ADMIN_TOKEN"))
    assert r.status_code == 403
    assert (await client.put(url, content=PDF, headers=bearer(token))).status_code == 201
    assert (await client.put(url, content=PDF, headers=bearer(token))).status_code == 200
    r = await client.get(f"/api/v1/attachments/{digest}")
    assert r.content == PDF and r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["content-type"] == "application/pdf"


async def test_pages_in_both_languages(
    served: tuple[httpx.AsyncClient, str, LabLedger],
) -> None:
    client, _, _ = served
    en = await client.get("/ui/", params={"lang": "en", "kind": "resistance"})
    vi = await client.get("/ui/", params={"lang": "vi", "kind": "resistance"})
    assert en.status_code == vi.status_code == 200
    assert "R1" in en.text and "R1" in vi.text and en.text != vi.text
    assert 'lang="vi"' in vi.text
    page = await client.get("/ui/lab", params={"lab": "lab-hue", "lang": "vi"})
    assert page.status_code == 200 and "Phòng thí nghiệm Huế" in page.text
    page = await client.get("/ui/standard", params={"lab": "lab-hue", "id": "R1", "lang": "vi"})
    assert page.status_code == 200 and "C-1" in page.text
    page = await client.get("/ui/traceability", params={"lab": "lab-hue", "lang": "vi"})
    assert page.status_code == 200 and "<svg" in page.text
    missing = await client.get("/ui/lab", params={"lab": "ghost", "lang": "vi"})
    assert missing.status_code == 404 and "Không tìm thấy" in missing.text
    hostile = await client.get("/ui/lab", params={"lab": "<script>", "lang": "vi"})
    assert hostile.status_code in (404, 422) and "<script>" not in hostile.text
    refusals = await client.get("/ui/refusals", params={"lang": "vi"})
    assert refusals.status_code in (401, 403) or "signin" in str(refusals.url)
    r = await client.get("/api/v1/traceability", params={"lab": "ghost"})
    assert r.status_code == 404
