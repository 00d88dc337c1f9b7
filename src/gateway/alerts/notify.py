"""Delivery of notifications: MQTT at once; e-mail and webhooks grouped per recipient, rate
limited, retried with backoff — in tasks of their own, never in the way of evaluation.

Every notification is a row of ``alert_outbox`` committed with the change that caused it, and
marked when delivered (or given up), so a restarted gateway delivers what was pending and never
repeats what was delivered. A delivery cut short by a crash may be repeated (at least once): a
webhook body's ``delivery`` value lets the receiver drop the duplicate.

Grouping: the first notification for a recipient opens a window of ``group_window_s``; all that
arrive before it closes go out as one message (50 channels failing together: one e-mail).
Rate limit: at most ``max_messages_per_hour`` messages per recipient and medium; beyond it,
notifications wait and are merged into the next message allowed.

The senders of one attempt are in :mod:`gateway.alerts.senders`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import orjson

from core.backoff import BackoffTimer
from core.logs import log_event
from core.metrics import Counters
from core.mqtt import MqttLink
from edge_agent.wire import Topics
from gateway.alerts.config import AlertsConfig, Recipient, WebhookConfig
from gateway.alerts.messages import alert_link, describe, event_text, render_email, summary
from gateway.alerts.payloads import WEBHOOK_SCHEMA
from gateway.alerts.senders import DeliveryFailed, SmtpSender, WebhookSender
from gateway.alerts.store import AuditRow, OutboxRow, mark_outbox
from gateway.records.store import RecordStore

log = logging.getLogger("etalon.gateway.alerts")

MAX_PER_MESSAGE = 500
"""Notifications in one message; more wait for the next one."""
HOUR_S = 3600.0


@dataclass(eq=False)
class Mailbox:
    """Notifications waiting for one recipient on one medium."""

    recipient: Recipient
    medium: str
    items: list[OutboxRow] = field(default_factory=list)
    opened: float | None = None
    sent: deque[float] = field(default_factory=deque)
    busy: bool = False

    def log(self, level: int, event: str, **fields: object) -> None:
        """Log an event of this mailbox's deliveries (its recipient and medium first)."""
        log_event(log, level, event, recipient=self.recipient.id, medium=self.medium, **fields)

    def due(self, now: float) -> float:
        """When the next message may go (grouping window, then the rate limit)."""
        assert self.opened is not None
        due = self.opened + self.recipient.group_window_s
        while self.sent and self.sent[0] <= now - HOUR_S:
            self.sent.popleft()
        if len(self.sent) >= self.recipient.max_messages_per_hour:
            due = max(due, self.sent[0] + HOUR_S)
        return due


@dataclass
class AlertStats(Counters):
    """Counters of the alert engine: evaluation and writes (the engine's), deliveries (its
    notifier's, which shares them); the API shows them."""

    readings_evaluated: int = 0
    events: int = 0
    changes: int = 0
    flushes: int = 0
    flush_errors: int = 0
    queue_depth: int = 0
    evaluation_errors: int = 0
    batches_dropped: int = 0
    mqtt_published: int = 0
    messages_sent: int = 0
    notifications_sent: int = 0
    delivery_attempts_failed: int = 0
    messages_failed: int = 0


