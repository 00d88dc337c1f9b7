"""Audit actions are stored in English and read in the reader's language: every action that
docs/alerts.md lists has a Vietnamese name, on the command line and on the dashboard."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.alerts.messages import AUDIT_ACTIONS, action_name

ROOT = Path(__file__).resolve().parents[3]


def documented_actions() -> set[str]:
    """The actions of the audit-log table in docs/alerts.md."""
    text = (ROOT / "docs" / "alerts.md").read_text()
    table = text.split("## The audit log", 1)[1].split("An alert entry", 1)[0]
    rows = [line.split("|")[2] for line in table.splitlines() if line.startswith("| `")]
    return {action for row in rows for action in re.findall(r"`(alert [a-z ]+)`", row)}


def test_every_documented_action_has_a_vietnamese_name() -> None:
    actions = documented_actions()
    assert "alert shelved" in actions and "alert notification failed" in actions
    for action in actions:
        assert action_name(action, "en") == action
        assert action_name(action, "vi") not in ("", action), action
    assert action_name("alert unshelved", "vi") == "cảnh báo được bỏ tạm gác"
    assert set(AUDIT_ACTIONS) == actions


def test_an_unknown_action_is_shown_as_stored() -> None:
    assert action_name("standard certificate added", "vi") == "standard certificate added"


def test_the_dashboard_names_the_same_actions_the_same_way() -> None:
    script = (ROOT / "src" / "gateway" / "web" / "i18n.js").read_text()
    table = script.split("export const ACTIONS", 1)[1].split("};", 1)[0]
    pairs = dict(re.findall(r'"(alert [a-z ]+)": "([^"]+)"', table))
    assert pairs == AUDIT_ACTIONS
