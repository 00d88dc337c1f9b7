"""A notification is never silently lost: a CR/LF in a reason is delivered on one line (no header
injection, no exception from the mail library), and a failure nobody foresaw marks the message
failed in the outbox with an audit entry.

The alert comes from an instrument state the record store already holds (as an earlier gateway,
before the wire refused control characters, recorded it): the engine raises it at start."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from gateway.records.store import RecordStore
from tests.gateway.alerts.harness import SmtpReceiver, gateway_settings, set_secrets, wait_for
from tests.support.gateway import running_gateway
from tests.support.services import Mosquitto

REASON = "no reply\r\nBcc: everyone@elsewhere.example\r\n\r\nfake body"


def alerts(smtp: SmtpReceiver, **smtp_extra: Any) -> dict[str, Any]:
    return {
        "rules": [{"id": "instruments", "kind": "instrument_unavailable"}],
        "recipients": [{"id": "an", "name": "An", "email": "an@lab.example", "group_window_s": 0}],
        "policies": [{"id": "lab", "levels": [{"recipients": ["an"]}]}],
        "default_policy": "lab",
        "smtp": smtp.config(max_attempts=2, **smtp_extra),
    }


async def unavailable_instrument(records_path: Path, reason: str) -> None:
    """The record store of an earlier run: one instrument unavailable, with ``reason``."""
    records = RecordStore(records_path)
    await records.open()
    try:
        await records.run(
            lambda db: db.execute(
                "INSERT INTO instrument_states VALUES (?,?,?,?,?,?)",
                ("lab-1", "bench-1", "dmm-1", "unavailable", 1_790_000_000_000_000_000, reason),
            )
        )
    finally:
        await records.close()


async def outbox(records: RecordStore) -> list[dict[str, Any]]:
    return await records.query("SELECT medium, sent_ns, failed FROM alert_outbox ORDER BY id")


async def test_a_crlf_in_a_reason_is_delivered_on_one_line(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    with SmtpReceiver(tmp_path / "certs") as smtp:
        settings = gateway_settings(tmp_path, mosquitto, alerts(smtp))
        await unavailable_instrument(Path(settings["records"]["path"]), REASON)
        async with running_gateway(settings) as gateway:
            await wait_for(lambda: smtp.mails, what="the e-mail")

            async def marked() -> bool:
                rows = await outbox(gateway.records)
                return bool(rows) and all(r["sent_ns"] is not None for r in rows)

            for _ in range(100):
                if await marked():
                    break
                await asyncio.sleep(0.05)
            assert await marked()
    (mail,) = smtp.mails
    assert mail.recipients == ["an@lab.example"]  # the Bcc in the reason added nobody
    assert mail.message["Bcc"] is None
    subject = str(mail.message["Subject"])
    assert "no reply Bcc: everyone@elsewhere.example fake body" in subject
    assert "\n" not in subject and "\r" not in subject
    reason_lines = [line for line in mail.body.splitlines() if "no reply" in line]
    assert len(reason_lines) == 1 and "fake body" in reason_lines[0]


async def test_a_failure_the_sender_did_not_foresee_is_marked_and_audited(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_secrets(monkeypatch)
    with SmtpReceiver(tmp_path / "certs") as smtp:
        # smtplib encodes the AUTH login as ASCII: a UnicodeEncodeError, not an SMTPException.
        settings = gateway_settings(tmp_path, mosquitto, alerts(smtp, username="cảnh-báo"))
        await unavailable_instrument(Path(settings["records"]["path"]), "no reply")
        async with running_gateway(settings) as gateway:

            async def failed() -> list[dict[str, Any]]:
                return [r for r in await outbox(gateway.records) if r["failed"]]

            for _ in range(200):
                if await failed():
                    break
                await asyncio.sleep(0.05)
            (row,) = await failed()
            audit = await gateway.records.query(
                "SELECT subject, details FROM audit_log WHERE action='alert notification failed'"
            )
    assert not smtp.mails
    assert row["medium"] == "email" and row["failed"].startswith("UnicodeEncodeError")
    (entry,) = audit
    assert entry["subject"] == "recipient:an"
    assert json.loads(entry["details"])["reason"].startswith("UnicodeEncodeError")
