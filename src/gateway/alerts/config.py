"""The alert configuration: rules, recipients, escalation policies, schedules, notifiers.

Rules name what they watch by path: channels as ``site/agent/instrument/channel``, agents as
``site/agent``, instruments as ``site/agent/instrument``, reference standards by their id. Each
segment may use shell wildcards (``*``, ``?``, ``[...]``), so one rule covers a group of channels
(``hanoi/*/room-a/*``); ``tags`` narrows a rule to channels carrying those tags.

Which channels exist is declared by the agents (their birth messages), not by the gateway config,
so a gateway config cannot know at validation time whether a channel exists. ``etalon check
gateway.yaml agent.yaml ...`` checks the rules against the agent configs given with it
(:func:`rule_channel_problems`); at run time a rule naming a channel that its agent does not
declare is reported by a ``rule_unresolved`` alert and a log line.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from core.backoff import Backoff
from core.models import FrozenModel, Name
from core.secrets import Secret

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig

Severity = Literal["warning", "alarm", "critical"]
SEVERITIES: tuple[str, ...] = ("warning", "alarm", "critical")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
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
        if isinstance(data, dict) and not data.get("levels") and data.get("preset") in PRESETS:
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


def _known_zone(value: str) -> str:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r}") from exc
    return value


# -- schedules -------------------------------------------------------------------------------

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$"


class ScheduleWindow(FrozenModel):
    """Monitoring hours on some weekdays; ``end`` before ``start`` runs past midnight."""

    days: list[Weekday] = Field(default_factory=lambda: list(WEEKDAYS))  # type: ignore[arg-type]
    start: str = Field("00:00", pattern=_HHMM)
    end: str = Field("24:00", pattern=_HHMM)

    def _minutes(self, text: str) -> int:
        hours, minutes = text.split(":")
        return int(hours) * 60 + int(minutes)

    def contains(self, local: dt.datetime) -> bool:
        """Whether a local time falls inside the window."""
        start, end = self._minutes(self.start), self._minutes(self.end)
        minute = local.hour * 60 + local.minute
        today = WEEKDAYS[local.weekday()]
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if start < end:
            return today in self.days and start <= minute < end
        return (today in self.days and minute >= start) or (yesterday in self.days and minute < end)


class Schedule(FrozenModel):
    """When channels are monitored; outside it their alerts are marked, not raised."""

    id: Name
    timezone: str = Field("UTC", description="IANA zone of the windows, e.g. Asia/Ho_Chi_Minh.")
    windows: list[ScheduleWindow] = Field(..., min_length=1)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    def active(self, now_ns: int) -> bool:
        """Whether monitoring is on at ``now_ns``."""
        local = dt.datetime.fromtimestamp(now_ns / 1e9, zoneinfo.ZoneInfo(self.timezone))
        return any(window.contains(local) for window in self.windows)


# -- recipients, policies, notifiers ----------------------------------------------------------

_EMAIL = r"^[^@\s<>]+@[^@\s<>]+$"


class Recipient(FrozenModel):
    """A person or a system that receives notifications, by e-mail and/or a webhook."""

    id: Name
    name: str = Field(..., min_length=1, max_length=200)
    email: str | None = Field(None, pattern=_EMAIL)
    webhook: Name | None = Field(None, description="Id of a configured webhook.")
    language: Literal["en", "vi"] = "en"
    timezone: str = Field("UTC", description="IANA zone of times in messages (Asia/Ho_Chi_Minh).")
    group_window_s: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Notifications within this window after the first go out as one message.",
    )
    max_messages_per_hour: int = Field(
        20, ge=1, le=3600, description="Beyond it, notifications wait and are merged."
    )

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return _known_zone(value)

    @model_validator(mode="after")
    def _address(self) -> Recipient:
        if self.email is None and self.webhook is None:
            raise ValueError("a recipient needs an email or a webhook")
        return self


class EscalationLevel(FrozenModel):
    """Who is notified once an alert has been active and unacknowledged for ``after_s``."""

    after_s: float = Field(0.0, ge=0)
    recipients: list[Name] = Field(..., min_length=1)


class Policy(FrozenModel):
    """An escalation policy: level 0 is notified when an alert is raised (after its ``after_s``),
    each later level when the alert is still unacknowledged after its ``after_s``."""

    id: Name
    levels: list[EscalationLevel] = Field(..., min_length=1)
    notify_cleared: bool = Field(True, description="Tell those notified when the alert clears.")
    notify_acknowledged: bool = Field(False, description="Tell them when it is acknowledged.")

    @model_validator(mode="after")
    def _increasing(self) -> Policy:
        delays = [level.after_s for level in self.levels]
        if delays != sorted(delays) or len(set(delays)) != len(delays):
            raise ValueError("escalation levels must have increasing after_s")
        return self


class WebhookConfig(FrozenModel):
    """An HTTP endpoint that receives notifications as JSON (docs/alerts.md, schema
    ``alerts-webhook``)."""

    id: Name
    url: AnyHttpUrl
    secret: Secret | None = Field(
        None, description="Signs each body: header X-Etalon-Signature: sha256=HMAC(secret, body)."
    )
    timeout_s: float = Field(10.0, gt=0, le=300)
    max_attempts: int = Field(8, ge=1, le=100)
    retry: Backoff = Field(default_factory=lambda: Backoff(initial_s=1.0, max_s=300.0))
    ca_file: Path | None = None
    verify_tls: bool = True
    proxy: AnyHttpUrl | None = Field(
        None, description="HTTP proxy to reach the webhook (the environment's is not used)."
    )

    @model_validator(mode="after")
    def _secret_resolves(self) -> WebhookConfig:
        if self.secret is not None:
            self.secret.resolve()
        return self


class SmtpConfig(FrozenModel):
    """The mail server notifications go through."""

    host: str = Field(..., min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls (port 587), implicit tls (465), or none (a local relay)."
    )
    username: str | None = None
    password: Secret | None = None
    sender: str = Field(..., pattern=_EMAIL, description="The From address.")
    timeout_s: float = Field(30.0, gt=0, le=300)
    max_attempts: int = Field(8, ge=1, le=100)
    retry: Backoff = Field(default_factory=lambda: Backoff(initial_s=5.0, max_s=600.0))
    ca_file: Path | None = Field(None, description="CA of the server's certificate (private CAs).")
    verify_tls: bool = True

    @model_validator(mode="after")
    def _login(self) -> SmtpConfig:
        if self.password is not None:
            if self.username is None:
                raise ValueError("password given without username")
            self.password.resolve()
        if self.username is not None and self.security == "none":
            raise ValueError("a login needs security: starttls or tls (never a password in clear)")
        return self


class AckConfig(FrozenModel):
    """What an acknowledgement needs."""

    comment_required: bool = Field(True, description="GxP sites require a comment.")


class ShelveConfig(FrozenModel):
    """How long an alert may be shelved."""

    max_s: float = Field(8 * 3600.0, gt=0, le=30 * 86_400)


class AlertsMqttConfig(FrozenModel):
    """Alert events and retained states on ``{prefix}/v1/{site}/alerts/...``."""

    enabled: bool = True


class AlertsConfig(FrozenModel):
    """The gateway's alert engine."""

    rules: list[Rule] = Field(default_factory=list)
    recipients: list[Recipient] = Field(default_factory=list)
    policies: list[Policy] = Field(default_factory=list)
    default_policy: Name | None = Field(None, description="Policy of rules that name none.")
    schedules: list[Schedule] = Field(default_factory=list)
    webhooks: list[WebhookConfig] = Field(default_factory=list)
    smtp: SmtpConfig | None = None
    mqtt: AlertsMqttConfig = Field(default_factory=AlertsMqttConfig)
    ack: AckConfig = Field(default_factory=AckConfig)
    shelve: ShelveConfig = Field(default_factory=ShelveConfig)
    link: str | None = Field(
        None,
        description="Link to an alert in notifications, with {id} (default: the API's URL of "
        "the alert, when the API is served).",
    )
    tick_s: float = Field(
        1.0, ge=0.05, le=60, description="How often timers (stale data, delays, escalation) run."
    )

    @model_validator(mode="after")
    def _references(self) -> AlertsConfig:
        for what, ids in (
            ("rule", [r.id for r in self.rules]),
            ("recipient", [r.id for r in self.recipients]),
            ("policy", [p.id for p in self.policies]),
            ("schedule", [s.id for s in self.schedules]),
            ("webhook", [w.id for w in self.webhooks]),
        ):
            seen: set[str] = set()
            for item in ids:
                if item in seen:
                    raise ValueError(f"{what} id {item!r} appears twice")
                seen.add(item)
        recipients = {r.id: r for r in self.recipients}
        webhooks = {w.id for w in self.webhooks}
        for recipient in self.recipients:
            if recipient.webhook is not None and recipient.webhook not in webhooks:
                raise ValueError(
                    f"recipient {recipient.id!r} names webhook {recipient.webhook!r}, "
                    "which is not configured"
                )
            if recipient.email is not None and self.smtp is None:
                raise ValueError(f"recipient {recipient.id!r} has an email but smtp is not set")
        for policy in self.policies:
            for level in policy.levels:
                for name in level.recipients:
                    if name not in recipients:
                        raise ValueError(f"policy {policy.id!r} names unknown recipient {name!r}")
        policies = {p.id for p in self.policies}
        if self.default_policy is not None and self.default_policy not in policies:
            raise ValueError(f"default_policy {self.default_policy!r} is not a policy")
        schedules = {s.id for s in self.schedules}
        for rule in self.rules:
            if rule.policy is not None and rule.policy not in policies:
                raise ValueError(f"rule {rule.id!r} names unknown policy {rule.policy!r}")
            if rule.schedule is not None and rule.schedule not in schedules:
                raise ValueError(f"rule {rule.id!r} names unknown schedule {rule.schedule!r}")
        if self.link is not None and "{id}" not in self.link:
            raise ValueError("link must contain {id}")
        return self

    def policy_of(self, rule: Any) -> Policy | None:
        """The escalation policy a rule notifies (None: MQTT only)."""
        name = rule.policy or self.default_policy
        return next((p for p in self.policies if p.id == name), None)


