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

The rules themselves are in :mod:`gateway.alerts.rule_config`.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import AnyHttpUrl, Field, field_validator, model_validator

from core.backoff import Backoff
from core.models import FrozenModel, Name
from core.secrets import Secret, check_login, check_secret

if TYPE_CHECKING:
    from edge_agent.config import AgentConfig
from gateway.alerts.rule_config import ChannelRule, PathMatcher, Rule

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


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
        check_secret(self.secret)
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
        check_login(self.username, self.password)
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
