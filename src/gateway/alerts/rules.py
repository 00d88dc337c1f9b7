"""The alert rules in force: the config's, reconciled with the changes an admin made through
the API (kept in ``alert_rules``, audited with before and after), compiled into matchers.

A rule from the config file is in force unless an admin changed it through the API since the
config last changed that rule; every difference from the last run is audited at start.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError

from gateway.alerts.checks import CompiledRule
from gateway.alerts.config import AlertsConfig, Policy
from gateway.alerts.lifecycle import Alert, InvalidAlertInput
from gateway.alerts.rule_config import (
    BUILT_IN_CALIBRATION_RULES,
    BUILT_IN_RECORDS_RULE,
    CHANNEL_KINDS,
    RECORDS_KIND,
    LimitsRule,
    PathMatcher,
    Rule,
    rule_definition,
    rule_hash,
)
from gateway.alerts.store import AuditRow, audit_trail, load_rules, save_rules
from gateway.records.store import RecordStore

RULE = TypeAdapter(Rule)


@dataclass
class RuleInForce:
    """A rule with where it came from."""

    rule: Any
    source: str
    config_hash: str | None
    updated_ns: int
    updated_by: str


def rule_audit(
    now: int,
    actor: str,
    action: str,
    rule_id: str,
    before: Any,
    after: Any,
    comment: str | None,
) -> AuditRow:
    """The audit entry of a change to a rule (before and after)."""
    return AuditRow(
        now,
        actor,
        action,
        f"alert-rule:{rule_id}",
        {"rule": rule_id, "before": before, "after": after, "comment": comment},
    )


@dataclass(eq=False)
class RuleBook:
    """The rules in force and their compiled form. ``on_compiled`` is called after every
    compilation (the evaluator re-attaches its channels' checks)."""

    config: AlertsConfig
    records: RecordStore
    wall_ns: Callable[[], int]
    on_compiled: Callable[[], None] = lambda: None
    rules_in_force: dict[str, RuleInForce] = field(default_factory=dict, init=False)
    rules: dict[str, CompiledRule] = field(default_factory=dict, init=False)
    channel_rules: list[CompiledRule] = field(default_factory=list, init=False)

    async def reconcile(self) -> None:
        """The rules in force: the config's, except API changes made since the config last
        changed that rule; every difference from the last run is audited (before and after)."""
        stored = await self.records.run(load_rules)
        now = self.wall_ns()
        upserts: list[tuple[str, dict[str, Any], str, str | None, int, str]] = []
        deletes: list[str] = []
        audits: list[AuditRow] = []
        in_force: dict[str, RuleInForce] = {}
        for rule in self.config.rules:
            digest, definition = rule_hash(rule), rule_definition(rule)
            old = stored.pop(rule.id, None)
            if old is not None and old["source"] == "api" and old["config_hash"] == digest:
                try:
                    kept = RULE.validate_python(old["definition"])
                except ValidationError:
                    kept = None
                if kept is not None:
                    in_force[rule.id] = RuleInForce(
                        kept, "api", digest, old["updated_ns"], old["updated_by"]
                    )
                    continue
            in_force[rule.id] = RuleInForce(rule, "config", digest, now, "config")
            if old is None or old["definition"] != definition:
                action = "alert rule added" if old is None else "alert rule changed"
                audits.append(
                    rule_audit(
                        now,
                        "config",
                        action,
                        rule.id,
                        old and old["definition"],
                        definition,
                        "the gateway config file",
                    )
                )
                upserts.append((rule.id, definition, "config", digest, now, "config"))
            elif old["source"] != "config":
                upserts.append((rule.id, definition, "config", digest, now, "config"))
            else:
                in_force[rule.id].updated_ns = old["updated_ns"]
        for rule_id, old in stored.items():
            if old["source"] == "api" and old["config_hash"] is None:
                try:
                    in_force[rule_id] = RuleInForce(
                        RULE.validate_python(old["definition"]),
                        "api",
                        None,
                        old["updated_ns"],
                        old["updated_by"],
                    )
                    continue
                except ValidationError:
                    pass
            deletes.append(rule_id)
            audits.append(
                rule_audit(
                    now,
                    "config",
                    "alert rule removed",
                    rule_id,
                    old["definition"],
                    None,
                    "the gateway config file",
                )
            )
        if upserts or deletes or audits:
            await self.records.run(
                functools.partial(save_rules, upserts=upserts, deletes=deletes, audits=audits)
            )
        self.rules_in_force = in_force
        self.compile()

    def compile(self) -> None:
        """Compile the rules in force (matchers, schedules), keeping each schedule's state."""
        schedules = {s.id: s for s in self.config.schedules}
        now = self.wall_ns()
        compiled: dict[str, CompiledRule] = {}
        for rule_id, entry in self.rules_in_force.items():
            rule = entry.rule
            if not rule.enabled:
                continue
            if rule.kind in CHANNEL_KINDS:
                patterns = rule.channels
            elif rule.kind == "agent_offline":
                patterns = rule.agents
            elif rule.kind == "instrument_unavailable":
                patterns = rule.instruments
            elif rule.kind == RECORDS_KIND:
                patterns = ["*"]
            else:
                patterns = rule.standards
            schedule = schedules.get(rule.schedule) if rule.schedule else None
            previous = self.rules.get(rule_id)
            in_schedule = schedule.active(now) if schedule is not None else True
            if previous is not None and previous.schedule is schedule:
                in_schedule = previous.in_schedule  # the tick audits the change
            compiled[rule_id] = CompiledRule(rule, PathMatcher(patterns), schedule, in_schedule)
        if not any(entry.rule.kind == RECORDS_KIND for entry in self.rules_in_force.values()):
            builtin = BUILT_IN_RECORDS_RULE
            compiled[builtin.id] = CompiledRule(builtin, PathMatcher(["*"]))
        kinds = {entry.rule.kind for entry in self.rules_in_force.values()}
        for builtin_rule in BUILT_IN_CALIBRATION_RULES:
            if builtin_rule.kind not in kinds and builtin_rule.id not in compiled:
                compiled[builtin_rule.id] = CompiledRule(
                    builtin_rule, PathMatcher(builtin_rule.channels)
                )
        self.rules = compiled
        self.channel_rules = [r for r in compiled.values() if r.kind in CHANNEL_KINDS]
        self.on_compiled()

    def policy(self, alert: Alert) -> Policy | None:
        """The escalation policy an alert's rule notifies (None: MQTT only)."""
        entry = self.rules_in_force.get(alert.rule_id)
        if entry is None:
            builtin = self.rules.get(alert.rule_id)  # the built-in records rule
            return None if builtin is None else self.config.policy_of(builtin.config)
        return self.config.policy_of(entry.rule)

    def of_kind(self, kind: str) -> list[CompiledRule]:
        """The compiled rules of one kind."""
        return [r for r in self.rules.values() if r.kind == kind]

    def limits_for(
        self, site: str, agent: str, instrument: str, channel: str, tags: dict[str, str]
    ) -> tuple[float | None, float | None] | None:
        """The band inside which no limits rule raises anything for this channel (the
        innermost of its enabled rules' levels), or None when no limits rule watches it."""
        path = f"{site}/{agent}/{instrument}/{channel}"
        low: float | None = None
        high: float | None = None
        found = False
        for rule in self.rules.values():
            config = rule.config
            if not isinstance(config, LimitsRule) or not config.enabled:
                continue
            if not rule.covers(path, tags):
                continue
            found = True
            for level in config.levels:
                if level.low is not None:
                    low = level.low if low is None else max(low, level.low)
                if level.high is not None:
                    high = level.high if high is None else min(high, level.high)
        return (low, high) if found else None

    def view(self, unresolved: dict[str, set[str]]) -> list[dict[str, Any]]:
        """The rules in force, where each came from, and channels they name that are unknown."""
        out = []
        for rule_id, entry in sorted(self.rules_in_force.items()):
            compiled = self.rules.get(rule_id)
            out.append(
                {
                    "id": rule_id,
                    "kind": entry.rule.kind,
                    "enabled": entry.rule.enabled,
                    "source": entry.source,
                    "updated_ns": entry.updated_ns,
                    "updated_by": entry.updated_by,
                    "in_schedule": compiled.in_schedule if compiled is not None else None,
                    "unresolved_channels": sorted(
                        p for p, rules in unresolved.items() if rule_id in rules
                    ),
                    "definition": rule_definition(entry.rule),
                }
            )
        return out

    def validate(self, rule_id: str, definition: dict[str, Any]) -> Any:
        """An admin's rule definition, checked against the rule schema and the config's policies
        and schedules; raises InvalidAlertInput."""
        if definition.get("id", rule_id) != rule_id:
            raise InvalidAlertInput(f"the body's id {definition.get('id')!r} is not {rule_id!r}")
        try:
            rule = RULE.validate_python({**definition, "id": rule_id})
        except ValidationError as exc:
            reasons = "; ".join(
                f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5]
            )
            raise InvalidAlertInput(f"invalid rule: {reasons}") from None
        policies = {p.id for p in self.config.policies}
        schedules = {s.id for s in self.config.schedules}
        if rule.policy is not None and rule.policy not in policies:
            raise InvalidAlertInput(f"unknown policy {rule.policy!r}")
        if rule.schedule is not None and rule.schedule not in schedules:
            raise InvalidAlertInput(f"unknown schedule {rule.schedule!r}")
        return rule

    async def put(self, rule_id: str, rule: Any, actor: str, comment: str | None) -> bool:
        """Put a validated rule in force (an admin's change), audited with before and after;
        False when it is the rule already in force (nothing is written)."""
        after = rule_definition(rule)
        old = self.rules_in_force.get(rule_id)
        before = rule_definition(old.rule) if old is not None else None
        if before == after:
            return False
        configured = next((r for r in self.config.rules if r.id == rule_id), None)
        digest = rule_hash(configured) if configured is not None else None
        now = self.wall_ns()
        audit = rule_audit(
            now,
            actor,
            "alert rule added" if old is None else "alert rule changed",
            rule_id,
            before,
            after,
            comment,
        )
        await self.records.run(
            functools.partial(
                save_rules,
                upserts=[(rule_id, after, "api", digest, now, actor)],
                deletes=[],
                audits=[audit],
            )
        )
        self.rules_in_force[rule_id] = RuleInForce(rule, "api", digest, now, actor)
        self.compile()
        return True

    async def history(self, rule_id: str) -> list[dict[str, Any]]:
        """Audited changes of one rule, oldest first."""
        return await self.records.run(
            functools.partial(audit_trail, subject=f"alert-rule:{rule_id}")
        )
