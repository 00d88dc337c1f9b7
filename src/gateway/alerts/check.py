"""``etalon check gateway.yaml agent.yaml ...``: alert rules against the agents' channels.

A gateway config cannot know which channels exist (agents declare them), so the check needs the
agent configs given on the same command line. Problems are reported as ``FILE:LINE: field:
reason`` like every other config error; patterns whose agents were not given are noted, not
failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config_loader import load_yaml, locate
from edge_agent.config import AgentConfig
from gateway.alerts.config import AlertsConfig, rule_channel_problems


def cross_check(loaded: list[tuple[Path, str, Any]]) -> tuple[dict[Path, list[str]], list[str]]:
    """Problems per gateway file, and notes, for configs already validated one by one."""
    agents = [config for _, _, config in loaded if isinstance(config, AgentConfig)]
    problems: dict[Path, list[str]] = {}
    notes: list[str] = []
    for path, kind, config in loaded:
        alerts: AlertsConfig | None = getattr(config, "alerts", None) if kind == "gateway" else None
        if alerts is None or not alerts.rules:
            continue
        if not agents:
            if any(hasattr(rule, "channels") for rule in alerts.rules):
                notes.append(
                    f"{path}: alert rules' channels not checked: give the agent configs too "
                    f"(etalon check {path.name} agent.yaml ...)"
                )
            continue
        found, unchecked = rule_channel_problems(alerts, agents)
        notes += [f"{path}: {note}" for note in unchecked]
        if found:
            _, root = load_yaml(path)
            for loc, reason in found:
                line, shown = locate(root, loc)
                where = f"{path}:{line}" if line else str(path)
                problems.setdefault(path, []).append(f"{where}: {shown}: {reason}")
    return problems, notes
