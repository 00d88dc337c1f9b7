"""Alerts: rules evaluated at the gateway, a lifecycle a quality system can rely on, notifications.

- ``config``: the validated rule, recipient, policy, schedule and notifier models.
- ``checks``: conditions of each rule kind (limits, rate, stale, bad quality, standards).
- ``lifecycle``: alert states and their transitions (on/off delays, acknowledgement, shelving).
- ``engine``: the gateway's alert engine (event hub in, record store and notifiers out).
- ``notify``: grouping, rate limits, escalation delivery over MQTT, webhooks and e-mail.
- ``messages``: what recipients read, in English and Vietnamese.

See docs/alerts.md.
"""
