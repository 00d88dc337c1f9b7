"""The calibration record of a completed run, built from what the bench's store holds.

The model is :class:`metrology.certificate.record.CalibrationRecord` (shared with the gateway,
which receives it, checks its hash and serves it); this module only gathers the run's stored
parts into it: who, when, where, the procedure and its hash, the UUT as declared and as it
identified itself at the start and the end, the other instruments, the reference and its
certificate, the environment over the run, every point, every write, the notes, the decision.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Literal

from calibration.procedure import LoadedProcedure
from calibration.reference import ResolvedReference
from calibration.state import RunRow
from edge_agent import __version__
from edge_agent.config import AgentConfig
from metrology._common import from_attributes
from metrology.certificate.record import (
    CalibrationRecord,
    EnvironmentStats,
    InstrumentUsed,
    PointResult,
    ProcedureInfo,
    UnitUnderTest,
    WriteEntry,
    overall_decision,
)


def run_environment(points: list[PointResult]) -> tuple[EnvironmentStats, ...]:
    """Each environment quantity over the whole run (means weighted by their counts)."""
    out = []
    for quantity in ("temperature", "humidity"):
        stats = [e for p in points for e in p.environment if e.quantity == quantity]
        if not stats:
            continue
        n = sum(s.n for s in stats)
        out.append(
            EnvironmentStats(
                quantity=quantity,
                instrument=stats[0].instrument,
                channel=stats[0].channel,
                unit=stats[0].unit,
                mean=math.fsum(s.mean * s.n for s in stats) / n,
                minimum=min(s.minimum for s in stats),
                maximum=max(s.maximum for s in stats),
                n=n,
            )
        )
    return tuple(out)


def build_record(
    row: RunRow,
    loaded: LoadedProcedure,
    agent: AgentConfig,
    reference: ResolvedReference,
    points: list[PointResult],
    writes: list[WriteEntry],
    *,
    finished_ns: int,
    publisher: str,
) -> CalibrationRecord:
    """The record of a run whose points are all stored (see the module doc)."""
    procedure = loaded.procedure
    uut_instrument = next(i for i in agent.instruments if i.name == procedure.uut.instrument)
    identity = row.identity_start or {}
    instruments = tuple(
        InstrumentUsed(
            role=item["role"],
            name=item["name"],
            protocol=str(item.get("protocol", "?")),
            identity={str(k): str(v) for k, v in (item.get("identity") or {}).items() if v},
        )
        for item in row.instruments
    )
    language: Literal["en", "vi"] = "vi" if row.language == "vi" else "en"
    ordered = tuple(points)
    return CalibrationRecord(
        run=row.run,
        site=agent.site,
        agent=publisher,
        bench_agent=agent.id,
        operator=row.operator,
        started_ns=row.started_ns,
        finished_ns=finished_ns,
        run_date=dt.date.fromisoformat(row.run_date),
        language=language,
        laboratory=procedure.laboratory,
        customer=procedure.customer,
        procedure=from_attributes(ProcedureInfo, procedure, sha256=loaded.sha256, text=loaded.text),
        uut=from_attributes(
            UnitUnderTest,
            procedure.uut,
            instrument=uut_instrument.name,
            declared=dict(row.declared),
            identity_start=identity,
            identity_end=row.identity_end if row.identity_end is not None else identity,
        ),
        instruments=instruments,
        reference=reference.info(),
        decision_rule=procedure.decision_rule,
        coverage_probability=procedure.coverage_probability,
        points=ordered,
        environment=run_environment(points),
        decision=overall_decision(ordered),
        writes=tuple(writes),
        notes=tuple(row.notes),
        software=f"etalon {__version__}",
    )
