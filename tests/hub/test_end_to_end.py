"""The issue's end-to-end case: three lab gateways (their own record stores, keys and
checkpoint files) push to one hub (``etalon hub`` in its own process, HTTPS, a real PostgreSQL)
through ``gateway.hubsync``.

Proves: every entry of every lab arrives exactly once; the hub SIGKILLed mid-push comes back and
the lab resumes from the hub's cursor; a lab offline for a simulated day catches up on its own;
a segment signed with the wrong key, one with an edited entry (raw SQL on the lab's store), one
replayed out of order and one with entries swapped are refused, recorded (refusal rows, the hub's
audit chain) and shown in both languages; a revoked lab's later pushes are refused; search finds
instruments and standards across labs; the traceability graph shows lab-c → lab-b → nmi →
national standard + KCDB comparison and flags lab-c's expired link.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psycopg

from gateway.hubsync.config import HubSyncConfig
from gateway.hubsync.sync import HubSync, HubUnreachable, SyncState
from ledger import Checkpoint, SigningKey, export_segment
from tests.support.certs import make_ca_and_server
from tests.support.hub import (
    NS_PER_DAY,
    LabLedger,
    LabStore,
    bearer,
    hub_settings,
    staff_env,
)
from tests.support.postgres import PostgresServer
from tests.support.processes import EtalonProcess, child_env, etalon_command, write_yaml
from tests.support.services import free_port

NOW = time.time_ns()


class HubUnderTest:
    """``etalon hub -c hub.yaml`` as a process: start, kill -9, restart."""

    def __init__(self, tmp_path: Path, postgres: PostgresServer, dbname: str) -> None:
        self.ca, cert, key = make_ca_and_server(tmp_path / "pki")
        self.port = free_port()
        settings = hub_settings(
            tmp_path,
            postgres,
            dbname,
            api={"port": self.port, "tls": {"cert_file": str(cert), "key_file": str(key)}},
        )
        self.config = write_yaml(tmp_path / "hub.yaml", settings)
        self.url = f"https://127.0.0.1:{self.port}"
        self.process = EtalonProcess("hub", self.config, tmp_path / "hub.log", env=staff_env())

    def start(self) -> None:
        """Start and wait until it listens."""
        after = len(self.process.log())
        self.process.start()
        self.process.wait_log(r"hub listening", timeout_s=60, after=after)

    def client(self) -> httpx.Client:
        """An HTTPS client trusting the test CA."""
        return httpx.Client(
            base_url=self.url, verify=ssl.create_default_context(cafile=str(self.ca)), timeout=60
        )

    def cli(self, *args: str, lang: str = "en") -> subprocess.CompletedProcess[str]:
        """``etalon --lang LANG hub ACTION -c hub.yaml ARGS`` (the institute's commands)."""
        action, *rest = args
        return subprocess.run(
            etalon_command("--lang", lang, "hub", action, "-c", str(self.config), *rest),
            env=child_env(staff_env()),
            capture_output=True,
            text=True,
            timeout=120,
        )


def enrol(hub: HubUnderTest, lab: LabLedger, province: str) -> str:
    """Enrol a lab over the admin API; returns its push token."""
    with hub.client() as client:
        r = client.post(
            "/api/v1/admin/labs",
            json={
                "lab": lab.lab,
                "public_key": lab.key.public_key.to_text(),
                "name": f"Lab {lab.lab}",
                "province": province,
            },
            headers=bearer("HUB_ADMIN_TOKEN"),
        )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def syncer(hub: HubUnderTest, store: LabStore, token: str, max_entries: int = 1000) -> HubSync:
    """The lab gateway's pusher (config as a gateway's ``hub:`` section)."""
    os.environ[f"HUB_TOKEN_{store.lab.lab.replace('-', '_')}"] = token
    config = HubSyncConfig.model_validate(
        {
            "url": hub.url,
            "token": {"env": f"HUB_TOKEN_{store.lab.lab.replace('-', '_')}"},
            "ca_file": str(hub.ca),
            "max_entries": max_entries,
            "timeout_s": 30,
        }
    )
    return HubSync(config, store.source())


def sync(pusher: HubSync) -> SyncState:
    """One round of the pusher, as its loop runs it."""

    async def once() -> None:
        async with pusher:
            await pusher.sync_once()

    asyncio.run(once())
    return pusher.state


def stored(postgres: PostgresServer, dbname: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of the hub's database."""
    with psycopg.connect(postgres.conninfo(dbname), password=postgres.password) as conn:
        return list(conn.execute(sql, params).fetchall())


def assert_exactly_once(postgres: PostgresServer, dbname: str, lab: LabLedger) -> None:
    """The hub holds every entry of the lab, once, in order, as the lab made it."""
    rows = stored(
        postgres,
        dbname,
        "SELECT seq, ts_ns, kind, subject, actor, body_json, prev, hash FROM entries "
        "WHERE lab = %s ORDER BY seq",
        lab.lab,
    )
    assert [tuple(row) for row in rows] == [tuple(e) for e in lab.entries]


def push_raw(hub: HubUnderTest, lab: str, token: str, body: bytes) -> httpx.Response:
    """A push as an attacker (or a broken gateway) sends it."""
    with hub.client() as client:
        return client.post(
            f"/api/v1/labs/{lab}/segments",
            content=body,
            headers=bearer(token) | {"Content-Type": "application/json"},
        )


def test_three_labs_one_hub(tmp_path: Path, postgres: PostgresServer, hub_database: str) -> None:
    hub = HubUnderTest(tmp_path, postgres, hub_database)
    hub.start()
    try:
        _scenario(tmp_path, hub, postgres, hub_database)
    finally:
        hub.process.ensure_stopped()
        for name in list(os.environ):
            if name.startswith("HUB_TOKEN_"):
                del os.environ[name]


def _scenario(tmp_path: Path, hub: HubUnderTest, postgres: PostgresServer, dbname: str) -> None:
    # -- three labs, each its own store and key --------------------------------------------
    nmi = LabLedger("nmi")
    lab_b = LabLedger("lab-b")
    lab_c = LabLedger("lab-c")
    stores = {lab.lab: LabStore(lab, tmp_path / "labs" / lab.lab) for lab in (nmi, lab_b, lab_c)}
    tokens = {
        nmi.lab: enrol(hub, nmi, "Hà Nội"),
        lab_b.lab: enrol(hub, lab_b, "Đà Nẵng"),
        lab_c.lab: enrol(hub, lab_c, "Cần Thơ"),
    }
    # The institute's national standard, its designation and its key comparison.
    nmi.standard("N1", serial="NMI-Z-0001", description="Chuẩn quốc gia điện áp DC")
    nmi.identity("hanoi/gw/dmm")
    nmi.checkpoint()
    for args in (
        ("--from", "nmi/N1", "--national", "VN-DCV-1"),
        ("--from", "nmi/N1", "--kcdb", "CCEM-K8"),
    ):
        done = hub.cli("link", "add", *args)
        assert done.returncode == 0, done.stderr
    # lab-b: B1 calibrated by the institute's N1 (valid a year from now), and a long history.
    lab_b.standard("B1", serial="B-Z-0042", model="732B")
    lab_b.certificate(
        "B1",
        "NMI-2026-0001",
        "nmi",
        calibrated_ns=NOW - 30 * NS_PER_DAY,
        due_ns=NOW + 365 * NS_PER_DAY,
        traceable_to=[("nmi", "N1", "NMI-2026-0001")],
    )
    for n in range(1500):
        lab_b.audit(f"reading check {n}")
        if n % 9 == 8:
            lab_b.checkpoint()
    lab_b.checkpoint()
    # lab-c: C1 calibrated by lab-b's B1 with a certificate that expired in the summer.
    lab_c.standard("C1", serial="C-R-0007", kind="resistance", unit="ohm", nominal="1")
    lab_c.certificate(
        "C1",
        "B-2025-0777",
        "lab-b",
        calibrated_ns=NOW - 400 * NS_PER_DAY,
        due_ns=NOW - 30 * NS_PER_DAY,
        traceable_to=[("lab-b", "B1", "B-2025-0777")],
    )
    lab_c.identity("cantho/gw/bridge", manufacturer="Guildline", model="6622A")
    lab_c.checkpoint()
    for store in stores.values():
        store.flush()

    pushers = {
        name: syncer(hub, store, tokens[name], max_entries=10 if name == "lab-b" else 1000)
        for name, store in stores.items()
    }
    assert sync(pushers["nmi"]).hub_count == len(nmi.entries)
    assert sync(pushers["lab-c"]).lag == 0

    # -- the hub is killed in the middle of lab-b's push, and comes back -------------------
    total = len(lab_b.entries)
    failure: list[BaseException] = []

    def push_b() -> None:
        try:
            sync(pushers["lab-b"])
        except BaseException as exc:  # noqa: BLE001 - the thread hands it to the test
            failure.append(exc)

    pushing = threading.Thread(target=push_b)
    pushing.start()
    deadline = time.monotonic() + 120
    held = 0
    while time.monotonic() < deadline and pushing.is_alive():
        rows = stored(postgres, dbname, "SELECT count FROM lab_heads WHERE lab = 'lab-b'")
        held = rows[0][0]
        if held >= 200:
            break
        time.sleep(0.01)
    hub.process.kill9()
    pushing.join(60)
    assert 200 <= held < total, f"the kill did not land mid-push ({held} of {total})"
    assert len(failure) == 1 and isinstance(failure[0], HubUnreachable), failure
    assert pushers["lab-b"].state.lag is not None and pushers["lab-b"].state.lag > 0
    hub.start()
    state = sync(pushers["lab-b"])
    assert (state.hub_count, state.lag, state.refusals) == (total, 0, 0)

    # -- lab-c is offline for a day, then catches up on its own ----------------------------
    for hour in range(24):
        lab_c.tick(3600 * 10**9)
        lab_c.identity("cantho/gw/bridge", firmware=f"1.{hour}")
        lab_c.audit(f"hourly check {hour}")
        lab_c.checkpoint()
    stores["lab-c"].flush()
    behind = sync(pushers["lab-c"])
    assert behind.lag == 0 and behind.hub_count == len(lab_c.entries)
    for lab in (nmi, lab_b, lab_c):
        assert_exactly_once(postgres, dbname, lab)

    # -- refusals ---------------------------------------------------------------------------
    hub_nmi = len(nmi.entries)
    # 1. signed with the wrong key: nmi's next entries with a checkpoint by another key.
    nmi.standard("N2", serial="NMI-Z-0002")
    wrong = SigningKey.generate()
    forged = Checkpoint.sign(
        wrong, "nmi", len(nmi.entries), nmi.entries[-1].hash, nmi.entries[-1].ts_ns
    )
    segment = export_segment(nmi.entries, [forged], ledger="nmi", from_seq=hub_nmi + 1)
    r = push_raw(hub, "nmi", tokens["nmi"], segment.to_json())
    assert r.status_code == 409, r.text
    assert r.json()["reason"] in ("wrong_key", "forged"), r.json()
    # 2. replayed out of order: a later segment before the one it follows.
    nmi.checkpoint()
    nmi.audit("later")
    nmi.checkpoint()
    later = export_segment(nmi.entries, nmi.checkpoints, ledger="nmi", from_seq=len(nmi.entries))
    r = push_raw(hub, "nmi", tokens["nmi"], later.to_json())
    assert (r.status_code, r.json()["reason"]) == (409, "gap"), r.text
    # 3. entries swapped inside a segment.
    whole = export_segment(nmi.entries, nmi.checkpoints, ledger="nmi", from_seq=hub_nmi + 1)
    swapped = whole.model_dump(mode="json")
    swapped["entries"][0:2] = swapped["entries"][1::-1]
    r = push_raw(hub, "nmi", tokens["nmi"], json.dumps(swapped).encode())
    assert (r.status_code, r.json()["reason"]) in ((409, "reordered"), (422, "malformed")), r.text
    assert stored(postgres, dbname, "SELECT count FROM lab_heads WHERE lab='nmi'")[0][0] == hub_nmi
    # The honest push still goes through afterwards (nothing of the refused ones was kept).
    stores["nmi"].flush()
    assert sync(pushers["nmi"]).hub_count == len(nmi.entries)
    # 4. an entry edited in the lab's record store by raw SQL, pushed by the gateway itself.
    held_c = len(lab_c.entries)
    lab_c.audit("before the edit")
    lab_c.audit("to be edited")
    lab_c.checkpoint()
    stores["lab-c"].flush()
    stores["lab-c"].execute(
        "UPDATE ledger SET body_json = replace(body_json, 'to be edited', 'rewritten') "
        "WHERE seq = ?",
        (len(lab_c.entries),),
    )
    state = sync(pushers["lab-c"])
    assert state.hub_count == held_c and state.lag == 2
    assert state.last_refusal is not None and state.last_refusal.reason == "edited"
    assert state.last_refusal.messages["vi"] and state.last_refusal.messages["en"]
    assert state.last_refusal.messages["vi"] != state.last_refusal.messages["en"]
    again = sync(pushers["lab-c"])  # the same refused segment is not pushed again at once
    assert again.refusals == 1
    # Recorded and shown to the hub's operators, in both languages, and chained in the audit.
    with hub.client() as client:
        r = client.get("/api/v1/refusals", headers=bearer("HUB_OPS_TOKEN"))
        assert r.status_code == 200, r.text
        refusals = r.json()["refusals"]
        assert r.json() == client.get("/api/v1/refusals", headers=bearer("HUB_ADMIN_TOKEN")).json()
        assert client.get("/api/v1/refusals").status_code in (401, 403)
        page = client.get("/ui/refusals", params={"lang": "vi"}, headers=bearer("HUB_OPS_TOKEN"))
        assert page.status_code == 200 and "lab-c" in page.text
    reasons = sorted(row["reason"] for row in refusals)
    assert len(reasons) == 4 and "gap" in reasons and "edited" in reasons, reasons
    assert all(row["messages"]["vi"] and row["messages"]["en"] for row in refusals)
    audit_kinds = [
        row[0] for row in stored(postgres, dbname, "SELECT kind FROM hub_audit ORDER BY seq")
    ]
    assert audit_kinds.count("segment.refused") == 4
    assert audit_kinds.count("lab.enrolled") == 3
    assert audit_kinds.count("link.added") == 2
    verified = hub.cli("verify-audit")
    assert verified.returncode == 0, verified.stderr

    # -- search across labs -----------------------------------------------------------------
    with hub.client() as client:
        found = client.get("/api/v1/search", params={"serial": "B-Z-00"}).json()["items"]
        assert [(i["lab"], i["item_key"]) for i in found] == [("lab-b", "B1")]
        found = client.get("/api/v1/search", params={"type": "standard"}).json()["items"]
        assert {i["lab"] for i in found} == {"nmi", "lab-b", "lab-c"}
        found = client.get("/api/v1/search", params={"province": "Cần Thơ"}).json()["items"]
        assert {i["lab"] for i in found} == {"lab-c"}
        assert {i["item_type"] for i in found} == {"standard", "instrument"}
        overdue = client.get("/api/v1/search", params={"calibration": "overdue"}).json()
        assert [(i["lab"], i["item_key"]) for i in overdue["items"]] == [("lab-c", "C1")]

        # -- the traceability graph ---------------------------------------------------------
        graph = client.get("/api/v1/traceability", params={"lab": "lab-c", "standard": "C1"}).json()
        nodes = {n["key"]: n for n in graph["nodes"]}
        kinds = sorted(n["kind"] for n in graph["nodes"])
        assert kinds == ["kcdb_comparison", "standard", "standard", "standard"]
        states = {(link["from"], link["to"]): link["state"] for link in graph["links"]}
        by_standard = {
            (n["lab"], n["standard"]): key for key, n in nodes.items() if n["kind"] == "standard"
        }
        c1, b1, n1 = (
            by_standard[("lab-c", "C1")],
            by_standard[("lab-b", "B1")],
            by_standard[("nmi", "N1")],
        )
        assert states[(c1, b1)] == "expired"
        assert states[(b1, n1)] == "ok"
        assert nodes[n1]["national"] == "VN-DCV-1" and not nodes[n1]["breaks"]
        assert [state for (source, _), state in states.items() if source == n1] == ["ok"]
        svg = client.get(
            "/api/v1/traceability.svg", params={"lab": "lab-c", "standard": "C1", "lang": "vi"}
        )
        assert svg.status_code == 200 and svg.text.startswith("<svg")
        assert "hết hạn" in svg.text  # the expired link, named in Vietnamese

    # -- revocation -------------------------------------------------------------------------
    revoked = hub.cli("revoke", "--lab", "lab-b", "--reason", "accreditation withdrawn")
    assert revoked.returncode == 0, revoked.stderr
    lab_b.audit("after revocation")
    lab_b.checkpoint()
    stores["lab-b"].flush()
    state = sync(pushers["lab-b"])
    assert state.last_refusal is not None
    assert (state.last_refusal.status, state.last_refusal.reason) == (403, "revoked")
    assert state.hub_count == total
    listed = hub.cli("labs", "--json")
    labs = {row["id"]: row for row in json.loads(listed.stdout)}
    assert labs["lab-b"]["revoked_reason"] == "accreditation withdrawn"
    assert labs["lab-b"]["refusals"] == 1 and labs["lab-c"]["refusals"] == 1
    assert hub.cli("labs", lang="vi").stdout.count("thu hồi") >= 1
    with hub.client() as client:
        graph = client.get("/api/v1/traceability", params={"lab": "lab-c", "standard": "C1"})
        assert "revoked" in {link["state"] for link in graph.json()["links"]}
    hub.process.stop()