@dataclass(eq=False)
class Notifier:
    """See the module doc."""

    config: AlertsConfig
    _: KW_ONLY
    site: str
    gateway: str
    records: RecordStore
    link: MqttLink | None
    topics: Topics
    link_template: Callable[[], str | None]
    wall_ns: Callable[[], int] = time.time_ns
    monotonic: Callable[[], float] = time.monotonic
    recipients: dict[str, Recipient] = field(init=False)
    webhook_configs: dict[str, WebhookConfig] = field(init=False)
    webhooks: dict[str, WebhookSender] = field(default_factory=dict, init=False)
    smtp: SmtpSender | None = field(default=None, init=False)
    boxes: dict[tuple[str, str], Mailbox] = field(default_factory=dict, init=False)
    stats: AlertStats = field(default_factory=AlertStats)
    """The engine's counters (its own when run alone)."""
    _mqtt_backlog: list[OutboxRow] = field(default_factory=list, init=False)
    _sent_ids: list[int] = field(default_factory=list, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set, init=False)
    _closing: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.recipients = {r.id: r for r in self.config.recipients}
        self.webhook_configs = {w.id: w for w in self.config.webhooks}
        if self.link is not None:
            self.link.on_connected.append(lambda _present: self._publish_backlog())
        self._prepare()

    def _prepare(self) -> None:
        """Make the senders now, at start: an HTTP client or a TLS context takes up to a second
        to make on a busy machine (CA bundles are parsed), which at the first alert would hold
        the event loop — and ingest, and the stale-data clocks — that long. One that cannot be
        made now is tried again at its first delivery, which fails (and is audited) if it still
        cannot."""
        for webhook_id in self.webhook_configs:
            try:
                self._webhook(webhook_id)
            except Exception as exc:  # noqa: BLE001 - its deliveries will say why
                log_event(
                    log, logging.WARNING, "webhook not ready", webhook=webhook_id, reason=str(exc)
                )
        if self.config.smtp is not None:
            try:
                self._smtp()
            except Exception as exc:  # noqa: BLE001 - its deliveries will say why
                log_event(log, logging.WARNING, "smtp not ready", reason=str(exc))

    def _webhook(self, webhook_id: str) -> WebhookSender:
        sender = self.webhooks.get(webhook_id)
        if sender is None:
            sender = self.webhooks[webhook_id] = WebhookSender(self.webhook_configs[webhook_id])
        return sender

    def _smtp(self) -> SmtpSender:
        if self.smtp is None:
            assert self.config.smtp is not None
            self.smtp = SmtpSender(self.config.smtp)
        return self.smtp

    # -- intake --------------------------------------------------------------------------------

    def submit(self, rows: list[OutboxRow]) -> None:
        """Committed outbox rows: MQTT is published now, the rest waits in its mailbox."""
        now = self.monotonic()
        for row in rows:
            if row.medium == "mqtt":
                self._mqtt_backlog.append(row)
                continue
            recipient = self.recipients.get(row.target)
            if recipient is None:
                continue  # a recipient removed from the config since: nothing to send to
            box = self.boxes.get((row.target, row.medium))
            if box is None:
                box = self.boxes[(row.target, row.medium)] = Mailbox(recipient, row.medium)
            if not box.items:
                box.opened = now
            box.items.append(row)
        self._publish_backlog()
        self._wake.set()

    def _publish_backlog(self) -> None:
        link = self.link
        if link is None:
            self._sent_ids += [row.id for row in self._mqtt_backlog]
            self._mqtt_backlog.clear()
            return
        if not link.connected.is_set() or not self._mqtt_backlog:
            return
        for row in self._mqtt_backlog:
            site = row.target
            root = self.topics.alerts(site)
            link.publish(f"{root}/events", orjson.dumps(row.event["event_message"]), qos=1)
            link.publish(
                f"{root}/state/{row.alert_id}",
                orjson.dumps(row.event["state_message"]),
                qos=1,
                retain=True,
            )
            self._sent_ids.append(row.id)
        self.stats.mqtt_published += len(self._mqtt_backlog)
        self._mqtt_backlog.clear()
        self._wake.set()

    # -- the loop --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Send what is due, until cancelled or closed."""
        while not self._closing:
            if self._sent_ids:
                ids, self._sent_ids = self._sent_ids, []
                await self._mark(ids, self.wall_ns(), None, 0)
            now = self.monotonic()
            next_due = float("inf")
            for box in self.boxes.values():
                if not box.items or box.busy:
                    continue
                due = box.due(now)
                if due <= now:
                    self._start(box)
                else:
                    next_due = min(next_due, due)
            self._wake.clear()
            timeout = None if next_due == float("inf") else max(0.0, next_due - self.monotonic())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._wake.wait()

    def _start(self, box: Mailbox) -> None:
        items, box.items = box.items[:MAX_PER_MESSAGE], box.items[MAX_PER_MESSAGE:]
        box.opened = self.monotonic() if box.items else None
        box.busy = True
        box.sent.append(self.monotonic())
        task = asyncio.create_task(self._deliver(box, items), name=f"alerts-{box.medium}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, box: Mailbox, items: list[OutboxRow]) -> None:
        """Send one message, retrying as the medium's policy says. Whatever goes wrong — the
        message cannot be built, the library raises something unforeseen — ends as a failure
        marked in the outbox and audited, never as a message silently lost."""
        ids = [item.id for item in items]
        try:
            try:
                send = self._sender(box, items)
                policy, max_attempts = self._retry_policy(box)
            except Exception as exc:  # noqa: BLE001 - a message that cannot be built is failed
                await self._give_up(box, items, f"{type(exc).__name__}: {exc}", 0)
                return
            timer = BackoffTimer(policy)
            attempts = 0
            while True:
                attempts += 1
                try:
                    await send()
                    break
                except DeliveryFailed as exc:
                    failure, permanent = exc.reason, exc.permanent
                except Exception as exc:  # noqa: BLE001 - unforeseen: repeating it cannot help
                    failure, permanent = f"{type(exc).__name__}: {exc}", True
                self.stats.delivery_attempts_failed += 1
                if permanent or attempts >= max_attempts:
                    await self._give_up(box, items, failure, attempts)
                    return
                delay = timer.next_delay()
                box.log(
                    logging.WARNING,
                    "alert notification retry",
                    attempt=attempts,
                    retry_in_s=round(delay, 2),
                    reason=failure,
                )
                await asyncio.sleep(delay)
            self.stats.messages_sent += 1
            self.stats.notifications_sent += len(items)
            await self._mark(ids, self.wall_ns(), None, attempts)
        except Exception as exc:  # noqa: BLE001 - the outbox keeps it: the next start sends it
            box.log(
                logging.ERROR,
                "alert notification not recorded",
                notifications=len(items),
                reason=f"{type(exc).__name__}: {exc}",
            )
        finally:
            box.busy = False
            self._wake.set()

    async def _give_up(
        self, box: Mailbox, items: list[OutboxRow], reason: str, attempts: int
    ) -> None:
        """Mark a message failed in the outbox, with an audit entry saying why."""
        recipient = box.recipient
        ids = [item.id for item in items]
        self.stats.messages_failed += 1
        box.log(
            logging.ERROR,
            "alert notification failed",
            attempts=attempts,
            notifications=len(items),
            reason=reason,
        )
        audit = AuditRow(
            self.wall_ns(),
            "gateway",
            "alert notification failed",
            f"recipient:{recipient.id}",
            {
                "medium": box.medium,
                "attempts": attempts,
                "reason": reason,
                "alerts": sorted({item.alert_id for item in items}),
                "outbox": ids,
            },
        )
        await self._mark(ids, None, reason, attempts, audit)

    def _retry_policy(self, box: Mailbox) -> tuple[Any, int]:
        if box.medium == "email":
            assert self.config.smtp is not None
            return self.config.smtp.retry, self.config.smtp.max_attempts
        webhook = self.webhook_configs[box.recipient.webhook or ""]
        return webhook.retry, webhook.max_attempts

    def _sender(self, box: Mailbox, items: list[OutboxRow]) -> Callable[[], Awaitable[None]]:
        recipient = box.recipient
        events = [item.event for item in items]
        template = self.link_template()
        if box.medium == "email":
            assert self.config.smtp is not None
            message = render_email(
                events,
                recipient=recipient,
                sender=self.config.smtp.sender,
                site=self.site,
                gateway=self.gateway,
                link_template=template,
            )
            smtp = self._smtp()
            return lambda: smtp.send(message)
        ids = [item.id for item in items]
        delivery = f"{self.gateway}:{min(ids)}-{max(ids)}:{len(ids)}"
        body = self.webhook_body(events, recipient, delivery, template)
        sender = self._webhook(recipient.webhook or "")
        return lambda: sender.send(body, delivery)

    def webhook_body(
        self,
        events: list[dict[str, Any]],
        recipient: Recipient,
        delivery: str,
        template: str | None,
    ) -> bytes:
        """The JSON body (schema ``etalon.alerts.notification/1``)."""
        lang = recipient.language
        body = {
            "schema": WEBHOOK_SCHEMA,
            "delivery": delivery,
            "site": self.site,
            "gateway": self.gateway,
            "sent_ns": self.wall_ns(),
            "recipient": {"id": recipient.id, "name": recipient.name, "language": lang},
            "summary": summary(events, lang),
            "events": [
                {
                    "event": event["event"],
                    "at_ns": event["at_ns"],
                    "escalation_level": event["escalation_level"],
                    "actor": event.get("actor"),
                    "comment": event.get("comment"),
                    "text": f"{event_text(event, lang)}: {event['alert']['subject']} — "
                    f"{describe(event['alert'], lang)}",
                    "link": alert_link(template, event["alert"]["id"]),
                    "alert": event["alert"],
                }
                for event in events
            ],
        }
        return orjson.dumps(body)

    async def _mark(
        self,
        ids: list[int],
        sent_ns: int | None,
        failed: str | None,
        attempts: int,
        audit: AuditRow | None = None,
    ) -> None:
        def run(db: Any) -> None:
            mark_outbox(db, ids, sent_ns, failed, attempts, audit)

        await self.records.run(run)

    async def close(self, grace_s: float = 2.0) -> None:
        """Stop: deliveries in progress get ``grace_s`` to finish; what is left stays in the
        outbox for the next start."""
        self._closing = True
        self._wake.set()
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
        if self._sent_ids:
            ids, self._sent_ids = self._sent_ids, []
            with contextlib.suppress(Exception):
                await self._mark(ids, self.wall_ns(), None, 0)
        for sender in self.webhooks.values():
            await sender.close()
        if self.smtp is not None:
            await self.smtp.close()
