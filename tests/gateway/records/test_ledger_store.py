"""The record store's ledger through the real RecordStore on real SQLite files: every record
change is chained in its own transaction, checkpoints are signed and kept beside the store,
several writers share one ledger, pre-existing stores are imported, keys are handled as the
issue asks."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.errors import ConfigError, StoreError
from gateway.records.bodies import append_audit
from gateway.records.calibrations import insert as insert_calibration
from gateway.records.chain import LedgerSettings
from gateway.records.config import RecordsConfig
from gateway.records.keys import checkpoint_lines, trusted_keys
from gateway.records.store import RecordStore
from gateway.records.verify import RecordsReport, verify_file, verify_records
from gateway.standards.models import CertificateSpec, StandardSpec
from gateway.standards.registry import Registry
from ledger import CheckpointFile, PublicKey, SigningKey
from metrology.certificate.record import record_sha256
from tests.support.calibration_record import sample_record

STANDARD = StandardSpec.model_validate(
    {"id": "Z10-01", "kind": "dc_voltage", "nominal": 10, "unit": "V", "owner_lab": "VMI"}
)
CERTIFICATE = CertificateSpec.model_validate(
    {
        "number": "VMI-1",
        "issuer": "VMI",
        "calibration_date": "2025-03-10",
        "value": 10.0000081,
        "expanded_uncertainty": 4e-7,
        "coverage_factor": 2,
    }
)


def records_config(tmp_path: Path, **ledger: object) -> RecordsConfig:
    return RecordsConfig.model_validate({"path": tmp_path / "records.db", "ledger": ledger})


async def opened(config: RecordsConfig, **settings: bool) -> RecordStore:
    store = RecordStore(config.path, LedgerSettings.of(config, "lab-1", "gw-1", **settings))
    await store.open()
    return store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[RecordStore]:
    store = await opened(records_config(tmp_path))
    try:
        yield store
    finally:
        await store.close()


def verified(config: RecordsConfig) -> RecordsReport:
    return verify_file(config)


def raw(config: RecordsConfig) -> sqlite3.Connection:
    return sqlite3.connect(config.path, isolation_level=None)


async def test_a_new_store_starts_its_ledger_signs_it_and_keeps_the_key_private(
    tmp_path: Path,
) -> None:
    config = records_config(tmp_path)
    store = await opened(config)
    await store.close()
    key_mode = stat.S_IMODE(os.stat(config.key_path()).st_mode)
    assert key_mode == 0o600
    assert stat.S_IMODE(os.stat(config.public_key_path()).st_mode) == 0o644
    key = SigningKey.load(config.key_path())
    assert PublicKey.from_text(config.public_key_path().read_bytes()) == key.public_key
    checkpoints = CheckpointFile(config.checkpoints_path()).read()
    assert checkpoints and checkpoints[-1].key == key.key_id
    report = verified(config)
    assert report.ok and report.ledger == "lab-1.gw-1" and report.entries == 1
    assert report.signed_count == 1 and report.unsigned == 0
    with raw(config) as db:
        kind, body = db.execute("SELECT kind, body_json FROM ledger").fetchone()
    assert kind == "records.start" and '"format":"etalon-records/1"' in body
    # The key is never shown: not in the ledger's repr, not in the store's.
    assert key.export_pem().decode() not in repr(store.ledger.key)


async def test_every_audit_row_is_chained_in_its_own_transaction(
    store: RecordStore, tmp_path: Path
) -> None:
    await store.audit("alice", "note", "thing:1", {"value": 1.5, "where": "phòng A"})

    def fails(db: sqlite3.Connection) -> None:
        db.execute("BEGIN IMMEDIATE")
        append_audit(db, "bob", "note", "thing:2", {"n": 2})
        raise ValueError("the record itself failed")

    with pytest.raises(StoreError):
        await store.run(fails)
    rows = await store.query("SELECT actor, ledger_seq FROM audit_log ORDER BY id")
    entries = await store.query("SELECT seq, kind, subject, actor FROM ledger ORDER BY seq")
    assert [r["actor"] for r in rows] == ["alice"]  # bob's row and entry went together
    assert entries[-1] == {"seq": rows[0]["ledger_seq"], "kind": "audit", "subject": "thing:1",
                           "actor": "alice"}  # fmt: skip
    with pytest.raises(StoreError, match="inside the transaction"):
        await store.run(lambda db: append_audit(db, "x", "y", "z", {}))
    await store.audit("carol", "note", "thing:3", {})
    assert store.ledger.head is not None and store.ledger.head.count == 3


async def test_standards_and_certificates_are_chained_with_their_rows(
    store: RecordStore, tmp_path: Path
) -> None:
    registry = Registry(store, tmp_path / "certificates", "lab-1")
    await registry.add_standard(STANDARD, "alice")
    certificate_id = await registry.add_certificate("Z10-01", CERTIFICATE, "alice")
    kinds = await store.query("SELECT kind, subject FROM ledger WHERE seq > 1 ORDER BY seq")
    assert [(k["kind"], k["subject"]) for k in kinds] == [
        ("audit", "standard:Z10-01"),
        ("standard", "standard:Z10-01"),
        ("audit", f"standard:Z10-01/certificate:{certificate_id}"),
        ("certificate", f"certificate:{certificate_id}"),
    ]
    body = (await store.query("SELECT body_json FROM ledger WHERE kind='certificate'"))[0][
        "body_json"
    ]
    assert '"value":"10.0000081"' in body and '"value_text":"10.0000081"' in body
    await store.close()
    config = records_config(tmp_path)
    assert verified(config).ok
    with raw(config) as db:  # the live row changed behind the ledger's back
        db.execute("UPDATE certificates SET value=10.1 WHERE id=?", (certificate_id,))
    report = verified(config)
    assert not report.ok and report.finding is not None
    assert (report.finding.kind, report.finding.table) == ("edited", "certificates")
    assert "certificates" in report.finding.text("vi")


async def test_a_calibration_record_is_chained_and_a_change_behind_the_ledger_is_found(
    store: RecordStore, tmp_path: Path
) -> None:
    record = sample_record()

    def keep(db: sqlite3.Connection) -> bool:
        db.execute("BEGIN IMMEDIATE")
        new = insert_calibration(db, record, record_sha256(record), "hanoi")
        db.execute("COMMIT")
        return new

    assert await store.run(keep) and not await store.run(keep)  # stored once
    entries = await store.query("SELECT kind, subject FROM ledger WHERE seq > 1 ORDER BY seq")
    subject = f"calibration:{record.run}"
    assert [(e["kind"], e["subject"]) for e in entries] == [
        ("calibration.result", subject),
        ("audit", subject),
    ]
    body = (await store.query("SELECT body_json FROM ledger WHERE kind='calibration.result'"))[0]
    assert record_sha256(record) in body["body_json"] and '"decision":' in body["body_json"]
    await store.close()
    config = records_config(tmp_path)
    clean = verified(config)
    assert clean.ok and "calibrations" in clean.tables, clean.summary()
    pristine = config.path.read_bytes()

    tampering = {
        "edited": "UPDATE calibrations SET decision='pass'",
        "deleted": "DELETE FROM calibrations",
        "inserted": "INSERT INTO calibrations SELECT 'forged-run', site, agent, received_ns, "
        "started_ns, finished_ns, procedure_id, uut_serial, decision, points, failed_points, "
        "sha256, record FROM calibrations",
    }
    for kind, sql in tampering.items():
        config.path.write_bytes(pristine)
        db = raw(config)
        db.execute("DROP TRIGGER calibrations_no_update")
        db.execute("DROP TRIGGER calibrations_no_delete")
        db.execute(sql)
        db.close()  # the last connection: its write-ahead log goes into the file
        report = verified(config)
        assert report.finding is not None, kind
        assert (report.finding.kind, report.finding.table) == (kind, "calibrations"), report
        key = "forged-run" if kind == "inserted" else record.run
        assert report.finding.key == key and key in report.finding.text("vi")


async def test_a_second_writer_signs_its_work_and_the_first_adopts_it(tmp_path: Path) -> None:
    config = records_config(tmp_path)
    gateway = await opened(config)
    found: list[object] = []
    gateway.ledger.on_finding.append(found.append)
    try:
        await gateway.audit("gateway", "agent online", "lab-1/a", {})
        command = await opened(config, sign_each_session=True)  # etalon standards, say
        await command.audit("cli:nguyen", "standard.add", "standard:X", {})
        await command.close()
        await gateway.audit("gateway", "agent offline", "lab-1/a", {})
        assert found == []
        assert gateway.ledger.head is not None and gateway.ledger.head.count == 4
    finally:
        await gateway.close()
    assert verified(config).ok


async def test_an_entry_slipped_into_the_ledger_is_found_by_the_writer_and_recorded(
    tmp_path: Path,
) -> None:
    config = records_config(tmp_path)
    gateway = await opened(config)
    found: list[object] = []
    gateway.ledger.on_finding.append(found.append)
    try:
        await gateway.audit("gateway", "agent online", "lab-1/a", {})
        # A well-formed entry appended by someone who can compute hashes but has no key.
        head = gateway.ledger.head
        assert head is not None
        from ledger import Entry

        forged = Entry.create(
            head.count + 1, head.ts_ns + 1, "audit", "x", "mallory", {}, head.hash
        )
        with raw(config) as db:
            db.execute("INSERT INTO ledger VALUES (?,?,?,?,?,?,?,?)", tuple(forged))
        await gateway.audit("gateway", "agent offline", "lab-1/a", {})
    finally:
        await gateway.close()
    assert len(found) == 1 and found[0].code == "records.moved.unsigned"
    with raw(config) as db:
        kinds = [row[0] for row in db.execute("SELECT kind FROM ledger ORDER BY seq")]
    assert kinds[-3:] == ["audit", "records.integrity", "audit"]


async def test_an_existing_store_is_imported_into_a_new_ledger(tmp_path: Path) -> None:
    config = records_config(tmp_path)
    # A record store of the previous release: its tables, no ledger.
    from gateway.records.store import MIGRATIONS

    with raw(config) as db:
        db.execute(
            "CREATE TABLE migrations (feature TEXT NOT NULL, step INTEGER NOT NULL, "
            "applied_ns INTEGER NOT NULL, PRIMARY KEY (feature, step))"
        )
        for feature in ("core", "standards", "alerts", "calibrations"):
            db.executescript(MIGRATIONS[feature][0])
            db.execute("INSERT INTO migrations VALUES (?, 0, 0)", (feature,))
        db.execute(
            "INSERT INTO calibrations VALUES ('run-1', 'lab-1', 'bench', 1, 1, 2, 'dmm-dcv', "
            "'MY1', 'pass', 3, 0, ?, '{}')",
            ("0" * 64,),
        )
        for index in range(3):
            db.execute(
                "INSERT INTO audit_log(ts_ns, actor, action, subject, details) VALUES (?,?,?,?,?)",
                (1_700_000_000_000_000_000 + index, "old", "agent online", f"s/a{index}", "{}"),
            )
        db.execute(
            "INSERT INTO standards(id, kind, nominal, unit, owner_lab, created_ns, updated_ns) "
            "VALUES ('R1', 'resistance', 100.0, 'Ω', 'VMI', 1, 1)"
        )
    store = await opened(config)
    await store.close()
    report = verified(config)
    assert report.ok, report.summary()
    with raw(config) as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM ledger ORDER BY seq")]
        start = db.execute("SELECT body_json FROM ledger WHERE seq=1").fetchone()[0]
        links = db.execute("SELECT COUNT(*) FROM audit_log WHERE ledger_seq IS NULL").fetchone()
    assert kinds == ["records.start", *["audit.imported"] * 3, "standard", "calibration.result"]
    assert '"audit_rows":3' in start and '"calibrations":1' in start and links == (0,)
    with raw(config) as db:  # an imported row edited afterwards is found
        db.execute("DROP TRIGGER audit_log_no_update")
        db.execute("UPDATE audit_log SET actor='mallory' WHERE id=2")
    report = verified(config)
    assert report.finding is not None
    assert (report.finding.kind, report.finding.table, report.finding.key) == (
        "edited",
        "audit_log",
        "2",
    )


async def test_key_rotation_is_recorded_and_verifies_from_either_key(tmp_path: Path) -> None:
    config = records_config(tmp_path)
    store = await opened(config, sign_each_session=True)
    old = store.ledger.key
    assert old is not None
    new = SigningKey.generate()
    try:
        await store.audit("alice", "note", "x", {})

        def rotate(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            store.ledger.rotate(db, new, "alice")
            db.execute("COMMIT")

        await store.run(rotate)
        assert store.ledger.key == new
        await store.audit("alice", "after", "x", {})
    finally:
        await store.close()
    lines = checkpoint_lines(config)
    assert CheckpointFile(config.checkpoints_path()).read()[-1].key == new.key_id
    for anchor in (old.public_key, new.public_key):
        with raw(config) as db:
            report = verify_records(db, lines, [anchor])
        assert report.ok, report.summary()
        assert report.chain is not None and len(report.chain.keys) == 2


async def test_a_key_file_others_may_read_is_refused_with_the_remedy(tmp_path: Path) -> None:
    config = records_config(tmp_path)
    store = await opened(config)
    await store.close()
    os.chmod(config.key_path(), 0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        await opened(config)


async def test_the_key_can_come_from_the_environment_and_must_match_the_ledger(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey.generate()
    monkeypatch.setenv("LEDGER_KEY", key.export_pem().decode())
    config = records_config(tmp_path, key_env="LEDGER_KEY")
    store = await opened(config)
    await store.audit("a", "b", "c", {})
    await store.close()
    assert not config.key_path().exists()
    assert CheckpointFile(config.checkpoints_path()).read()[-1].key == key.key_id
    report = verify_file(config, [key.public_key])
    assert report.ok
    monkeypatch.setenv("LEDGER_KEY", SigningKey.generate().export_pem().decode())
    with pytest.raises(ConfigError, match="key in force"):
        await opened(config)


def test_ledger_config_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="trusted_keys\\[0\\]"):
        records_config(tmp_path, trusted_keys=["not a key"])
    with pytest.raises(ValueError, match="key_file or key_env"):
        records_config(tmp_path, key_env="X", key_file=str(tmp_path / "k"))
    with pytest.raises(ValueError, match="id"):
        records_config(tmp_path, id="no spaces allowed")


async def test_a_pinned_key_that_never_signed_makes_the_checkpoints_untrusted(
    tmp_path: Path,
) -> None:
    config = records_config(tmp_path, trusted_keys=[SigningKey.generate().public_key.to_text()])
    store = await opened(config)
    await store.close()
    assert [key.key_id for key in trusted_keys(config)] != [store.ledger.key.key_id]  # type: ignore[union-attr]
    report = verify_file(config)
    assert not report.ok and report.finding is not None
    assert report.finding.kind == "checkpoint_forged"


def test_records_verify_exit_statuses_without_tampering(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """0 verified (and --json is the report), 1 no store or a bad config (file, field), 2
    usage; 3 (tampered) is tests/gateway/records/test_tampering.py's."""
    import json

    import yaml

    from app.cli import main

    config = tmp_path / "gateway.yaml"
    settings = {"site": "lab-1", "records": {"path": str(tmp_path / "records.db")}}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    assert main(["records", "verify", "-c", str(config)]) == 1
    assert "no record store" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(settings | {"records": {"path": "x", "ledger": {
        "checkpoint_every_entries": 0}}}), encoding="utf-8")  # fmt: skip
    assert main(["--lang", "vi", "records", "verify", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.yaml" in err and "checkpoint_every_entries" in err, err
    assert main(["records", "verify"]) == 2
    capsys.readouterr()

    async def make() -> None:
        store = await opened(records_config(tmp_path))
        await store.close()

    import asyncio

    asyncio.run(make())
    assert main(["records", "verify", "-c", str(config), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] and report["ledger"] == "lab-1.gw-1" and report["entries"] == 1
    assert main(["--lang", "vi", "records", "verify", "-c", str(config)]) == 0
    assert "lab-1.gw-1" in capsys.readouterr().out
