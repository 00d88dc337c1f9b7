"""The wire format between agent and gateway: topics and payloads (schema version 1).

Documented in ``docs/wire-format.md``; validated by these models on both sides. The agent builds
batches by joining pre-encoded readings (it never re-validates what it encoded itself); the gateway
validates every data payload with :func:`edge_agent.wire_batches.decode_data`, which salvages the
good readings of a batch that holds a bad one.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, Literal, NotRequired, TypeVar

import orjson
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    with_config,
)
from typing_extensions import TypedDict

from core.errors import PayloadError
from core.models import FREE_TEXT, NAME_PATTERN, PLAIN_TEXT
from drivers.reading import Reading

SCHEMA_VERSION = 1
TS_MIN_NS = 946_684_800_000_000_000  # 2000-01-01: older is a broken clock
TS_MAX_NS = 7_258_118_400_000_000_000  # 2200-01-01
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
REASON_MAX = 1024
TEXT_VALUE_MAX = 256

WireName = Annotated[str, Field(pattern=NAME_PATTERN)]
WireTs = Annotated[
    int, Field(ge=TS_MIN_NS, le=TS_MAX_NS, description="UTC, ns since the epoch (2000…2200).")
]
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
Reason = Annotated[str, Field(max_length=REASON_MAX, pattern=FREE_TEXT)]
_Unit = Annotated[str, Field(max_length=32, pattern=PLAIN_TEXT)]
_TAG_KEY = r"^[A-Za-z][A-Za-z0-9_]{0,31}$"
_TagKey = Annotated[str, Field(pattern=_TAG_KEY)]
_TagValue = Annotated[str, Field(min_length=1, max_length=128, pattern=PLAIN_TEXT)]
_Tags = Annotated[dict[_TagKey, _TagValue], Field(max_length=16)]
_KEY = r"^[a-z][a-z0-9_]{0,63}$"
_Key = Annotated[str, Field(pattern=_KEY)]
_WIRE = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


def _exactly_int(value: Any) -> Any:
    # pydantic's Literal[1] takes true and 1.0 for 1, even in strict mode.
    if type(value) is not int:
        raise ValueError(f"schema must be the integer 1, not {value!r}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exactly_int)]


class WireModel(BaseModel):
    """Strict on the wire: no coercion of "1" into 1, no NaN, no unknown keys."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, allow_inf_nan=False)


@with_config(_WIRE)
class WireReading(TypedDict):
    """One reading on the wire (a TypedDict: the gateway validates ~2× faster than a model and
    keeps the plain dict the writer needs). Plus one rule a schema cannot say: a reading without
    a value must have quality ``bad``."""

    instrument: WireName
    channel: WireName
    ts: WireTs
    value: (
        float
        | Int64
        | bool
        | Annotated[str, Field(max_length=TEXT_VALUE_MAX, pattern=FREE_TEXT)]
        | None
    )
    unit: _Unit
    quality: Literal["good", "uncertain", "bad"]
    reason: NotRequired[Reason | None]
    u: NotRequired[
        Annotated[float, Field(ge=0, description="Standard uncertainty (k=1), in unit.")] | None
    ]
    tags: NotRequired[_Tags]


@with_config(ConfigDict(strict=True, extra="forbid"))
class ReadingBatch(TypedDict):
    """A batch of readings published on ``{prefix}/v1/{site}/{agent}/data``."""

    schema: SchemaVersion
    site: WireName
    agent: WireName
    seq: Annotated[
        int,
        Field(ge=0, le=INT64_MAX, description="Batch counter of this agent run (diagnostics)."),
    ]
    readings: Annotated[list[WireReading], Field(min_length=1, max_length=100_000)]


if TYPE_CHECKING:
    READING: TypeAdapter[WireReading]
    BATCH: TypeAdapter[ReadingBatch]
_ADAPTED: dict[str, Any] = {"READING": WireReading, "BATCH": ReadingBatch}


def __getattr__(name: str) -> Any:
    """``READING`` and ``BATCH``, the validators of a reading and of a batch, built when first
    asked for (the gateway's, and the published schema's): an agent encodes readings and never
    validates them, and building both is a fifth of this module's import."""
    shape = _ADAPTED.get(name)
    if shape is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    adapter = globals()[name] = TypeAdapter(shape)
    return adapter


NO_VALUE_NOT_BAD = "a reading without a value must have quality 'bad'"


class ChannelInfo(WireModel):
    """A channel in the agent's catalogue."""

    name: WireName
    unit: _Unit
    interval_s: Annotated[float, Field(gt=0, le=86_400)]
    tags: _Tags = Field(default_factory=dict)


