"""Creating a run: check a procedure against its agent config and the reference (its certificate
on the run date) and create the run in the bench's store (:func:`start_run`); and what a stored
run is taken up again with (its procedure, the instruments it uses). The runner
(:class:`calibration.runner.Runner`) does the work.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
from pathlib import Path

from calibration.agent_checks import check_against_agent, load_agent
from calibration.procedure import (
    LoadedProcedure,
    MeterReference,
    expired_problem,
    future_problem,
    parse_procedure,
)
from calibration.reference import resolve
from calibration.state import RunRow, RunStore
from core.clock import Clock
from core.errors import ConfigError


def new_run_id(clock: Clock) -> str:
    """``YYYYMMDD-HHMMSS-xxxx`` (UTC, 4 random hex digits): a topic level and a tag value."""
    moment = dt.datetime.fromtimestamp(clock.now_ns() / 1e9, tz=dt.UTC)
    return moment.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def instruments_of(loaded: LoadedProcedure) -> list[tuple[str, str]]:
    """(instrument, role) of every instrument the procedure uses, UUT first."""
    procedure = loaded.procedure
    out = [(procedure.uut.instrument, "uut")]
    if procedure.source is not None:
        out.append((procedure.source.instrument, "source"))
    if isinstance(procedure.reference, MeterReference):
        out.append((procedure.reference.instrument, "reference"))
    for ref in (procedure.environment.temperature, procedure.environment.humidity):
        if ref is not None:
            out.append((ref.instrument, "environment"))
    seen: dict[str, str] = {}
    for name, role in out:
        seen.setdefault(name, role)
    return list(seen.items())


async def start_run(
    loaded: LoadedProcedure,
    store: RunStore,
    clock: Clock,
    *,
    operator: str,
    declared: dict[str, str],
    language: str = "en",
    run_id: str | None = None,
) -> str:
    """Check everything and create the run; returns its id. Raises ConfigError (the procedure,
    the agent config, the reference — each problem with file, line and field)."""
    _, agent = load_agent(loaded)
    problems = check_against_agent(loaded, agent)
    if problems:
        raise ConfigError(problems)
    moment = dt.datetime.fromtimestamp(clock.now_ns() / 1e9, tz=dt.UTC)
    reference = await asyncio.to_thread(resolve, loaded, moment)
    notes: list[str] = list(reference.notes)
    certificate = reference.certificate
    if certificate is not None and certificate.calibration_date > moment.date():
        raise ConfigError(
            [
                future_problem(
                    loaded,
                    ("reference",),
                    certificate.number,
                    certificate.calibration_date,
                    moment.date(),
                )
            ]
        )
    if certificate is not None and certificate.expired:
        assert certificate.due_date is not None
        loc = ("reference", "certificate" if certificate.source == "procedure" else "dcc")
        if certificate.source == "registry":
            loc = ("reference", "id")
        problem = expired_problem(
            loaded, loc, certificate.number, certificate.due_date, moment.date()
        )
        if problem is not None:
            raise ConfigError([problem])
        notes.append(
            f"the reference's certificate {certificate.number} expired on "
            f"{certificate.due_date.isoformat()}; used because the procedure sets "
            "allow_expired_reference"
        )
    run = run_id or new_run_id(clock)
    await store.create(
        {
            "run": run,
            "procedure_path": str(loaded.path.resolve()),
            "procedure_sha256": loaded.sha256,
            "procedure_text": loaded.text,
            "procedure_id": loaded.procedure.id,
            "operator": operator,
            "language": language,
            "declared": declared,
            "reference": reference.model_dump(mode="json"),
            "run_date": moment.date().isoformat(),
            "started_ns": clock.now_ns(),
            "notes": notes,
            "points_total": len(loaded.procedure.points),
        }
    )
    return run


def loaded_of(row: RunRow) -> LoadedProcedure:
    """The procedure a run was started with (its stored text, checked against its hash)."""
    return parse_procedure(Path(row.procedure_path), row.procedure_text.encode("utf-8"))
