"""Record-store tables of the alert engine (feature key ``alerts`` of ``records.MIGRATIONS``).

- ``alerts``: the current state of every alert that ever left normal (mutable; one row per alert).
- ``alert_rules``: the rules in force and where each came from (config or API), so changes between
  runs are audited with their before and after values.
- ``alert_outbox``: notifications to deliver (MQTT, webhook, e-mail) and whether they were; a
  restarted gateway delivers what was not delivered and never repeats what was.

Transitions, acknowledgements, comments, shelving and rule changes go to the append-only
``audit_log`` of the core schema.
"""

ALERTS_MIGRATIONS = [
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, rule_id TEXT NOT NULL,
        kind TEXT NOT NULL, site TEXT NOT NULL, subject TEXT NOT NULL, level TEXT NOT NULL,
        severity TEXT NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL,
        updated_ns INTEGER NOT NULL
    );
    CREATE INDEX alerts_state ON alerts(state);
    CREATE TABLE alert_rules (
        rule_id TEXT PRIMARY KEY, definition TEXT NOT NULL, source TEXT NOT NULL,
        config_hash TEXT, updated_ns INTEGER NOT NULL, updated_by TEXT NOT NULL
    );
    CREATE TABLE alert_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, created_ns INTEGER NOT NULL,
        medium TEXT NOT NULL, target TEXT NOT NULL, alert_id INTEGER NOT NULL,
        event TEXT NOT NULL, sent_ns INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
        failed TEXT
    );
    CREATE INDEX alert_outbox_open ON alert_outbox(sent_ns, failed);
    """,
]
"""Append steps; never edit one that has shipped."""
