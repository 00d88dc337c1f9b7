"""The wire format of calibration records (schema version 1), beside :mod:`edge_agent.wire`.

Kept apart so that an agent that never runs a calibration does not import the metrology
models a record is made of. Documented in ``docs/wire-format.md``.
"""

from __future__ import annotations

import json
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import PayloadError
from edge_agent.wire import SCHEMA_VERSION, WireName
from metrology.certificate.record import (
    CalibrationRecord,
    canonical_bytes,
    load_record,
    record_sha256,
)


class CalibrationMessage(BaseModel):
    """A completed calibration run on ``{prefix}/v1/{site}/{agent}/calibrations`` (QoS 1, not
    retained): the record (:class:`metrology.certificate.record.CalibrationRecord`) with the
    SHA-256 of its canonical bytes. The gateway keeps one record per run: a redelivery with the
    same hash is taken as a duplicate, another record for a stored run is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_: Literal[1] = Field(1, alias="schema")
    site: WireName
    agent: WireName
    run: WireName
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    record: CalibrationRecord


def encode_calibration(record: CalibrationRecord) -> bytes:
    """The message of a record: its canonical bytes embedded as they are."""
    head = json.dumps(
        {
            "schema": SCHEMA_VERSION,
            "site": record.site,
            "agent": record.agent,
            "run": record.run,
            "sha256": record_sha256(record),
        },
        separators=(",", ":"),
    )
    return head[:-1].encode() + b',"record":' + canonical_bytes(record) + b"}"


def decode_calibration(payload: bytes, site: str, agent: str) -> tuple[CalibrationRecord, str]:
    """Validate a calibration message from ``site``/``agent``'s topic: the envelope, the record
    (every field, no NaN or infinity), its hash, and that it names the topic's site and agent.
    Returns the record and its SHA-256; raises PayloadError with the reason."""
    try:
        data = json.loads(payload, parse_constant=_refuse_non_finite)
    except RecursionError:
        raise PayloadError("the message is nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, not {type(data).__name__}")
    schema = data.get("schema")
    if type(schema) is not int or schema != SCHEMA_VERSION:
        raise PayloadError(f"unknown schema version {schema!r} (this gateway reads 1)")
    record_data = data.get("record")
    envelope = {k: v for k, v in data.items() if k != "record"}
    for key in ("site", "agent", "run", "sha256"):
        if not isinstance(envelope.get(key), str):
            raise PayloadError(f"bad envelope: {key} must be a string")
    if set(envelope) - {"schema", "site", "agent", "run", "sha256"}:
        extra = sorted(set(envelope) - {"schema", "site", "agent", "run", "sha256"})
        raise PayloadError(f"bad envelope: unknown keys {extra}")
    if envelope["site"] != site or envelope["agent"] != agent:
        raise PayloadError(
            f"envelope names {envelope['site']}/{envelope['agent']} but was published on "
            f"{site}/{agent}"
        )
    if not isinstance(record_data, dict):
        raise PayloadError("record must be a JSON object")
    try:
        record = load_record(record_data)
    except ValidationError as exc:
        raise PayloadError(f"bad record: {_reasons_deep(exc)}") from None
    except ValueError as exc:  # MetrologyError
        raise PayloadError(f"bad record: {exc}") from None
    try:
        message = CalibrationMessage.model_validate({**envelope, "record": record})
    except ValidationError as exc:
        raise PayloadError(f"bad envelope: {_reasons_deep(exc)}") from None
    if record.site != site or record.agent != agent or record.run != message.run:
        raise PayloadError(
            f"the record names {record.site}/{record.agent} run {record.run}, the envelope "
            f"{site}/{agent} run {message.run}"
        )
    digest = record_sha256(record)
    if digest != message.sha256:
        raise PayloadError(
            f"the record's SHA-256 is {digest}, the message says {message.sha256}: altered or "
            "not canonical"
        )
    return record, digest


def _refuse_non_finite(token: str) -> float:
    raise PayloadError(f"{token} is not a JSON number")


def _reasons_deep(error: ValidationError) -> str:
    """The first reasons of a nested validation error, each with its path."""
    out = []
    for item in error.errors(include_url=False)[:5]:
        where = ".".join(str(part) for part in item["loc"])
        out.append(f"{where}: {item['msg'].removeprefix('Value error, ')}")
    return "; ".join(out)