# -- cross-checking rules against agent configs ------------------------------------------------


def agent_channels(agents: list[AgentConfig]) -> dict[str, dict[str, str]]:
    """``site/agent/instrument/channel`` → tags, for every channel the agents declare."""
    out: dict[str, dict[str, str]] = {}
    for agent in agents:
        for instrument in agent.instruments:
            for channel in getattr(instrument, "channels", []):
                path = f"{agent.site}/{agent.id}/{instrument.name}/{channel.name}"
                out[path] = dict(channel.tags)
    return out


def rule_channel_problems(
    alerts: AlertsConfig, agents: list[AgentConfig]
) -> tuple[list[tuple[tuple[str | int, ...], str]], list[str]]:
    """Check channel rules against the agents' channels.

    Returns (problems, notes): each problem is (field path, reason) — a pattern that names agents
    among those given but matches none of their channels; notes name patterns whose agents were
    not given (they cannot be checked here).
    """
    channels = agent_channels(agents)
    known_agents = {f"{a.site}/{a.id}" for a in agents}
    problems: list[tuple[tuple[str | int, ...], str]] = []
    notes: list[str] = []
    for index, rule in enumerate(alerts.rules):
        if not isinstance(rule, ChannelRule):
            continue
        for position, pattern in enumerate(rule.channels):
            owner = "/".join(pattern.split("/")[:2])
            given = [a for a in known_agents if PathMatcher([owner]).matches(a)]
            if not given:
                notes.append(f"rule {rule.id!r}: {pattern} names no agent given here (not checked)")
                continue
            matcher = PathMatcher([pattern])
            hits = [
                path
                for path, tags in channels.items()
                if matcher.matches(path) and all(tags.get(k) == v for k, v in rule.tags.items())
            ]
            if not hits:
                declared = sorted(p for p in channels if "/".join(p.split("/")[:2]) in given)
                shown = ", ".join(declared[:8]) + (" ..." if len(declared) > 8 else "")
                problems.append(
                    (
                        ("alerts", "rules", index, "channels", position),
                        f"{pattern} names no channel of agent {', '.join(sorted(given))}"
                        + (f" with tags {rule.tags}" if rule.tags else "")
                        + f" (it has {shown or 'none'})",
                    )
                )
    return problems, notes
