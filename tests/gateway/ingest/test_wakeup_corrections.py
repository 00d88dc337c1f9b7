"""Ingest corrects the data messages of linked agents that one wake-up of its spooling task
takes all together (one ``Corrector.batches`` call): each message's spool entry carries its own
corrections, as correcting it alone gives them; a status message corrects what came before it
first; and should the joint call fail, each message is corrected alone — one that fails is
refused alone, dead-lettered and acknowledged, the others spooled."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from edge_agent.wire_batches import decode_data
from gateway.corrections.config import CorrectionsConfig
from gateway.corrections.corrector import Corrector
from gateway.corrections.instruments import Link
from gateway.ingest.entries import spool_entry
from tests.gateway.corrections.test_batch_path import _certificate
from tests.gateway.ingest.harness import (
    AGENT,
    ROOT,
    SITE,
    TS0,
    IngestRig,
    batch,
    reading,
    status,
)


def _corrector() -> Corrector:
    made = Corrector(CorrectionsConfig.model_validate({}), None)  # type: ignore[arg-type]
    links = [Link(1, SITE, AGENT, "dmm-1", "voltage", 1, 0, "S1", 0, None, "test", None)]
    made.install(links, [_certificate(1, "S1", 0.02)], {(SITE, AGENT, "dmm-1"): "S1"})
    return made


def _payloads() -> list[bytes]:
    return [
        batch(*(reading(10 * m + i, value=5.0 + 7.0 * i + m) for i in range(1 + m)), seq=m)
        for m in range(4)
    ]


def _alone(payload: bytes) -> dict[str, Any]:
    """The entry correcting this payload alone gives."""
    decoded = decode_data(payload, SITE, AGENT)
    entry, _, _ = spool_entry(_corrector(), SITE, AGENT, payload, decoded.rows, decoded.order)
    parsed: dict[str, Any] = orjson.loads(entry)
    return parsed


async def test_one_wakeups_messages_are_corrected_together_each_as_alone(tmp_path: Path) -> None:
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        rig.ingest.corrector = corrector = _corrector()
        calls: list[int] = []
        joint = corrector.batches
        corrector.batches = lambda items: calls.append(len(items)) or joint(items)  # type: ignore[method-assign]
        payloads = _payloads()
        for payload in payloads:  # delivered before ingest's task runs: one wake-up
            rig.deliver(f"{ROOT}/data", payload)
        await rig.settle()
        entries = await rig.new_entries()
        assert calls == [len(payloads)]
        assert entries == [_alone(payload) for payload in payloads]
        assert all("fixed" in entry for entry in entries)


async def test_a_failing_joint_call_corrects_each_alone_and_refuses_only_a_failing_one(
    tmp_path: Path,
) -> None:
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        rig.ingest.corrector = corrector = _corrector()
        alone = corrector.batch

        def joint(items: Any) -> Any:
            raise RuntimeError("joint correction broke")

        def one(site: str, agent: str, rows: Any, order: Any = None) -> Any:
            if len(rows) == 2:
                raise RuntimeError("this batch breaks the corrector")
            return alone(site, agent, rows, order)

        corrector.batches = joint  # type: ignore[method-assign]
        corrector.batch = one  # type: ignore[method-assign]
        payloads = _payloads()
        for payload in payloads:
            rig.deliver(f"{ROOT}/data", payload)
        await rig.settle()
        entries = await rig.new_entries()
        assert entries == [_alone(p) for n, p in enumerate(payloads) if n != 1]
        letters = [p for t, p in rig.link.published if t.endswith("/deadletter")]
        assert len(letters) == 1 and b"this batch breaks the corrector" in letters[0]
        assert rig.metrics.ingest_errors == 1
        assert len(rig.link.acked) == len(payloads)


async def test_a_joint_call_failing_late_counts_each_reading_once(tmp_path: Path) -> None:
    # It had corrected (and counted) every batch when it failed: the fallback corrects them
    # again, and the self-metric must not count them twice.
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        rig.ingest.corrector = corrector = _corrector()
        real = corrector.batches

        def joint(items: Any) -> Any:
            real(items)
            raise RuntimeError("broke after correcting")

        corrector.batches = joint  # type: ignore[method-assign]
        payloads = _payloads()
        for payload in payloads:
            rig.deliver(f"{ROOT}/data", payload)
        await rig.settle()
        assert await rig.new_entries() == [_alone(payload) for payload in payloads]
        assert corrector.corrected == sum(range(1, len(payloads) + 1))


@pytest.mark.parametrize("serial", ["S1", "S7"])
async def test_a_status_message_corrects_what_came_before_it_first(
    tmp_path: Path, serial: str
) -> None:
    """A birth message reporting another serial marks the readings after it, never those
    before it in the same wake-up."""
    async with IngestRig(tmp_path) as rig:
        assert rig.ingest is not None
        rig.ingest.corrector = _corrector()
        before, after = batch(reading(1), seq=1), batch(reading(2), seq=2)
        birth = status()
        birth = birth.replace(
            b'"model": "3458A"}', b'"model": "3458A", "serial": "%s"}' % serial.encode()
        )
        assert b'"serial": "%s"' % serial.encode() in birth
        rig.deliver(f"{ROOT}/data", before)
        rig.deliver(f"{ROOT}/status", birth)
        rig.deliver(f"{ROOT}/data", after)
        await rig.settle()
        first, second = await rig.new_entries()
        assert "fixed" in first  # corrected with the serial known before the birth message
        if serial == "S1":
            assert "fixed" in second
        else:
            assert "fixed" not in second and second["corrections"][0][5] == 4  # serial bit
        assert first["readings"][0]["ts"] == TS0 + 10**9
