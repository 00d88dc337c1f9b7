"""What an alert rule is: the path patterns it watches by, the rule kinds (discriminated on
``kind``), the built-in rules, and a rule's definition and digest for the audit log."""

from __future__ import annotations

import hashlib
import json
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from core.models import FrozenModel, Name

if TYPE_CHECKING:
    pass


Severity = Literal["warning", "alarm", "critical"]
SEVERITIES: tuple[str, ...] = ("warning", "alarm", "critical")


CONTROL_RULES: tuple[str, ...] = (*(f"nelson-{n}" for n in range(1, 9)), "ewma", "cusum")

_SEGMENT = r"[A-Za-z0-9_.\-*?\[\]!]+"


def _pattern(segments: int, what: str) -> Any:
    return Field(
        pattern=rf"^{_SEGMENT}(/{_SEGMENT}){{{segments - 1}}}$",
        description=f"{what}; shell wildcards (*, ?, [..]) allowed in each segment.",
    )


ChannelPattern = Annotated[str, _pattern(4, "site/agent/instrument/channel")]
AgentPattern = Annotated[str, _pattern(2, "site/agent")]
InstrumentPattern = Annotated[str, _pattern(3, "site/agent/instrument")]
StandardPattern = Annotated[str, _pattern(1, "a reference standard's id")]


def has_wildcard(pattern: str) -> bool:
    """Whether a path pattern matches more than one literal name."""
    return any(c in pattern for c in "*?[")


