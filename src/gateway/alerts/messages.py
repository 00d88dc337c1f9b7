"""What people read about alerts, in English and Vietnamese: one-line descriptions, e-mails,
and the localized parts of webhook bodies and CLI output."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from email import policy
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from core.i18n import MessageTable, known, load_table, register, t
from gateway.records.messages import text_of

ALERT_MESSAGES: MessageTable = load_table(__package__, "messages.json")

ACTION_MESSAGES: MessageTable = load_table(__package__, "actions.json")
AUDIT_ACTIONS: dict[str, str] = {texts["en"]: texts["vi"] for texts in ACTION_MESSAGES.values()}
"""Vietnamese names of the audit log's alert actions. The log stores actions in English (they
are data, filtered and exported as such); they are translated only where people read them. The
dashboard has the same table (web/i18n.js, ``ACTIONS``)."""

register(ALERT_MESSAGES)
register(ACTION_MESSAGES)


def action_name(action: str, lang: str = "en") -> str:
    """An audit action as people read it in ``lang``; one this module does not know is shown as
    stored."""
    key = f"alerts.action.{action}"
    return t(key, lang) if known(key) else action


SUBJECT_LABEL: MessageTable = load_table(__package__, "subject_labels.json")
"""What a notification calls its subject, by rule kind (``Channel`` where a kind has none)."""


def number(value: Any) -> str:
    """A value as a person reads it (up to 8 significant digits, no float noise)."""
    if isinstance(value, float):
        return f"{value:.8g}"
    return str(value)


def when(ts_ns: int | None, timezone: str = "UTC") -> str:
    """A time as ``2026-11-23 17:04:05 +07`` in ``timezone``."""
    if ts_ns is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ts_ns / 1e9, zoneinfo.ZoneInfo(timezone))
    offset = moment.strftime("%z")
    shown = offset[:3] if offset.endswith("00") else f"{offset[:3]}:{offset[3:]}"
    return moment.strftime("%Y-%m-%d %H:%M:%S ") + ("UTC" if timezone == "UTC" else shown)


def _date(ts_ns: Any) -> str:
    if not isinstance(ts_ns, int):
        return "-"
    return dt.datetime.fromtimestamp(ts_ns / 1e9, dt.UTC).strftime("%Y-%m-%d")


def _days_left(detail: dict[str, Any]) -> str:
    days = detail.get("days_left")
    return f"{days:.1f}" if isinstance(days, int | float) else "-"


def _ahead(key: str, lang: str, detail: dict[str, Any], date_key: str) -> str:
    """The text ``key`` of a date ahead (the detail's ``date_key``) and the days left to it."""
    return t(key, lang, date=_date(detail.get(date_key)), days=_days_left(detail))


_DETAIL_NUMBERS: dict[str, dict[str, str]] = {
    "standard_certificate": {"reference": "reference", "u": "expanded_u"},
    "calibration_range": {
        "low": "low", "high": "high", "corrected": "corrected", "u": "u_corrected",
    },
    "conformity": {
        "value": "measured", "U": "expanded_uncertainty", "k": "coverage_factor",
        "lower": "tolerance_lower", "upper": "tolerance_upper",
        "acc_lower": "acceptance_lower", "acc_upper": "acceptance_upper",
    },
}  # fmt: skip
"""The numbers of an alert's detail that its kind's line shows: kind → {placeholder of the
text: key of the detail}, each as :func:`number` writes it."""


def describe(alert: dict[str, Any], lang: str = "en") -> str:
    """One line saying what the alert's condition is (or was)."""
    kind, detail = alert["kind"], alert.get("detail") or {}
    unit = alert.get("unit") or ""
    value, limit = alert.get("value"), alert.get("limit")
    reason = detail.get("reason") or t("alerts.unknown_reason", lang)
    shown = {name: number(detail.get(key)) for name, key in _DETAIL_NUMBERS.get(kind, {}).items()}
    if kind == "limits":
        side = detail.get("side")
        if not alert.get("condition"):
            return t("alerts.what.limits.back", lang, value=number(value), unit=unit).strip()
        key = "alerts.what.limits.high" if side == "high" else "alerts.what.limits.low"
        return t(key, lang, value=number(value), unit=unit, limit=number(limit)).replace("  ", " ")
    if kind == "rate":
        change = f"{value:+.6g}" if isinstance(value, int | float) else str(value)
        window = f"{number(detail.get('window_s'))} s"
        return t(
            "alerts.what.rate", lang, change=change, unit=unit, window=window, limit=number(limit)
        )
    if kind == "stale":
        return t("alerts.what.stale", lang, age=number(value), limit=number(limit))
    if kind == "bad_quality":
        return t("alerts.what.bad_quality", lang, count=value, reason=reason)
    if kind == "agent_offline":
        return t("alerts.what.agent_offline", lang, agent=alert["subject"], reason=reason)
    if kind == "instrument_unavailable":
        return t(
            "alerts.what.instrument_unavailable", lang, instrument=alert["subject"], reason=reason
        )
    if kind == "standard_certificate":
        return t("alerts.what.standard_certificate", lang, value=number(value), unit=unit, **shown)
    if kind == "standard_prediction":
        return _ahead("alerts.what.standard_prediction", lang, detail, "predicted_ns")
    if kind == "standard_control":
        return t("alerts.what.standard_control", lang, rule=alert["level"])
    if kind == "calibration_due":
        if alert["level"] == "overdue":
            return t("alerts.what.calibration_overdue", lang, date=_date(detail.get("due_ns")))
        return _ahead("alerts.what.calibration_due", lang, detail, "due_ns")
    if kind == "calibration_range":
        return t(
            "alerts.what.calibration_range",
            lang,
            value=number(value),
            unit=unit,
            certificate=detail.get("certificate") or "-",
            **shown,
        )
    if kind == "calibration_expired":
        return t(
            "alerts.what.calibration_expired",
            lang,
            certificate=detail.get("certificate") or "-",
            due=detail.get("due") or "-",
        )
    if kind == "conformity":
        decision = str(detail.get("decision") or "fail")
        probability = detail.get("conformance_probability")
        return t(
            "alerts.what.conformity",
            lang,
            decision=t(f"alerts.conformity.{decision}", lang)
            if known(f"alerts.conformity.{decision}")
            else decision,
            judged=t(f"alerts.conformity.{detail.get('judged') or 'value'}", lang),
            unit=unit,
            rule=detail.get("rule") or "-",
            p=f"{probability:.3g}" if isinstance(probability, float) else "-",
            **shown,
        )
    if kind == "records_integrity":
        code, params = detail.get("code"), detail.get("params")
        what = "-"
        if isinstance(code, str) and isinstance(params, dict):
            what = text_of(code, params, lang)
        return t("alerts.what.records_integrity", lang, what=what)
    if kind == "rule_unresolved":
        site, agent = alert["subject"].split("/")[:2]
        return t(
            "alerts.what.rule_unresolved",
            lang,
            rule=alert["rule_id"],
            channel=alert["subject"],
            agent=f"{site}/{agent}",
        )
    return f"{kind}: {number(value)} {unit}".strip()


def duration(seconds: float, lang: str) -> str:
    """``90 s``, ``15 min``, ``2 h`` (or ``15 phút``...)."""
    if seconds < 60:
        return t("alerts.unit.s", lang, n=f"{seconds:g}")
    if seconds < 3600:
        return t("alerts.unit.min", lang, n=f"{seconds / 60:.3g}")
    return t("alerts.unit.h", lang, n=f"{seconds / 3600:.3g}")


def event_text(event: dict[str, Any], lang: str) -> str:
    """``raised``, ``acknowledged by nguyen``, ``escalated: ...`` in the recipient's language."""
    name = event["event"]
    if name == "acknowledged":
        return t("alerts.event.acknowledged", lang, who=event.get("actor") or "?")
    if name == "escalated":
        return t("alerts.event.escalated", lang, duration=duration(event.get("after_s", 0), lang))
    return t(f"alerts.event.{name}", lang)


def summary(events: list[dict[str, Any]], lang: str) -> str:
    """``3 raised, 1 cleared`` in the recipient's language."""
    counts: dict[str, int] = {}
    for event in events:
        counts[event["event"]] = counts.get(event["event"], 0) + 1
    return ", ".join(
        t(f"alerts.count.{name}", lang, n=counts[name])
        for name in ("raised", "escalated", "cleared", "acknowledged")
        if counts.get(name)
    )


def alert_link(template: str | None, alert_id: int) -> str | None:
    """The link to an alert, from a template with ``{id}``."""
    return None if template is None else template.replace("{id}", str(alert_id))


MAIL_MAX_LISTED = 100


_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def one_line(text: str) -> str:
    """Text with every control character and line break made a space: a header value that
    cannot inject a header, a body line that cannot start another (a reason or a comment comes
    from outside: an instrument, an agent, an operator)."""
    return _BREAKS.sub(" ", text).strip()


def render_email(
    events: list[dict[str, Any]],
    *,
    recipient: Any,
    sender: str,
    site: str,
    gateway: str,
    link_template: str | None,
) -> EmailMessage:
    """One plain-text e-mail for a group of notifications, in the recipient's language."""
    lang, zone = recipient.language, recipient.timezone
    first = events[0]["alert"]
    if len(events) == 1:
        subject = t(
            "alerts.mail.subject_one",
            lang,
            site=site,
            severity=t(f"alerts.severity.{first['severity']}", lang),
            event=event_text(events[0], lang),
            subject=f"{first['subject']} — {describe(first, lang)}",
        )
    else:
        subject = t(
            "alerts.mail.subject_many",
            lang,
            site=site,
            count=len(events),
            summary=summary(events, lang),
        )
    lines = [
        t(
            "alerts.mail.intro",
            lang,
            gateway=gateway,
            site=site,
            count=len(events),
            name=recipient.name,
        ),
        "",
    ]
    for number_, event in enumerate(events[:MAIL_MAX_LISTED], start=1):
        alert = event["alert"]
        label = SUBJECT_LABEL.get(alert["kind"], {}).get(lang) or t("alerts.label.subject", lang)
        width = 14
        rows = [
            (label, alert["subject"]),
            (t("alerts.label.what", lang), describe(alert, lang)),
            (
                t("alerts.label.value", lang),
                f"{number(alert.get('value'))} {alert.get('unit') or ''}",
            ),
            (
                t("alerts.label.limit", lang),
                f"{number(alert.get('limit'))} {alert.get('unit') or ''}",
            ),
            (t("alerts.label.time", lang), when(event.get("at_ns"), zone)),
            (t("alerts.label.state", lang), t(f"alerts.state.{alert['state']}", lang)),
            (t("alerts.label.rule", lang), f"{alert['rule_id']} ({alert['kind']})"),
        ]
        if event.get("comment"):
            rows.append((t("alerts.label.comment", lang), str(event["comment"])))
        link = alert_link(link_template, alert["id"])
        if link:
            rows.append((t("alerts.label.link", lang), link))
        severity = t(f"alerts.severity.{alert['severity']}", lang)
        lines.append(one_line(f"{number_}. [{alert['id']}] {severity} {event_text(event, lang)}"))
        lines += [f"   {name + ':':<{width}} {one_line(value)}" for name, value in rows]
        lines.append("")
    if len(events) > MAIL_MAX_LISTED:
        lines += [t("alerts.mail.more", lang, count=len(events) - MAIL_MAX_LISTED), ""]
    lines.append(t("alerts.mail.ack_hint", lang))
    # Unfolded headers: Python's folding of long non-ASCII subjects drops the space between
    # two encoded words ("50 xuất" arrives as "50xuất"); one line of up to 998 is RFC 5322's.
    message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
    subject = one_line(subject)
    message["Subject"] = subject if len(subject) <= 240 else subject[:239] + "…"
    message["From"] = sender
    message["To"] = recipient.email
    message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = make_msgid(domain="etalon.invalid")
    message["Content-Language"] = lang
    message.set_content("\n".join(lines) + "\n", charset="utf-8")
    return message
