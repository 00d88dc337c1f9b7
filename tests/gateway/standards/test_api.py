"""The standards API of a running gateway over real HTTP: viewers read, admins change (audited),
operators ask for an evaluation; bad input is a 4xx with its reason."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateway.service import Gateway
from tests.gateway.standards.conftest import CASES
from tests.support.gateway import API_TOKENS, api_settings, bearer, running_gateway
from tests.support.services import Mosquitto

TOKENS = API_TOKENS
STANDARD = {
    "id": "Z10-01",
    "kind": "dc_voltage",
    "nominal": 10,
    "unit": "V",
    "owner_lab": "VMI Electrical",
    "tolerance": "±2 ppm",
    "channels": [
        {"agent": "bench-1", "instrument": "zener-10v", "channel": "voltage", "unit": "V"}
    ],
}
CERTIFICATE = {
    "number": "VMI-2025-0042",
    "issuer": "VMI",
    "calibration_date": "2025-03-10",
    "due_date": "2026-03-10",
    "value": 10.0000081,
    "expanded_uncertainty": 4e-7,
    "coverage_factor": 2,
    "traceable_to": [{"lab": "VMI", "standard": "JVS-1", "national": True}],
}


@pytest.fixture
async def gateway(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    for key, value in TOKENS.items():
        monkeypatch.setenv(key, value)
    settings = {
        "site": "lab-1",
        "mqtt": {"port": mosquitto.port},
        "spool": {"path": str(tmp_path / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
        "records": {"path": str(tmp_path / "records.db")},
        "standards": {"analytics_interval_s": 3600},
        "api": api_settings(),
    }
    async with running_gateway(settings) as gw:
        yield gw


as_ = bearer


async def test_registry_through_the_api(gateway: Gateway, tmp_path: Path) -> None:
    assert gateway.api_url is not None
    async with httpx.AsyncClient(base_url=gateway.api_url + "/api/v1", timeout=60) as http:
        viewer, operator, admin = as_("VIEW_TOKEN"), as_("OPS_TOKEN"), as_("ADMIN_TOKEN")
        assert (await http.get("/standards")).status_code == 401
        assert (await http.get("/standards", headers=viewer)).json() == []
        # Only an admin changes the registry.
        for who in (viewer, operator):
            refused = await http.post("/standards", json=STANDARD, headers=who)
            assert refused.status_code == 403
        created = await http.post("/standards", json=STANDARD, headers=admin)
        assert created.status_code == 201 and created.json() == {"id": "Z10-01"}
        again = await http.post("/standards", json=STANDARD, headers=admin)
        assert again.status_code == 409
        assert again.json()["detail"] == "standard Z10-01 is already registered"
        bad_body = STANDARD | {"id": "Z2", "tolerance": "about 2 ppm"}
        bad = await http.post("/standards", json=bad_body, headers=admin)
        assert bad.status_code == 422 and "is not a tolerance" in bad.text
        certificate = await http.post(
            "/standards/Z10-01/certificates", json=CERTIFICATE, headers=admin
        )
        assert certificate.status_code == 201
        certificate_id = certificate.json()["id"]
        far = await http.post(
            "/standards/Z10-01/certificates",
            json=CERTIFICATE | {"number": "X-1", "value": 100.0},
            headers=admin,
        )
        assert far.status_code == 409 and "far from the nominal" in far.json()["detail"]
        assert (await http.post("/standards/Z99/certificates", json=CERTIFICATE, headers=admin)
                ).status_code == 404  # fmt: skip
        # The file: uploaded raw, kept by hash, downloaded with its hash.
        pdf = (CASES / "files" / "vmi-2025-0042.pdf").read_bytes()
        file_url = f"/standards/Z10-01/certificates/{certificate_id}/file"
        assert (await http.put(file_url, params={"name": "c.pdf"}, content=pdf, headers=viewer)
                ).status_code == 403  # fmt: skip
        not_pdf = await http.put(file_url, params={"name": "c.txt"}, content=b"hello",
                                 headers=admin)  # fmt: skip
        assert not_pdf.status_code == 422
        uploaded = await http.put(file_url, params={"name": "VMI 2025-0042.pdf"}, content=pdf,
                                  headers=admin)  # fmt: skip
        assert uploaded.status_code == 200
        digest = hashlib.sha256(pdf).hexdigest()
        assert uploaded.json()["sha256"] == digest
        download = await http.get(file_url, headers=viewer)
        assert download.status_code == 200 and download.content == pdf
        assert download.headers["x-etalon-sha256"] == digest
        assert download.headers["content-type"] == "application/pdf"
        shown = (await http.get("/standards/Z10-01", headers=viewer)).json()
        assert shown["certificates"][0]["file"]["state"] == "ok"
        assert shown["channels"][0]["site"] == "lab-1"
        chain = (await http.get("/standards/Z10-01/traceability", headers=viewer)).json()
        assert chain["complete"] is True
        # A correction is audited with before and after; an identical PUT changes nothing.
        corrected = await http.put(
            f"/standards/Z10-01/certificates/{certificate_id}",
            json=CERTIFICATE | {"value": 10.0000082},
            headers=admin,
        )
        assert corrected.json() == {"changed": True}
        same = await http.put(
            f"/standards/Z10-01/certificates/{certificate_id}",
            json=CERTIFICATE | {"value": 10.0000082},
            headers=admin,
        )
        assert same.json() == {"changed": False}
        renamed = await http.put(
            "/standards/Z10-01", json=STANDARD | {"id": "Z10-02"}, headers=admin
        )
        assert renamed.status_code == 422
        # A kept file changed on disk is not served as the certificate.
        kept = next((tmp_path / "certificates").glob("*.pdf"))
        kept.write_bytes(b"%PDF-1.4 forged")
        forged = await http.get(file_url, headers=viewer)
        assert forged.status_code == 409 and "no longer has its recorded SHA-256" in forged.text
        shown = (await http.get("/standards/Z10-01", headers=viewer)).json()
        assert shown["certificates"][0]["file"]["state"] == "mismatch"
        # Evaluation: nothing yet, then on request by an operator.
        assert (await http.get("/standards/Z10-01/drift", headers=viewer)).status_code in (200, 404)
        assert (await http.post("/standards/Z10-01/evaluate", headers=viewer)).status_code == 403
        evaluated = await http.post("/standards/Z10-01/evaluate", headers=operator)
        assert evaluated.status_code == 200
        summary = evaluated.json()
        assert summary["reference"] == 10.0000082 and summary["k"] == 2.0
        assert summary["calibration_due"] == "2026-03-10T00:00:00Z"
        drift = (await http.get("/standards/Z10-01/drift", headers=viewer)).json()
        assert drift["format"] == "etalon.standards.evaluation/1"
        history = (await http.get("/standards/Z10-01/drift/history", headers=viewer)).json()
        assert history[0]["ts_ns"] == summary["ts_ns"]
        listed = (await http.get("/standards", headers=viewer)).json()
        assert listed[0]["summary"]["reference"] == 10.0000082
        assert (await http.post("/standards/Z99/evaluate", headers=operator)).status_code == 404
        assert (await http.get("/standards/Z10-01/drift/history", params={"limit": 0},
                               headers=viewer)).status_code == 422  # fmt: skip
    rows = await gateway.records.query(
        "SELECT actor, action, details FROM audit_log WHERE action LIKE 'certificate.%' ORDER BY id"
    )
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("api:quality-manager", "certificate.add"),
        ("api:quality-manager", "certificate.file"),
        ("api:quality-manager", "certificate.update"),
    ]
    change = json.loads(rows[2]["details"])
    assert (change["before"]["value"], change["after"]["value"]) == (10.0000081, 10.0000082)
