"""``etalon alerts list|show|ack|comment|shelve|unshelve|rules``: the gateway's alerts from the
command line, over its HTTP API.

The gateway is ``--url`` (default ``$ETALON_API_URL``, else http://127.0.0.1:8080); the token is
read from ``--token-file`` or ``$ETALON_API_TOKEN``. Exit status: 0 done, 1 the gateway refused
(unknown alert, nothing to acknowledge, missing comment, token refused...), 2 bad command line,
3 the gateway cannot be reached.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx

from core.exits import EXIT_CONFIG, EXIT_OK, EXIT_TRANSPORT
from core.i18n import language, t
from gateway.alerts.messages import action_name, when

DEFAULT_URL = "http://127.0.0.1:8080"
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def duration_s(text: str) -> float:
    """``90``, ``90s``, ``30m``, ``2h``, ``1d`` → seconds (argparse type)."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(t("alerts.bad_duration", language(), value=text))
    return float(match.group(1)) * _UNITS[match.group(2)]


def add_alerts_parser(sub: Any) -> None:
    """The ``alerts`` subcommand and its own subcommands."""
    alerts = sub.add_parser(
        "alerts", help="list, show, acknowledge and shelve alerts (talks to a gateway)"
    )
    alerts.add_argument(
        "--url",
        default=os.environ.get("ETALON_API_URL", DEFAULT_URL),
        help="the gateway's API (default $ETALON_API_URL or %(default)s)",
    )
    alerts.add_argument(
        "--token-file", type=Path, help="file holding the API token (default $ETALON_API_TOKEN)"
    )
    alerts.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    alerts.add_argument("--json", action="store_true", help="print the gateway's JSON answer")
    actions = alerts.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="alerts not back to normal (--all: every alert)")
    listing.add_argument("--all", action="store_true")
    listing.add_argument("--state")
    listing.add_argument("--severity", choices=("warning", "alarm", "critical"))
    show = actions.add_parser("show", help="one alert and its audit trail")
    show.add_argument("id", type=int)
    ack = actions.add_parser("ack", help="acknowledge an alert")
    ack.add_argument("id", type=int)
    ack.add_argument("-m", "--comment", help="what was seen and done (often required)")
    comment = actions.add_parser("comment", help="add a comment to an alert's record")
    comment.add_argument("id", type=int)
    comment.add_argument("-m", "--comment", required=True)
    shelve = actions.add_parser("shelve", help="shelve an alert for a while, with a reason")
    shelve.add_argument("id", type=int)
    shelve.add_argument(
        "--for", dest="duration", type=duration_s, required=True, help="how long: 30m, 2h, 1d"
    )
    shelve.add_argument("--reason", required=True)
    unshelve = actions.add_parser("unshelve", help="end shelving now")
    unshelve.add_argument("id", type=int)
    unshelve.add_argument("-m", "--comment")
    actions.add_parser("rules", help="the rules in force")


class Refused(Exception):
    """The gateway answered with an error, or could not be asked; ``code`` is the exit status,
    ``key`` and ``values`` the message in the catalogue (``alerts.refused.*``)."""

    def __init__(self, key: str, code: int, **values: object) -> None:
        self.code = code
        self.key = key
        self.values = values
        super().__init__(t(key, "en", **values))

    def text(self, lang: str) -> str:
        """The message in ``lang``."""
        return t(self.key, lang, **self.values)


def _token(args: argparse.Namespace) -> str | None:
    token_file: Path | None = args.token_file
    if token_file is not None:
        try:
            return token_file.read_text(encoding="utf-8").splitlines()[0].strip()
        except (OSError, IndexError) as exc:
            raise Refused(
                "alerts.refused.token_file", EXIT_CONFIG, file=token_file, reason=exc
            ) from exc
    return os.environ.get("ETALON_API_TOKEN") or None


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
) -> Any:
    token = _token(args)
    # The gateway's refusals come back in the command's language (docs/api.md).
    headers = {"Accept-Language": language(getattr(args, "lang", None))}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    url = args.url.rstrip("/")
    try:
        with httpx.Client(base_url=url, timeout=args.timeout, trust_env=False) as client:
            response = client.request(method, path, json=body, params=params, headers=headers)
    except httpx.HTTPError as exc:
        raise Refused(
            "alerts.refused.unreachable",
            EXIT_TRANSPORT,
            url=url,
            reason=exc or type(exc).__name__,
        ) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {"detail": response.text[:300]}
    if response.status_code < 400:
        return answer
    detail = answer.get("detail") if isinstance(answer, dict) else answer
    if isinstance(detail, list):  # FastAPI's validation errors
        detail = "; ".join(
            f"{'.'.join(str(p) for p in d.get('loc', [])[1:])}: {d.get('msg')}" for d in detail
        )
    if response.status_code == 401:
        key = "alerts.refused.token" if token else "alerts.refused.no_token"
        raise Refused(key, EXIT_CONFIG, detail=detail)
    raise Refused("alerts.refused.http", EXIT_CONFIG, detail=detail, status=response.status_code)


