"""DCCs through a running gateway's API and through ``etalon standards import-dcc/export-dcc``:
an HTML page or a document the schema refuses is a 422 (the schema's message and line), a DCC
with several results fills several certificate points, a signature is verified against the
configured anchors (valid, untrusted recorded; invalid refused unless accepted explicitly, and
then recorded with who accepted it), the export validates against the shipped XSD and is signed
with the lab's key (a one-byte edit breaks it), and import → export → import (into a second
lab's registry) gives identical registry rows. The ledger verifies afterwards."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from app.cli import main
from gateway.service import Gateway
from metrology import dcc
from tests.support.gateway import API_TOKENS, api_settings, bearer, running_gateway
from tests.support.pki import Identity, certificate_authority, signer
from tests.support.processes import child_env, etalon_command, write_yaml
from tests.support.services import Mosquitto

DATA = Path(__file__).parents[2] / "metrology" / "dcc" / "data"
XML = {"content-type": "application/xml"}
ADMIN, VIEW = bearer("ADMIN_TOKEN"), bearer("VIEW_TOKEN")
HTML = b"<!DOCTYPE html>\n<html><body><h1>Certificate</h1></body></html>\n"
# Every column a registry row holds that an import fills from the document (not ids, times,
# file names, the signature verdict: those are the import's own).
SAME = ("number", "issuer", "calibration_date", "due_date", "value", "expanded_uncertainty",
        "coverage_factor", "value_text", "expanded_uncertainty_text", "coverage_factor_text",
        "coverage_probability", "conditions", "traceable_to")  # fmt: skip


def pem(path: Path, identity: Identity, private: bool = False) -> Path:
    data = identity.certificate.public_bytes(serialization.Encoding.PEM)
    if private:
        data = identity.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    path.write_bytes(data)
    return path


class Lab:
    """The test PKI: the lab's CA (a trust anchor) and signing identity, and a stranger's."""

    def __init__(self, tmp: Path) -> None:
        self.ca = certificate_authority()
        self.lab = signer(self.ca)
        self.stranger = signer(certificate_authority("someone else's CA"), "Unknown lab")
        self.anchor = pem(tmp / "ca.pem", self.ca)
        self.key = pem(tmp / "lab.key", self.lab, private=True)
        self.cert = pem(tmp / "lab.pem", self.lab)

    def sign(self, data: bytes, who: Identity | None = None) -> bytes:
        who = who or self.lab
        return dcc.sign(data, key=who.key, certificates=[who.certificate])


def settings(tmp: Path, lab: Lab, broker_port: int | None = None) -> dict[str, Any]:
    config: dict[str, Any] = {
        "site": "lab-1",
        "spool": {"path": str(tmp / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp / "readings.db")},
        "records": {"path": str(tmp / "records.db")},
        "standards": {
            "analytics": False,
            "dcc": {
                "laboratory": {
                    "name": "Phòng thí nghiệm điện",
                    "code": "VILAS 001",
                    "email": "lab@example.vn",
                    "city": "Hà Nội",
                    "responsible_persons": [{"name": "Nguyễn Văn A", "main_signer": True}],
                },
                "signing": {"key_file": str(lab.key), "certificate_file": str(lab.cert)},
                "trust_anchors": [str(lab.anchor)],
            },
        },
        "api": api_settings(),
    }
    if broker_port is not None:
        config["mqtt"] = {"port": broker_port}
    return config


@pytest.fixture
async def running(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[Gateway, Lab, httpx.AsyncClient]]:
    for name, secret in API_TOKENS.items():
        monkeypatch.setenv(name, secret)
    lab = Lab(tmp_path)
    async with running_gateway(settings(tmp_path, lab, mosquitto.port)) as gateway:
        assert gateway.api_url is not None
        async with httpx.AsyncClient(base_url=gateway.api_url + "/api/v1", timeout=60) as http:
            yield gateway, lab, http


def rows(certificate: dict[str, Any]) -> dict[str, Any]:
    """What must survive a round trip: the row's fields and every point's."""
    points = [
        {k: v for k, v in point.items() if k not in ("id", "certificate_id")}
        for point in certificate["points"]
    ]
    return {key: certificate[key] for key in SAME} | {"points": points}


async def test_dcc_import_export_and_signatures_through_the_api(
    running: tuple[Gateway, Lab, httpx.AsyncClient],
) -> None:
    gateway, lab, http = running
    url = "/standards/{}/certificates"

    # Refused: an HTML page saved as .xml, a document the schema refuses; nothing registered.
    html = await http.post(url.format("Z1"), content=HTML, headers=ADMIN | XML)
    assert html.status_code == 422 and "HTML" in html.text, html.text
    broken = (
        (DATA / "zener.xml")
        .read_bytes()
        .replace(b"<si:value>1.01800452</si:value>", b"<si:value>about one volt</si:value>")
    )
    invalid = await http.post(url.format("Z1"), content=broken, headers=ADMIN | XML)
    assert invalid.status_code == 422, invalid.text
    line = broken[: broken.index(b"about one volt")].count(b"\n") + 1
    assert "about one volt" in invalid.text and f"line {line}" in invalid.text, invalid.text
    viewer = await http.post(url.format("Z1"), content=HTML, headers=VIEW | XML)
    assert viewer.status_code == 403
    assert (await http.get("/standards", headers=VIEW)).json() == []

    # A Zener at 1.018 V and 10 V: a new standard from its item, two points; signed by the lab.
    zener = lab.sign((DATA / "zener.xml").read_bytes())
    made = await http.post(url.format("Z1"), content=zener, headers=ADMIN | XML)
    assert made.status_code == 201, made.text
    created = made.json()
    assert created["created_standard"] and created["points"] == 2
    assert created["signature"]["status"] == "valid"
    assert "VMI DCC signing" in created["signature"]["signer"]["subject"]
    (shown,) = (await http.get(url.format("Z1"), headers=VIEW)).json()
    assert len(shown["points"]) == 2 and shown["signature"]["status"] == "valid"
    assert shown["number"] == "VMI-DCC-2026-0002"
    kept = await http.get(f"{url.format('Z1')}/{shown['id']}/file", headers=VIEW)
    assert kept.content == zener  # byte for byte

    # A resistor at three currents: three points; signed by a CA nobody configured: untrusted.
    resistor = lab.sign((DATA / "resistor.xml").read_bytes(), lab.stranger)
    answer = await http.post(url.format("R1"), content=resistor, headers=ADMIN | XML)
    assert answer.status_code == 201, answer.text
    assert answer.json()["points"] == 3 and answer.json()["signature"]["status"] == "untrusted"

    # A one-byte edit in signed content: refused, unless accepted explicitly (then recorded).
    single = lab.sign((DATA / "single.xml").read_bytes())
    at = single.index(b"10.0000123") + 3
    edited = single[:at] + b"9" + single[at + 1 :]
    refused = await http.post(url.format("Z2"), content=edited, headers=ADMIN | XML)
    assert refused.status_code == 422 and "signature is invalid" in refused.text, refused.text
    assert (await http.get("/standards/Z2", headers=VIEW)).status_code == 404
    accepted = await http.post(
        url.format("Z2"), content=edited, params={"accept_unsigned": "true"}, headers=ADMIN | XML
    )
    assert accepted.status_code == 201, accepted.text
    (kept_invalid,) = (await http.get(url.format("Z2"), headers=VIEW)).json()
    assert kept_invalid["signature"]["status"] == "invalid"
    assert kept_invalid["signature"]["accepted_by"] == "api:quality-manager"

    # Export: valid against the XSD, signed by the lab's key; a one-byte edit breaks it.
    exported = await http.get(f"{url.format('Z1')}/{shown['id']}/dcc", headers=VIEW)
    assert exported.status_code == 200 and exported.headers["content-type"].startswith(
        "application/xml"
    )
    document = exported.content
    dcc.validate(document)
    anchors = [lab.ca.certificate]
    assert dcc.verify(document, anchors=anchors).status == "valid"
    at = document.index(b"9.99999921") + 2
    assert dcc.verify(document[:at] + b"8" + document[at + 1 :], anchors=anchors).status == (
        "invalid"
    )
    parsed = dcc.parse(document)
    assert {c.lang for c in parsed.laboratory.name.content} <= {None, "en", "vi"}
    languages = set(parsed.used_languages)
    assert {"en", "vi"} <= languages

    verified = (await http.get("/records/verify", headers=ADMIN)).json()
    assert verified["ok"], verified
    del gateway


def run_cli(config: Path, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        etalon_command("--lang", lang, "standards", *args, "-c", str(config)),
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=120,
    )


def test_import_dcc_and_export_dcc_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lab = Lab(tmp_path)
    config = write_yaml(tmp_path / "gateway.yaml", settings(tmp_path, lab))

    def etalon(*args: str, lang: str = "en", where: Path = config) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["--lang", lang, "standards", *args, "-c", str(where)])
        out, err = capsys.readouterr()
        return code, out, err

    html = tmp_path / "page.xml"
    html.write_bytes(HTML)
    refused = run_cli(config, "import-dcc", str(html))  # as a user runs it, once
    assert refused.returncode == 1 and "HTML" in refused.stderr, refused
    code, _, err = etalon("import-dcc", str(html), lang="vi")
    assert code == 1 and "HTML" in err, err
    zener = tmp_path / "zener.xml"
    zener.write_bytes(lab.sign((DATA / "zener.xml").read_bytes()))
    code, out, _ = etalon("import-dcc", str(zener))
    assert code == 0 and "VMI-DCC-2026-0002" in out and "valid" in out, out

    # In Vietnamese: a table of three currents, three points.
    code, out, _ = etalon("import-dcc", str(DATA / "resistor.xml"), lang="vi")
    assert code == 0, out
    code, out, _ = etalon("list", "--json")
    ids = sorted(item["id"] for item in json.loads(out))
    assert len(ids) == 2, out
    shown = {i: json.loads(etalon("show", i, "--json")[1])["standard"] for i in ids}
    assert sorted(len(s["certificates"][0]["points"]) for s in shown.values()) == [2, 3]
    code, _, err = etalon("import-dcc", str(zener), "--standard", "nope")
    assert code != 0 and "nope" in err, err

    zener_id = next(i for i, s in shown.items() if len(s["certificates"][0]["points"]) == 2)
    out_file = tmp_path / "export.xml"
    code, out, _ = etalon("export-dcc", zener_id, "--out", str(out_file), lang="vi")
    assert code == 0, out
    document = out_file.read_bytes()
    dcc.validate(document)
    assert dcc.verify(document, anchors=[lab.ca.certificate]).status == "valid"
    code, _, err = etalon("export-dcc", "nope", "--out", str(tmp_path / "x.xml"))
    assert code != 0 and "nope" in err and not (tmp_path / "x.xml").exists()

    # Round trip: the export imported into another lab's registry gives identical rows.
    other = tmp_path / "other"
    other.mkdir()
    config_b = write_yaml(other / "gateway.yaml", settings(other, lab))
    assert etalon("import-dcc", str(out_file), where=config_b)[0] == 0
    first = shown[zener_id]
    second = json.loads(etalon("show", zener_id, "--json", where=config_b)[1])["standard"]
    assert [rows(c) for c in second["certificates"]] == [rows(c) for c in first["certificates"]]
    volatile = ("certificates", "created_ns", "updated_ns")
    assert {k: v for k, v in second.items() if k not in volatile} == {
        k: v for k, v in first.items() if k not in volatile
    }
    assert main(["records", "verify", "-c", str(config)]) == 0
