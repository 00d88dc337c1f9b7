"""The wire format between agent and gateway: topics and payloads (schema version 1).

Documented in ``docs/wire-format.md``; validated by these models on both sides. The agent builds
batches by joining pre-encoded readings (it never re-validates what it encoded itself); the gateway
validates every payload with :func:`decode_batch`, which salvages the good readings of a batch that
holds a bad one.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, NotRequired

import orjson
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from core.errors import PayloadError
from core.models import NAME_PATTERN, PLAIN_TEXT
from drivers.reading import Reading

SCHEMA_VERSION = 1
TS_MIN_NS = 946_684_800_000_000_000  # 2000-01-01: older is a broken clock
TS_MAX_NS = 7_258_118_400_000_000_000  # 2200-01-01

WireName = Annotated[str, Field(pattern=NAME_PATTERN)]


class WireModel(BaseModel):
    """Strict on the wire: no coercion of "1" into 1, no NaN, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


_TagKey = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,31}$")]
_TagValue = Annotated[str, Field(min_length=1, max_length=128, pattern=PLAIN_TEXT)]
_WIRE = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


@with_config(_WIRE)
class WireReading(TypedDict):
    """One reading on the wire (a TypedDict: the gateway validates ~2× faster than a model and
    keeps the plain dict the writer needs). Plus one rule a schema cannot say: a reading without
    a value must have quality ``bad``."""

    instrument: WireName
    channel: WireName
    ts: Annotated[int, Field(ge=TS_MIN_NS, le=TS_MAX_NS, description="UTC, ns since the epoch.")]
    value: (
        float
        | Annotated[int, Field(ge=-(2**63), lt=2**63)]
        | bool
        | Annotated[str, Field(max_length=256)]
        | None
    )
    unit: Annotated[str, Field(max_length=32, pattern=PLAIN_TEXT)]
    quality: Literal["good", "uncertain", "bad"]
    reason: NotRequired[Annotated[str, Field(max_length=1024)] | None]
    u: NotRequired[
        Annotated[float, Field(ge=0, description="Standard uncertainty (k=1), in unit.")] | None
    ]
    tags: NotRequired[Annotated[dict[_TagKey, _TagValue], Field(max_length=16)]]


@with_config(ConfigDict(strict=True, extra="forbid"))
class ReadingBatch(TypedDict):
    """A batch of readings published on ``{prefix}/v1/{site}/{agent}/data``."""

    schema: Literal[1]
    site: WireName
    agent: WireName
    seq: Annotated[int, Field(ge=0, description="Batch counter of this agent run (diagnostics).")]
    readings: Annotated[list[WireReading], Field(min_length=1, max_length=100_000)]


READING = TypeAdapter(WireReading)
BATCH = TypeAdapter(ReadingBatch)
NO_VALUE_NOT_BAD = "a reading without a value must have quality 'bad'"


class ChannelInfo(WireModel):
    """A channel in the agent's catalogue."""

    name: WireName
    unit: str
    interval_s: float
    tags: dict[str, str] = Field(default_factory=dict)


class InstrumentInfo(WireModel):
    """An instrument in the agent's catalogue, with its identification."""

    name: WireName
    protocol: str
    identity: dict[str, str] = Field(default_factory=dict)
    channels: list[ChannelInfo]


class AgentStatus(WireModel):
    """Retained on ``.../status``: the birth message, or ``offline`` (the will, or a clean stop)."""

    schema_: Literal[1] = Field(1, alias="schema")
    state: Literal["online", "offline"]
    site: WireName
    agent: WireName
    version: str | None = None
    ts: int | None = Field(None, description="When it was sent; None in the will.")
    reason: str | None = None
    clock: dict[str, Any] = Field(default_factory=dict)
    instruments: list[InstrumentInfo] = Field(default_factory=list)


class InstrumentState(WireModel):
    """Retained on ``.../instruments/{name}``: connected or unavailable, since when, why."""

    schema_: Literal[1] = Field(1, alias="schema")
    state: Literal["connected", "unavailable"]
    since: int
    reason: str | None = None


class Topics:
    """Topic names for one prefix (default ``etalon``)."""

    def __init__(self, prefix: str = "etalon") -> None:
        self.root = f"{prefix}/v1"

    def data(self, site: str, agent: str) -> str:
        """Batches of readings."""
        return f"{self.root}/{site}/{agent}/data"

    def status(self, site: str, agent: str) -> str:
        """Retained birth/offline message."""
        return f"{self.root}/{site}/{agent}/status"

    def metrics(self, site: str, agent: str) -> str:
        """Retained self-metrics of a process (agents and gateways)."""
        return f"{self.root}/{site}/{agent}/metrics"

    def instrument(self, site: str, agent: str, instrument: str) -> str:
        """Retained state of one instrument."""
        return f"{self.root}/{site}/{agent}/instruments/{instrument}"

    def deadletter(self, site: str) -> str:
        """Payloads the gateway refused, with the reason."""
        return f"{self.root}/{site}/deadletter"

    def alerts(self, site: str) -> str:
        """Root of the gateway's alert events and retained alert states."""
        return f"{self.root}/{site}/alerts"

    def calibrations(self, site: str, agent: str) -> str:
        """Records of completed calibration runs (a bench publishing under its own identity)."""
        return f"{self.root}/{site}/{agent}/calibrations"

    def gateway(self, site: str, gateway: str, kind: str) -> str:
        """A gateway's own retained ``status`` or ``metrics``."""
        return f"{self.root}/{site}/gateways/{gateway}/{kind}"

    def parse(self, topic: str) -> tuple[str, str, str, str | None] | None:
        """(site, agent, kind, instrument) of an agent topic; kind is data, status, metrics,
        calibrations or instrument (then ``instrument`` names it); None for any other topic."""
        if not topic.startswith(self.root + "/"):
            return None
        parts = topic[len(self.root) + 1 :].split("/")
        kinds = ("data", "status", "metrics", "calibrations")
        if len(parts) == 3 and parts[2] in kinds and parts[1] != "gateways":
            return parts[0], parts[1], parts[2], None
        if len(parts) == 4 and parts[2] == "instruments" and parts[1] != "gateways":
            return parts[0], parts[1], "instrument", parts[3]
        return None