def _print_list(alerts: list[dict[str, Any]], lang: str) -> None:
    if not alerts:
        print(t("alerts.list.empty", lang))
        return
    print(t("alerts.list.header", lang))
    for alert in alerts:
        since = when(alert.get("active_since_ns") or alert.get("pending_since_ns"))
        state = alert["state"]
        if alert.get("shelved_until_ns"):
            state += "*"
        if alert.get("suppressed"):
            state = f"({alert['suppressed']})"
        print(
            f"{alert['id']:<6} {alert['severity']:<9} {state:<25} {since[:19]:<20} "
            f"{alert['subject']}"
        )
        print(f"{'':<6} {alert.get('message') or ''}")


def _print_show(answer: dict[str, Any], lang: str) -> None:
    alert = answer["alert"]
    rows = [
        ("id", alert["id"]),
        (t("alerts.label.rule", lang), f"{alert['rule_id']} ({alert['kind']})"),
        (t("alerts.label.subject", lang), alert["subject"]),
        (t("alerts.label.what", lang), alert.get("message")),
        (t("alerts.label.state", lang), t(f"alerts.state.{alert['state']}", lang)),
        (t("alerts.label.value", lang), f"{alert.get('value')} {alert.get('unit') or ''}"),
        (t("alerts.label.limit", lang), alert.get("limit")),
        (t("alerts.label.time", lang), when(alert.get("active_since_ns"))),
    ]
    if alert.get("shelved_until_ns"):
        rows.append(
            (
                t("alerts.label.shelved", lang),
                f"{when(alert['shelved_until_ns'])} ({alert.get('shelve_reason')})",
            )
        )
    if alert.get("suppressed"):
        rows.append(
            (
                t("alerts.label.suppressed", lang),
                t(f"alerts.suppressed.{alert['suppressed']}", lang),
            )
        )
    for name, value in rows:
        print(f"{name + ':':<14} {value}")
    print(f"\n{t('alerts.history', lang)}:")
    for entry in answer["history"]:
        details = entry["details"]
        comment = f' "{details["comment"]}"' if details.get("comment") else ""
        action = action_name(entry["action"], lang)
        print(f"  {when(entry['ts_ns'])}  {entry['actor']:<16} {action}{comment}")


def alerts_main(args: argparse.Namespace, lang: str) -> int:
    """Run one ``etalon alerts`` action."""
    action = args.action
    try:
        if action == "list":
            params: dict[str, Any] = {"all": args.all}
            if args.state:
                params["state"] = args.state
            if args.severity:
                params["severity"] = args.severity
            answer = _call(args, "GET", "/api/v1/alerts", params=params)
            if not args.json:
                _print_list(answer, lang)
        elif action == "show":
            answer = _call(args, "GET", f"/api/v1/alerts/{args.id}")
            if not args.json:
                _print_show(answer, lang)
        elif action == "rules":
            answer = _call(args, "GET", "/api/v1/alerts/rules")
            if not args.json:
                for rule in answer:
                    unresolved = ", ".join(rule["unresolved_channels"])
                    enabled = t(f"alerts.rule.{'on' if rule['enabled'] else 'off'}", lang)
                    unknown = t("alerts.rule.unknown", lang, channels=unresolved)
                    print(
                        f"{rule['id']:<24} {rule['kind']:<22} {rule['source']:<7} {enabled}"
                        + (f"  {unknown}" if unresolved else "")
                    )
        else:
            if action == "shelve":
                body: dict[str, Any] = {"duration_s": args.duration, "reason": args.reason}
            else:
                body = {"comment": args.comment}
            path, done = action, f"alerts.done.{action}"
            answer = _call(args, "POST", f"/api/v1/alerts/{args.id}/{path}", body)
            if not args.json:
                until = when(answer.get("shelved_until_ns"))
                print(t(done, lang, id=args.id, until=until))
    except Refused as exc:
        print(f"etalon alerts: {exc.text(lang)}", file=sys.stderr)
        return exc.code
    if args.json:
        print(json.dumps(answer, indent=2, ensure_ascii=False))
    return EXIT_OK