class InstrumentInfo(WireModel):
    """An instrument in the agent's catalogue, with its identification."""

    name: WireName
    protocol: Annotated[str, Field(max_length=32, pattern=PLAIN_TEXT)]
    identity: Annotated[
        dict[
            Annotated[str, Field(max_length=64, pattern=PLAIN_TEXT)],
            Annotated[str, Field(max_length=TEXT_VALUE_MAX, pattern=FREE_TEXT)],
        ],
        Field(max_length=32),
    ] = Field(default_factory=dict)
    channels: Annotated[list[ChannelInfo], Field(max_length=10_000)]


ClockValue = bool | Int64 | float | Annotated[str, Field(max_length=64, pattern=PLAIN_TEXT)] | None


class AgentStatus(WireModel):
    """Retained on ``.../status``: the birth message, or ``offline`` (the will, or a clean stop)."""

    schema_: SchemaVersion = Field(1, alias="schema")
    state: Literal["online", "offline"]
    site: WireName
    agent: WireName
    version: Annotated[str, Field(max_length=64, pattern=PLAIN_TEXT)] | None = None
    ts: WireTs | None = Field(None, description="When it was sent; None in the will.")
    reason: Reason | None = None
    clock: Annotated[dict[_Key, ClockValue], Field(max_length=16)] = Field(default_factory=dict)
    instruments: Annotated[list[InstrumentInfo], Field(max_length=1000)] = Field(
        default_factory=list
    )


class InstrumentState(WireModel):
    """Retained on ``.../instruments/{name}``: connected or unavailable, since when, why."""

    schema_: SchemaVersion = Field(1, alias="schema")
    state: Literal["connected", "unavailable"]
    since: WireTs
    reason: Reason | None = None


class AgentMetricsMessage(WireModel):
    """Retained on ``.../metrics``: an agent's self-metrics (counters and gauges by name)."""

    schema_: SchemaVersion = Field(1, alias="schema")
    kind: Literal["agent"]
    site: WireName
    agent: WireName
    ts: WireTs
    metrics: Annotated[dict[_Key, Int64 | float], Field(max_length=256)]


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


def encode_readings(readings: Sequence[Reading]) -> bytes:
    """Readings as comma-joined compact JSON objects (a fragment of a batch's ``readings``
    list), each as :func:`encode_reading` writes it: the unit the agent spools per poll.

    One ``orjson.dumps`` for the whole poll; a non-finite float refuses the whole call
    (ValueError) — the agent turns them into BAD readings before this.
    """
    isfinite = math.isfinite
    bodies: list[dict[str, Any]] = []
    for r in readings:
        value = r.value
        body: dict[str, Any] = {
            "instrument": r.instrument,
            "channel": r.channel,
            "ts": r.ts_ns,
            "value": value,
            "unit": r.unit,
            "quality": r.quality.value,
        }
        if isinstance(value, float) and not isfinite(value):
            raise ValueError(f"Out of range float values are not JSON compliant: {value!r}")
        if r.reason is not None:
            body["reason"] = r.reason
        if r.u is not None:
            if not isfinite(r.u):
                raise ValueError(f"Out of range float values are not JSON compliant: {r.u!r}")
            body["u"] = r.u
        if r.tags:
            body["tags"] = r.tags
        bodies.append(body)
    return orjson.dumps(bodies)[1:-1]


def join_batch(site: str, agent: str, seq: int, encoded_readings: list[bytes]) -> bytes:
    """A batch payload from readings encoded by :func:`encode_reading` (or fragments of
    :func:`encode_readings`), without re-encoding."""
    head = json.dumps(
        {"schema": SCHEMA_VERSION, "site": site, "agent": agent, "seq": seq}, separators=(",", ":")
    )
    return head[:-1].encode() + b',"readings":[' + b",".join(encoded_readings) + b"]}"


class Rejected(BaseModel):
    """A reading the gateway refused, by its index in the batch."""

    index: int
    reason: str


# -- refusing, with reasons a user can act on ---------------------------------------------------

SPOOFED = "envelope names another agent than its topic"
"""The cause of a payload whose body names another site or agent than the topic it came on."""

_PLAIN = re.compile(PLAIN_TEXT)
_FREE = re.compile(FREE_TEXT)
_NAME = re.compile(NAME_PATTERN)
_PATTERNS = {
    NAME_PATTERN: "is not a name (letters, digits, '_', '.', '-'; starts with a letter or "
    "digit; at most 64 characters)",
    _TAG_KEY: "is not a tag key (a letter, then letters, digits or '_'; at most 32)",
    _KEY: "is not a key (lower-case letters, digits and '_'; at most 64)",
}
# Error types that only say "not this branch of a union": a more specific error wins.
_TYPE_ERRORS = frozenset(
    {
        "float_type",
        "int_type",
        "bool_type",
        "string_type",
        "none_required",
        "dict_type",
        "list_type",
        "model_type",
        "model_attributes_type",
        "is_instance_of",
    }
)
_BRANCH = re.compile(r"^(?:float|int|bool|str|none|constrained-\w+|[a-z-]+\[.*\])$")