def encode_reading(reading: Reading) -> bytes:
    """One reading as compact JSON, the unit the agent's spool holds.

    Non-finite floats never reach the wire: the agent turns them into BAD readings first.
    """
    body: dict[str, Any] = {
        "instrument": reading.instrument,
        "channel": reading.channel,
        "ts": reading.ts_ns,
        "value": reading.value,
        "unit": reading.unit,
        "quality": reading.quality.value,
    }
    if reading.reason is not None:
        body["reason"] = reading.reason
    if reading.u is not None:
        body["u"] = reading.u
    if reading.tags:
        body["tags"] = reading.tags
    value = reading.value
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
    if reading.u is not None and not math.isfinite(reading.u):
        raise ValueError(f"Out of range float values are not JSON compliant: {reading.u!r}")
    return orjson.dumps(body)


def join_batch(site: str, agent: str, seq: int, encoded_readings: list[bytes]) -> bytes:
    """A batch payload from readings encoded by :func:`encode_reading`, without re-encoding."""
    head = json.dumps(
        {"schema": SCHEMA_VERSION, "site": site, "agent": agent, "seq": seq}, separators=(",", ":")
    )
    return head[:-1].encode() + b',"readings":[' + b",".join(encoded_readings) + b"]}"


class Rejected(BaseModel):
    """A reading the gateway refused, by its index in the batch."""

    index: int
    reason: str


def _reasons(error: ValidationError, skip: str | None = None) -> str:
    """One reason per field (a union reports each branch; the first says enough)."""
    seen: dict[str, str] = {}
    for item in error.errors(include_url=False):
        field = str(item["loc"][0]) if item["loc"] else ""
        if field == skip or field in seen:
            continue
        seen[field] = item["msg"].removeprefix("Value error, ")
    return "; ".join(f"{f}: {m}" if f else m for f, m in list(seen.items())[:5])


def _nonfinite(token: str) -> float:
    # NaN/Infinity are not JSON, but parsing them lets the one reading that holds them be
    # refused (not finite) while the rest of the batch goes on.
    return float(token.replace("Infinity", "inf"))


def decode_batch(
    payload: bytes, site: str, agent: str
) -> tuple[list[WireReading], list[Rejected], int]:
    """Validate a data payload from ``site``/``agent``'s topic.

    Returns (good readings, rejected readings, batch seq). Raises PayloadError when the payload as
    a whole is unusable (not JSON, unknown schema, wrong envelope); a batch with some bad readings
    keeps the good ones.
    """
    try:
        batch = BATCH.validate_json(payload)
    except ValidationError:
        pass  # find out below what is wrong, and keep what is right
    else:
        if batch["site"] != site or batch["agent"] != agent:
            raise PayloadError(
                f"envelope names {batch['site']}/{batch['agent']} but was published on "
                f"{site}/{agent}"
            )
        readings = batch["readings"]
        if all(r["value"] is not None or r["quality"] == "bad" for r in readings):
            return readings, [], batch["seq"]
    try:
        data = json.loads(payload, parse_constant=_nonfinite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise PayloadError(f"payload must be a JSON object, not {type(data).__name__}")
    if data.get("schema") != SCHEMA_VERSION:
        raise PayloadError(f"unknown schema version {data.get('schema')!r} (this gateway reads 1)")
    readings_raw = data.get("readings")
    envelope = {k: v for k, v in data.items() if k != "readings"}
    try:
        BATCH.validate_python({**envelope, "readings": [None]})
    except ValidationError as exc:
        envelope_errors = [e for e in exc.errors() if e["loc"][:1] != ("readings",)]
        if envelope_errors:
            raise PayloadError(f"bad envelope: {_reasons(exc, skip='readings')}") from None
    if not isinstance(readings_raw, list) or not readings_raw:
        raise PayloadError("readings must be a non-empty list")
    if data["site"] != site or data["agent"] != agent:
        raise PayloadError(
            f"envelope names {data['site']}/{data['agent']} but was published on {site}/{agent}"
        )
    good: list[WireReading] = []
    rejected: list[Rejected] = []
    for index, raw in enumerate(readings_raw):
        try:
            reading = READING.validate_python(raw)
        except ValidationError as exc:
            rejected.append(Rejected(index=index, reason=_reasons(exc)))
            continue
        if reading["value"] is None and reading["quality"] != "bad":
            rejected.append(Rejected(index=index, reason=NO_VALUE_NOT_BAD))
            continue
        good.append(reading)
    return good, rejected, int(data["seq"])


def is_finite(value: object) -> bool:
    """False for NaN and infinities, True for every other value."""
    return not (isinstance(value, float) and not math.isfinite(value))
