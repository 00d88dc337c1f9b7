"""The procedure half of ``etalon check``: a procedure file checked by itself, against the
agent config it names, and against its reference (its certificate's dates; a standard of the
gateway's registry, asked when the registry answers).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from calibration import messages  # noqa: F401 - registers the messages
from calibration.agent_checks import check_against_agent, load_agent
from calibration.procedure import (
    LoadedProcedure,
    MeterReference,
    StandardReference,
    expired_problem,
    load_procedure,
)
from calibration.reference import RegistryUnavailable, fetch_standard, resolve, resolve_standard
from core.errors import ConfigError
from core.i18n import t


def check_procedure(path: Path, lang: str = "en") -> tuple[list[str], list[str]]:
    """Every problem of a procedure file (``FILE:LINE: field: reason``) and the notes to print
    (a registry that could not be asked). Offline, a standard cannot be checked: that is a note,
    not a problem; the run itself refuses to start without it."""
    try:
        loaded = load_procedure(path)
        _, agent = load_agent(loaded)
    except ConfigError as exc:
        return exc.problems, []
    problems = check_against_agent(loaded, agent)
    notes: list[str] = []
    today = dt.datetime.now(dt.UTC)
    reference = loaded.procedure.reference
    if isinstance(reference, MeterReference):
        try:
            resolved = resolve(loaded, today)
        except ConfigError as exc:
            problems += exc.problems
        else:
            certificate = resolved.certificate
            if certificate is not None and certificate.expired and certificate.due_date:
                loc: tuple[str, ...] = ("reference", "certificate", "due_date")
                if reference.certificate is None:
                    loc = ("reference", "dcc")
                found = expired_problem(
                    loaded, loc, certificate.number, certificate.due_date, today.date()
                )
                if found:
                    problems.append(found)
    else:
        problems += _check_standard(loaded, reference, today, notes, lang)
    return problems, notes


def _check_standard(
    loaded: LoadedProcedure,
    reference: StandardReference,
    today: dt.datetime,
    notes: list[str],
    lang: str,
) -> list[str]:
    where = loaded.where(("reference", "id"))
    try:
        answer = fetch_standard(reference)
    except RegistryUnavailable as exc:
        notes.append(t("calibrate.offline_standard", lang, where=where, reason=str(exc)))
        return []
    if answer is None:
        return [
            f"{where}: the registry at {reference.gateway.url} has no standard {reference.id!r}"
        ]
    try:
        resolved = resolve_standard(reference, answer, loaded.procedure.uut.unit, today)
    except (ValueError, KeyError, TypeError) as exc:
        return [f"{where}: {exc}"]
    problems = []
    certificate = resolved.certificate
    if certificate is not None and certificate.expired and certificate.due_date:
        found = expired_problem(
            loaded, ("reference", "id"), certificate.number, certificate.due_date, today.date()
        )
        if found:
            problems.append(found)
    nominal = resolved.nominal
    if nominal is not None:
        for index, point in enumerate(loaded.procedure.points):
            if abs(point.nominal - nominal) > 1e-3 * max(abs(nominal), 1e-12):
                problems.append(
                    f"{loaded.where(('points', index, 'nominal'))}: the standard "
                    f"{reference.id} is a {nominal:g} {resolved.unit} standard, not "
                    f"{point.nominal:g}"
                )
    return problems