def first_forbidden(text: str, plain: bool = False) -> str:
    """What makes ``text`` refused as one line of text (plain: nor a backslash), or ''."""
    # fullmatch: Python's "$" would also match before a final newline.
    if (_PLAIN if plain else _FREE).fullmatch(text):
        return ""
    for index, char in enumerate(text):
        if char == "\\" and plain:
            return f"holds a backslash (at {index})"
        if not _FREE.fullmatch(char):
            return f"holds a control character (U+{ord(char):04X} at {index})"
    return "holds a forbidden character"  # pragma: no cover - the loop finds it


def _problem(item: Any) -> str:
    """One pydantic error in words: control characters and names said plainly."""
    kind = item["type"]
    if kind == "string_pattern_mismatch":
        pattern = item.get("ctx", {}).get("pattern", "")
        value = item.get("input")
        if pattern in (FREE_TEXT, PLAIN_TEXT) and isinstance(value, str):
            return first_forbidden(value, plain=pattern == PLAIN_TEXT)
        if pattern in _PATTERNS:
            return _PATTERNS[pattern]
    return str(item["msg"]).removeprefix("Value error, ")


def _path(loc: tuple[int | str, ...]) -> str:
    parts = [one_line(str(p), 64) for p in loc if not (isinstance(p, str) and _BRANCH.match(p))]
    return ".".join(p if p != "[key]" else "(key)" for p in parts)


def _reasons(error: ValidationError, skip: str | None = None, limit: int = 5) -> str:
    """One reason per field, naming it (of a union, the branch that says most)."""
    by_field: dict[str, list[Any]] = {}
    for item in error.errors(include_url=False):
        field = _path(item["loc"])
        if skip is not None and field.split(".")[0] == skip:
            continue
        by_field.setdefault(field, []).append(item)
    reasons = []
    for field, items in list(by_field.items())[:limit]:
        specific = [i for i in items if i["type"] not in _TYPE_ERRORS]
        if specific:
            text = _problem(specific[0])
        elif len(items) > 1:
            text = f"unexpected type {type(items[0].get('input')).__name__}"
        else:
            text = _problem(items[0])
        reasons.append(f"{field}: {text}" if field else text)
    return "; ".join(reasons)


def check_names(site: str, agent: str, instrument: str | None = None) -> None:
    """Raise PayloadError unless the topic's levels are names."""
    for what, name in (("site", site), ("agent", agent), ("instrument", instrument)):
        if name is not None and not _NAME.fullmatch(name):
            shown = name if len(name) <= 80 else name[:77] + "..."
            raise PayloadError(
                f"topic level {what} {shown!r} {_PATTERNS[NAME_PATTERN]}", "topic level not a name"
            )


def _spoofed(kind: str, site: str, agent: str, topic_site: str, topic_agent: str) -> None:
    if site != topic_site or agent != topic_agent:
        raise PayloadError(
            f"{kind} names {site}/{agent} but was published on {topic_site}/{topic_agent}",
            SPOOFED,
        )


_M = TypeVar("_M", bound=BaseModel)


def _validated(model: type[_M], payload: bytes, what: str) -> _M:
    """``payload`` as a ``model``; raises PayloadError saying what was bad about the ``what``."""
    try:
        return model.model_validate_json(payload)
    except ValidationError as exc:
        raise PayloadError(f"bad {what}: {_reasons(exc)}", f"bad {what}") from None


def decode_status(payload: bytes, site: str, agent: str) -> AgentStatus:
    """An agent's status from ``site``/``agent``'s topic; raises PayloadError."""
    status = _validated(AgentStatus, payload, "status message")
    _spoofed("status", status.site, status.agent, site, agent)
    return status


def decode_instrument_state(payload: bytes) -> InstrumentState:
    """An instrument's state (its topic says whose); raises PayloadError."""
    return _validated(InstrumentState, payload, "instrument state")


def decode_metrics(payload: bytes, site: str, agent: str) -> AgentMetricsMessage:
    """An agent's self-metrics from ``site``/``agent``'s topic; raises PayloadError."""
    metrics = _validated(AgentMetricsMessage, payload, "metrics message")
    _spoofed("metrics", metrics.site, metrics.agent, site, agent)
    return metrics


def is_finite(value: object) -> bool:
    """False for NaN and infinities, True for every other value."""
    return not (isinstance(value, float) and not math.isfinite(value))


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def one_line(text: str, max_length: int = REASON_MAX) -> str:
    """``text`` as the wire takes free text: control characters written as escapes (``\\n``,
    ``\\x01``), at most ``max_length`` characters. The agent passes instrument messages and
    identities through it, so a stray CR/LF from an instrument never gets a reading refused."""
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode(), text.strip())
    if len(text) > max_length:
        text = text[: max_length - 1] + "…"
    return text