def _segment_regex(segment: str) -> str:
    """A shell wildcard segment as a regex that never crosses a ``/``."""
    out, index = [], 0
    while index < len(segment):
        char = segment[index]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = segment.find("]", index + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = segment[index + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return "".join(out)


class PathMatcher:
    """Matches ``a/b/c`` paths against patterns segment by segment (a ``*`` never spans a ``/``)."""

    def __init__(self, patterns: list[str]) -> None:
        self.exact = {p for p in patterns if not has_wildcard(p)}
        wild = [p for p in patterns if has_wildcard(p)]
        self._regex = (
            re.compile(
                "|".join(
                    "(?:" + "/".join(_segment_regex(s) for s in p.split("/")) + ")" for p in wild
                )
            )
            if wild
            else None
        )

    def matches(self, path: str) -> bool:
        """Whether ``path`` is named by one of the patterns."""
        if path in self.exact:
            return True
        return self._regex is not None and self._regex.fullmatch(path) is not None


# -- rules -----------------------------------------------------------------------------------


class LimitLevel(FrozenModel):
    """One level of a limit rule (a warning or pre-alarm, an alarm...), low and/or high.

    The condition becomes true when the value goes beyond a limit and false again only when it
    has come back inside by ``deadband`` (hysteresis), so noise around a limit does not flap.
    """

    severity: Severity
    low: float | None = Field(None, description="Alert below this value.")
    high: float | None = Field(None, description="Alert above this value.")
    deadband: float = Field(0.0, ge=0, description="Hysteresis, in the channel's unit.")
    on_delay_s: float = Field(
        0.0, ge=0, description="The condition must hold this long (reading time) to activate."
    )
    off_delay_s: float = Field(
        0.0, ge=0, description="The condition must be gone this long (reading time) to clear."
    )

    @model_validator(mode="after")
    def _limits(self) -> LimitLevel:
        if self.low is None and self.high is None:
            raise ValueError("a level needs a low or a high limit (or both)")
        if self.low is not None and self.high is not None:
            if not self.low < self.high:
                raise ValueError(f"low ({self.low}) must be below high ({self.high})")
            if self.deadband * 2 >= self.high - self.low:
                raise ValueError(
                    "the deadband must be less than half the band between low and high"
                )
        return self


PRESETS: dict[str, list[LimitLevel]] = {
    # ISO/IEC 17025 §6.3: a calibration room at 23 °C ± 1 °C; the warning at ± 0.5 °C leaves
    # time to act before results are affected.
    "calibration-room-temperature": [
        LimitLevel(
            severity="alarm", low=22.0, high=24.0, deadband=0.1, on_delay_s=300, off_delay_s=300
        ),
        LimitLevel(
            severity="warning", low=22.5, high=23.5, deadband=0.1, on_delay_s=300, off_delay_s=300
        ),
    ],
    # 30-60 %rh, the usual band for electrical and dimensional calibration.
    "calibration-room-humidity": [
        LimitLevel(
            severity="alarm", low=30.0, high=60.0, deadband=1.0, on_delay_s=600, off_delay_s=600
        ),
        LimitLevel(
            severity="warning", low=35.0, high=55.0, deadband=1.0, on_delay_s=600, off_delay_s=600
        ),
    ],
}
"""Example limit sets for a calibration room; a rule's own ``levels`` replace them."""


class RuleBase(FrozenModel):
    """What every rule has."""

    id: Name
    description: str | None = Field(None, max_length=500)
    enabled: bool = True
    policy: Name | None = Field(
        None, description="Escalation policy to notify (default: alerts.default_policy)."
    )
    schedule: Name | None = Field(
        None,
        description="Monitoring schedule: outside it the rule's alerts are marked 'out of "
        "schedule' instead of being raised (e.g. a bench that is switched off at night).",
    )


class ChannelRule(RuleBase):
    """A rule over channels."""

    channels: list[ChannelPattern] = Field(..., min_length=1)
    tags: dict[str, str] = Field(
        default_factory=dict, description="Only channels carrying all these tags."
    )


class DelayedRule(FrozenModel):
    """Severity and delays of a single-level rule."""

    severity: Severity = "warning"
    on_delay_s: float = Field(0.0, ge=0)
    off_delay_s: float = Field(0.0, ge=0)


class LimitsRule(ChannelRule):
    """Low/high limits at one or more severity levels, each with deadband and delays."""

    kind: Literal["limits"]
    preset: Literal["calibration-room-temperature", "calibration-room-humidity"] | None = None
    levels: list[LimitLevel] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _preset_levels(cls, data: Any) -> Any:
        preset = data.get("preset") if isinstance(data, dict) else None
        if isinstance(preset, str) and preset in PRESETS and not data.get("levels"):
            data = {**data, "levels": [level.model_dump() for level in PRESETS[data["preset"]]]}
        return data

    @model_validator(mode="after")
    def _levels(self) -> LimitsRule:
        if not self.levels:
            raise ValueError("a limits rule needs levels or a preset")
        severities = [level.severity for level in self.levels]
        if len(set(severities)) != len(severities):
            raise ValueError("two levels have the same severity")
        return self


class RateRule(ChannelRule, DelayedRule):
    """The value changes by more than ``max_change`` within ``window_s`` (e.g. 0.5 °C in 15 min)."""

    kind: Literal["rate"]
    max_change: float = Field(..., gt=0, description="In the channel's unit.")
    window_s: float = Field(..., gt=0, le=30 * 86_400)
    direction: Literal["rise", "fall", "both"] = "both"
    deadband: float = Field(
        0.0, ge=0, description="Once raised, the change must fall below max_change - deadband."
    )

    @model_validator(mode="after")
    def _deadband(self) -> RateRule:
        if self.deadband >= self.max_change:
            raise ValueError("the deadband must be less than max_change")
        return self


class StaleRule(ChannelRule, DelayedRule):
    """No reading for ``intervals`` of the channel's interval (from the agent's catalogue)."""

    kind: Literal["stale"]
    intervals: float = Field(3.0, ge=1)
    max_age_s: float | None = Field(
        None, gt=0, description="Fixed age instead (for channels whose interval is unknown)."
    )


class BadQualityRule(ChannelRule, DelayedRule):
    """``count`` readings of bad quality in a row."""

    kind: Literal["bad_quality"]
    count: int = Field(3, ge=1)


class CalibrationRangeRule(ChannelRule, DelayedRule):
    """A corrected channel read outside its certificate's calibrated range (the reading is
    stored corrected as far as the method allows, and marked uncertain)."""

    kind: Literal["calibration_range"]


class CalibrationExpiredRule(ChannelRule, DelayedRule):
    """A corrected channel read after its certificate's due date."""

    kind: Literal["calibration_expired"]
    severity: Severity = "alarm"


class ConformityRule(ChannelRule, DelayedRule):
    """A corrected reading does not conform to its channel's tolerance under the channel's
    decision rule (docs/corrections.md); the alert carries the numbers behind the verdict."""

    kind: Literal["conformity"]
    severity: Severity = "alarm"
    conditional: bool = Field(
        True, description="Raise on a conditional fail (non-binary rule) too, not only a fail."
    )


class AgentOfflineRule(RuleBase, DelayedRule):
    """An agent is offline: its clean stop, or its MQTT will when it died or lost the network."""

    kind: Literal["agent_offline"]
    agents: list[AgentPattern] = Field(default_factory=lambda: ["*/*"])
    severity: Severity = "alarm"


class InstrumentUnavailableRule(RuleBase, DelayedRule):
    """An instrument is unavailable (as its agent reports it)."""

    kind: Literal["instrument_unavailable"]
    instruments: list[InstrumentPattern] = Field(default_factory=lambda: ["*/*/*"])
    severity: Severity = "alarm"


class StandardRule(RuleBase, DelayedRule):
    """A rule over reference standards, fed by the standards analytics."""

    standards: list[StandardPattern] = Field(default_factory=lambda: ["*"])


class CertificateRule(StandardRule):
    """The measured value lies outside the certificate's value ± its expanded uncertainty."""

    kind: Literal["standard_certificate"]
    severity: Severity = "alarm"
    factor: float = Field(1.0, gt=0, description="Multiplies U (e.g. 2 to alert only at 2U).")


class PredictionRule(StandardRule):
    """The drift prediction leaves the tolerance within ``within_days``."""

    kind: Literal["standard_prediction"]
    within_days: float = Field(30.0, gt=0)


class ControlRule(StandardRule):
    """A control-chart rule fired (each rule is its own alert, so the message says which)."""

    kind: Literal["standard_control"]
    rules: list[str] = Field(default_factory=lambda: list(CONTROL_RULES))

    @field_validator("rules")
    @classmethod
    def _known(cls, rules: list[str]) -> list[str]:
        unknown = [r for r in rules if r not in CONTROL_RULES]
        if unknown:
            raise ValueError(f"unknown control rules {unknown} (known: {', '.join(CONTROL_RULES)})")
        return rules


class CalibrationDueRule(StandardRule):
    """Calibration due within ``within_days`` (``severity``) or overdue (``overdue_severity``)."""

    kind: Literal["calibration_due"]
    within_days: float = Field(30.0, gt=0)
    overdue_severity: Severity = "alarm"


class RecordsIntegrityRule(RuleBase, DelayedRule):
    """The record store is not what its ledger recorded (a broken chain, a forged checkpoint, a
    live row edited, inserted or deleted outside etalon), as the gateway's verification finds
    it at start and every ``records.ledger.verify_interval_s``, or as a writer finds it. Without
    a rule of this kind, a built-in one (``records-integrity``, critical, the default policy)
    is in force."""

    kind: Literal["records_integrity"]
    severity: Severity = "critical"


Rule = Annotated[
    LimitsRule
    | RateRule
    | StaleRule
    | BadQualityRule
    | CalibrationRangeRule
    | CalibrationExpiredRule
    | ConformityRule
    | AgentOfflineRule
    | InstrumentUnavailableRule
    | CertificateRule
    | PredictionRule
    | ControlRule
    | CalibrationDueRule
    | RecordsIntegrityRule,
    Field(discriminator="kind"),
]
CALIBRATION_KINDS = ("calibration_range", "calibration_expired", "conformity")
CHANNEL_KINDS = ("limits", "rate", "stale", "bad_quality", *CALIBRATION_KINDS)
BUILT_IN_CALIBRATION_RULES = (
    CalibrationRangeRule(id="calibration-range", kind="calibration_range", channels=["*/*/*/*"]),
    CalibrationExpiredRule(
        id="calibration-expired", kind="calibration_expired", channels=["*/*/*/*"]
    ),
    ConformityRule(id="conformity", kind="conformity", channels=["*/*/*/*"]),
)
"""In force for each kind the config names no rule of: a corrected reading out of range, past
its certificate or out of tolerance always raises an alert (only linked channels give any)."""
RECORDS_KIND = "records_integrity"
BUILT_IN_RECORDS_RULE = RecordsIntegrityRule(id="records-integrity", kind="records_integrity")
"""In force when the config names no records_integrity rule: tampering always raises an alert."""
STANDARD_KINDS = (
    "standard_certificate",
    "standard_prediction",
    "standard_control",
    "calibration_due",
)


def rule_definition(rule: Any) -> dict[str, Any]:
    """A rule as plain JSON data (what the audit log stores as before/after)."""
    data: dict[str, Any] = rule.model_dump(mode="json")
    return data


def rule_hash(rule: Any) -> str:
    """A stable digest of a rule's definition."""
    text = json.dumps(rule_definition(rule), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]
