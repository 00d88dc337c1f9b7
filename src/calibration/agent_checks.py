"""A calibration procedure checked against the agent config it names: every instrument and
channel exists, every set-point lies within the limits the instrument config declares for that
target (``WriteTarget.check``, before anything could be sent), every source declares a safe
state, and the bench publishes under an MQTT identity of its own. Problems are
``FILE:LINE: field: reason`` (the procedure's file format is :mod:`calibration.procedure`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from calibration.procedure import ChannelRef, LoadedProcedure, MeterReference, Procedure
from core.config_loader import load_yaml, validation_problems
from core.errors import ConfigError, WriteRefused
from core.mqtt import check_certificate_identity
from drivers.setpoints import SafeValue, SetValue, WriteTarget
from edge_agent.config import AgentConfig

_Member = TypeVar("_Member")


def load_agent(loaded: LoadedProcedure) -> tuple[Path, AgentConfig]:
    """The agent config the procedure names; raises ConfigError (the agent's own problems, or
    the procedure's ``agent`` field when the file is missing)."""
    path = loaded.resolve(loaded.procedure.agent)
    if not path.is_file():
        raise ConfigError([f"{loaded.where(('agent',))}: no agent config at {path}"])
    data, root = load_yaml(path)
    try:
        return path, AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(validation_problems(path, root, exc)) from None


def safe_state_of(instrument: Any) -> list[Any]:
    """The safe state an instrument config declares (its own or its profile's), or []."""
    resolved = getattr(instrument, "resolved_safe_state", None)
    if callable(resolved):
        return list(resolved())
    return list(getattr(instrument, "safe_state", None) or [])


def targets_of(instrument: Any) -> dict[str, WriteTarget]:
    """The writable targets of an instrument config ({} for one that cannot be written)."""
    method = getattr(instrument, "write_targets", None)
    return dict(method()) if callable(method) else {}


def _channels(instrument: Any) -> dict[str, Any]:
    return {c.name: c for c in getattr(instrument, "channels", [])}


def check_against_agent(loaded: LoadedProcedure, agent: AgentConfig) -> list[str]:
    """Every problem of the procedure against the agent config, ``FILE:LINE: field: reason``."""
    procedure = loaded.procedure
    instruments = {i.name: i for i in agent.instruments}
    problems: list[str] = []

    def problem(loc: Sequence[str | int], reason: str) -> None:
        problems.append(f"{loaded.where(loc)}: {reason}")

    def instrument(loc: Sequence[str | int], name: str) -> Any | None:
        found = instruments.get(name)
        if found is None:
            known = ", ".join(sorted(instruments))
            problem(loc, f"no instrument {name!r} in the agent config (it has {known})")
        elif not getattr(found, "enabled", True):
            problem(loc, f"instrument {name!r} is disabled in the agent config")
            return None
        return found

    def member(
        loc: Sequence[str | int],
        config: Any,
        members: Mapping[str, _Member],
        name: str,
        lacks: str,
        listing: str,
    ) -> _Member | None:
        """``members[name]``; else None and a problem listing what ``config`` has instead."""
        found = members.get(name)
        if found is None:
            known = ", ".join(sorted(members)) or "none"
            problem(loc, f"instrument {config.name!r} {lacks} {name!r} ({listing}{known})")
        return found

    def channel(loc: Sequence[str | int], config: Any, name: str) -> Any | None:
        return member(loc, config, _channels(config), name, "has no channel", "it has ")

    def need_target(loc: Sequence[str | int], config: Any, target: str) -> WriteTarget | None:
        targets = targets_of(config)
        return member(loc, config, targets, target, "declares no writable target", "targets: ")

    def target_value(
        loc: Sequence[str | int], config: Any, target: str, value: object
    ) -> WriteTarget | None:
        found = need_target(loc, config, target)
        if found is None:
            return None
        try:
            found.check(value)
        except WriteRefused as exc:
            # At check time nothing is ever sent: the driver's wording says so for a write.
            problem(loc, f"{config.name}/{target}: {exc.reason.removesuffix('; nothing was sent')}")
        return found

    def setup(loc: tuple[str, ...], config: Any, values: Mapping[str, SetValue]) -> None:
        for target, value in values.items():
            target_value((*loc, target), config, target, value)

    uut = instrument(("uut", "instrument"), procedure.uut.instrument)
    if uut is not None:
        found = channel(("uut", "channel"), uut, procedure.uut.channel)
        if found is not None and found.unit != procedure.uut.unit:
            problem(
                ("uut", "unit"),
                f"the channel {uut.name}/{found.name} reads {found.unit!r}, not "
                f"{procedure.uut.unit!r}",
            )
        setup(("uut", "setup"), uut, procedure.uut.setup)
        if procedure.uut.range_target is not None and need_target(
            ("uut", "range_target"), uut, procedure.uut.range_target
        ):
            for index, point in enumerate(procedure.points):
                if point.range is None:
                    problem(("points", index), "the UUT's range_target needs each range")
                else:
                    target_value(
                        ("points", index, "range"), uut, procedure.uut.range_target, point.range
                    )
    reference = procedure.reference
    if isinstance(reference, MeterReference):
        meter = instrument(("reference", "instrument"), reference.instrument)
        if meter is not None:
            found = channel(("reference", "channel"), meter, reference.channel)
            if found is not None and found.unit != procedure.uut.unit:
                problem(
                    ("reference", "channel"),
                    f"the channel {meter.name}/{found.name} reads {found.unit!r}, the UUT "
                    f"{procedure.uut.unit!r}",
                )
            setup(("reference", "setup"), meter, reference.setup)
            if reference.range_target is not None and need_target(
                ("reference", "range_target"), meter, reference.range_target
            ):
                for index, point in enumerate(procedure.points):
                    if point.range is not None:
                        target_value(
                            ("points", index, "range"), meter, reference.range_target, point.range
                        )
    source_spec = procedure.source
    if source_spec is not None:
        source = instrument(("source", "instrument"), source_spec.instrument)
        if source is not None:
            if not safe_state_of(source):
                problem(
                    ("source", "instrument"),
                    f"instrument {source.name!r} declares no safe_state: a source must have one "
                    "(e.g. its output off)",
                )
            setup(("source", "setup"), source, source_spec.setup)
            if need_target(("source", "level"), source, source_spec.level):
                for index, point in enumerate(procedure.points):
                    target_value(
                        ("points", index, "nominal"), source, source_spec.level, point.nominal
                    )
            if source_spec.range_target is not None and need_target(
                ("source", "range_target"), source, source_spec.range_target
            ):
                for index, point in enumerate(procedure.points):
                    if point.range is None:
                        problem(("points", index), "the source's range_target needs each range")
                    else:
                        target_value(
                            ("points", index, "range"),
                            source,
                            source_spec.range_target,
                            point.range,
                        )
            if source_spec.output is not None:
                output = need_target(("source", "output"), source, source_spec.output)
                if output is not None and output.kind != "bool":
                    problem(("source", "output"), f"target {output.name!r} is not on/off")
            for step in safe_state_of(source):
                if isinstance(step, SafeValue) and step.target not in targets_of(source):
                    problem(("source", "instrument"), f"safe_state names {step.target!r}")
    environment = procedure.environment
    for quantity in ("temperature", "humidity"):
        ref: ChannelRef | None = getattr(environment, quantity)
        if ref is None:
            continue
        config = instrument(("environment", quantity, "instrument"), ref.instrument)
        if config is not None:
            channel(("environment", quantity, "channel"), config, ref.channel)
    identity = bench_identity_problem(procedure, agent)
    if identity is not None:
        loc, reason = identity
        problem(loc, reason)
    return problems


def bench_identity_problem(
    procedure: Procedure, agent: AgentConfig
) -> tuple[tuple[str, ...], str] | None:
    """Where and why the bench's MQTT identity is not its own, if it is not.

    With client certificates the broker knows a client by its certificate's CN, and the ACL lets
    it publish only under its own topics: the bench, which publishes as ``SITE/PUBLISHER``
    (default ``SITE/AGENT-cal``), needs a certificate of that name. The agent's certificate would
    have every reading and the record dropped by the broker (and, as the client id is the CN,
    would take the agent's session away)."""
    publisher = procedure.publish.agent or f"{agent.id}-cal"
    expected = f"{agent.site}/{publisher}"
    hint = f"etalon pki issue agent --site {agent.site} --id {publisher}"
    given = procedure.publish.mqtt
    if given is None:
        mqtt = agent.mqtt
        if mqtt.tls is None or mqtt.tls.cert_file is None or mqtt.username is not None:
            return None
        return (
            ("publish",),
            f"the agent config's mqtt has the agent's own certificate ({agent.site}/{agent.id}) "
            f"but the bench publishes as {expected!r}: the broker's ACL would drop the run. Make "
            f"the bench a certificate ({hint}) and give publish.mqtt (the agent's mqtt with the "
            "bench's tls.cert_file and tls.key_file)",
        )
    try:
        check_certificate_identity(given, expected, hint)
    except ValueError as exc:
        return ("publish", "mqtt", "tls", "cert_file"), str(exc).removeprefix(
            "mqtt.tls.cert_file: "
        )
    return None
