"""The gateway process: MQTT ingest → spool → store, records, self-metrics, status."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from typing import TYPE_CHECKING

from core.logs import log_event
from core.mqtt import MqttLink
from core.spool import Spool
from edge_agent import __version__
from edge_agent.wire import Topics
from gateway.api.context import ApiContext
from gateway.config import GatewayConfig
from gateway.corrections.corrector import Corrector
from gateway.ingest.events import EventHub, RecordsVerified
from gateway.ingest.ingest import Ingest
from gateway.metrics import GatewayMetrics
from gateway.records import deadletters
from gateway.records.chain import Finding, LedgerSettings
from gateway.records.monitor import RecordsMonitor
from gateway.records.store import RecordStore
from gateway.tsdb.factory import build_store
from gateway.tsdb.points import ROWS_WEIGHT, EntryMemo
from gateway.tsdb.store import LineProtocolStore, Store
from gateway.tsdb.writer import MEMORY_BYTES, Writer
from ledger import Checkpoint, CheckpointFile, LedgerError

if TYPE_CHECKING:
    from gateway.alerts.engine import AlertEngine
    from gateway.api.app import EmbeddedServer
    from gateway.api.views import LimitsProvider
    from gateway.hubsync.sync import HubSync
    from gateway.records.verify import RecordsReport
    from gateway.standards.service import StandardsService

log = logging.getLogger("etalon.gateway")

SHUTDOWN_GRACE_S = 5.0
"""On a clean stop, how long the gateway keeps writing what it has spooled."""


class Gateway:
    """One gateway process. ``await run(stop)`` until ``stop`` is set."""

    def __init__(self, config: GatewayConfig, store: Store | None = None) -> None:
        self.config = config
        self.metrics = GatewayMetrics()
        self.topics = Topics(config.mqtt.topic_prefix)
        self.store = store or build_store(config.store)
        self.spool = Spool(config.spool, "gateway", memory_bytes=MEMORY_BYTES)
        self.records = RecordStore(
            config.records.path, LedgerSettings.of(config.records, config.site, config.id)
        )
        self.started = asyncio.Event()
        self.ingest: Ingest | None = None
        self.hub = EventHub()
        self.api_url: str | None = None
        self.api_context: ApiContext | None = None
        self.standards: StandardsService | None = None
        self.limits: LimitsProvider | None = None
        """The channel limits the dashboard draws (the alert rules' when alerts run)."""
        self.alerts: AlertEngine | None = None
        self.corrector = Corrector(config.corrections, self.records)
        builder = self.store.builder if isinstance(self.store, LineProtocolStore) else None
        self.memo = EntryMemo(
            ROWS_WEIGHT * MEMORY_BYTES, lines=builder.lines if builder is not None else None
        )
        """Batches ingest decoded, handed to the writer with their spool entries."""
        self.monitor = RecordsMonitor(
            self.records,
            config.records,
            on_report=self._records_verified,
            on_finding=self._records_finding,
        )
        self._link: MqttLink | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.hubsync: HubSync | None = None
        """The push of the record ledger to the national hub, when ``hub:`` is configured."""

    def _status(self, state: str, reason: str | None) -> bytes:
        return json.dumps(
            {
                "schema": 1,
                "state": state,
                "site": self.config.site,
                "gateway": self.config.id,
                "version": __version__,
                "ts": time.time_ns(),
                "reason": reason,
            }
        ).encode()

    def _records_verified(self, report: RecordsReport, source: str) -> None:
        finding = None
        if report.finding is not None:
            finding = report.finding.model_dump(
                mode="json", include={"kind", "code", "seq", "table", "key", "params", "source"}
            )
        self.hub.publish(
            RecordsVerified(
                self.config.site,
                report.ledger or "-",
                report.ok,
                report.checked_ns,
                source,
                finding,
            )
        )

    def _records_finding(self, finding: Finding) -> None:
        self.hub.publish(
            RecordsVerified(
                self.config.site,
                self.records.ledger.ledger_id or "-",
                False,
                time.time_ns(),
                "writer",
                {"kind": "inserted", "code": finding.code, "params": dict(finding.params)},
            )
        )

    def _publish_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Retained on ``.../gateways/{id}/ledger`` (called on the record store's thread)."""
        link = self._link
        if link is None or not self.config.records.ledger.publish_checkpoints:
            return
        topic = self.topics.gateway(self.config.site, self.config.id, "ledger")
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(link.publish, topic, checkpoint.to_json(), 1, True)

    def sample_metrics(self, link: MqttLink | None) -> dict[str, int | float]:
        """Refresh gauges and return every self-metric."""
        m = self.metrics
        m.spool_depth, m.spool_bytes = self.spool.depth, self.spool.bytes
        m.readings_corrected = self.corrector.corrected
        m.readings_calibration_flagged = self.corrector.flagged
        if link is not None:
            m.mqtt_connected = int(link.connected.is_set())
            m.mqtt_reconnects = link.reconnects
        return m.snapshot()

    async def _metrics_loop(self, link: MqttLink) -> None:
        tags = {"site": self.config.site, "gateway": self.config.id}
        while True:
            await asyncio.sleep(self.config.metrics_interval_s)
            await self._emit_metrics(link, tags)

    async def _emit_metrics(self, link: MqttLink, tags: dict[str, str]) -> None:
        values = self.sample_metrics(link)
        ts = time.time_ns()
        entry = {
            "kind": "metrics",
            "measurement": "etalon_gateway",
            "tags": tags,
            "ts": ts,
            "values": values,
        }
        await self.spool.append([json.dumps(entry, separators=(",", ":")).encode()])
        if link.connected.is_set():
            body = {"schema": 1, "kind": "gateway", **tags, "ts": ts, "metrics": values}
            link.publish(
                self.topics.gateway(self.config.site, self.config.id, "metrics"),
                json.dumps(body).encode(),
                retain=True,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Run until ``stop`` is set."""
        cfg = self.config
        status_topic = self.topics.gateway(cfg.site, cfg.id, "status")
        link = MqttLink(
            cfg.mqtt,
            f"etalon-gateway-{cfg.site}-{cfg.id}",
            manual_ack=True,
            will=(status_topic, self._status("offline", "connection lost")),
        )
        try:
            ingest, writer = await self._start(link, status_topic)
        except BaseException:  # refused, or a stop during start-up (core.signals cancels it)
            await link.stop()
            await self._close()
            raise
        log_event(
            log,
            logging.INFO,
            "gateway started",
            site=cfg.site,
            gateway=cfg.id,
            store=self.store.name,
            spooled=self.spool.depth,
        )
        drained = False
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [
                    group.create_task(ingest.run(), name="ingest"),
                    group.create_task(writer.run(), name="writer"),
                    group.create_task(self._metrics_loop(link), name="metrics"),
                    group.create_task(
                        deadletters.retention_loop(
                            self.records, cfg.records.deadletters, self.metrics
                        ),
                        name="deadletters",
                    ),
                ]
                if cfg.corrections.enabled:
                    tasks.append(group.create_task(self.corrector.run(), name="corrections"))
                if cfg.standards is not None and cfg.standards.analytics:
                    from gateway.standards.service import StandardsService

                    self.standards = StandardsService(
                        cfg, self.records, self.spool, self.hub, self.metrics
                    )
                    tasks.append(group.create_task(self.standards.run(), name="standards"))
                if self.alerts is not None:
                    tasks.append(group.create_task(self.alerts.run(), name="alerts"))
                    probe = ingest.probe(self.alerts.config.tick_s)
                    tasks.append(group.create_task(probe, name="probe"))
                tasks.append(group.create_task(self.monitor.run(), name="records"))
                if cfg.hub is not None:
                    from gateway.hubsync.sync import HubSync, source_of

                    self.hubsync = HubSync(
                        cfg.hub, source_of(cfg.records.path, cfg.records.checkpoints_path())
                    )
                    self.hubsync.check()
                    tasks.append(group.create_task(self.hubsync.run(), name="hubsync"))
                server = await self._start_api(group)
                self.started.set()
                await stop.wait()
                if server is not None:
                    server.should_exit = True
                # Stop taking messages first: what is not yet acknowledged is redelivered later.
                with contextlib.suppress(Exception):
                    link.publish(status_topic, self._status("offline", "shutdown"), retain=True)
                    await asyncio.sleep(0.05)
                await link.stop()
                tasks[0].cancel()
                if self.alerts is not None:
                    await self.alerts.close()  # evaluates what ingest handed over, writes it
                await self._sign_at_stop()
                await self._emit_metrics(link, {"site": cfg.site, "gateway": cfg.id})
                drained = await writer.drain(SHUTDOWN_GRACE_S)
                for task in tasks[1:]:
                    task.cancel()
        finally:
            await link.stop()
            await self._close()
            final = self.sample_metrics(None) | {"drained": drained}
            log_event(log, logging.INFO, "gateway stopped", **final)

    async def _start(self, link: MqttLink, status_topic: str) -> tuple[Ingest, Writer]:
        """Open the records, spool and store, then connect: everything before ingest runs."""
        cfg = self.config
        await self.records.open()
        if cfg.corrections.enabled:
            await self.corrector.load()
        await self.spool.open()
        try:
            await self.store.open()
        except Exception as exc:  # noqa: BLE001 - a store that is down at start is retried by the writer
            log_event(log, logging.WARNING, "store not ready at start", reason=str(exc))
        self._link = link
        self._loop = asyncio.get_running_loop()
        self.records.ledger.on_checkpoint.append(self._publish_checkpoint)
        self.monitor.attach()
        ingest = Ingest(
            cfg,
            link,
            self.spool,
            self.records,
            self.metrics,
            self.hub,
            corrector=self.corrector if cfg.corrections.enabled else None,
            memo=self.memo,
        )
        self.ingest = ingest
        await ingest.load_known_agents()
        for topic in ingest.subscriptions():
            link.subscribe(topic, qos=1)

        def announce(_session_present: bool) -> None:
            link.publish(status_topic, self._status("online", None), retain=True)
            last = self._last_checkpoint()
            if last is not None:
                self._publish_checkpoint(last)

        link.on_connected.append(announce)
        writer = Writer(
            self.spool, self.store, cfg.write, self.metrics, self.records, memo=self.memo
        )
        if cfg.standards is not None and cfg.standards.analytics:
            # numpy and scipy take seconds to import: before ingest starts, not during it.
            import gateway.standards.service  # noqa: F401
        if cfg.alerts is not None:
            from gateway.alerts.engine import AlertEngine

            self.alerts = AlertEngine(
                cfg,
                self.records,
                self.hub,
                link,
                api_url=lambda: self.api_url,
                watermarked=True,
            )
            from gateway.api.alerts import RuleLimits
            from gateway.api.views import ConfigLimits

            self.limits = RuleLimits(self.alerts, ConfigLimits(cfg.dashboard))
            await self.alerts.open()
        await link.start()
        return ingest, writer

    def _last_checkpoint(self) -> Checkpoint | None:
        try:
            return CheckpointFile(self.config.records.checkpoints_path()).last()
        except LedgerError:
            return None

    async def _sign_at_stop(self) -> None:
        """A checkpoint of everything written, while MQTT still carries it."""
        ledger = self.records.ledger
        if ledger.unsigned:
            with contextlib.suppress(Exception):
                await self.records.run(ledger.checkpoint)
                await asyncio.sleep(0.05)

    async def _start_api(self, group: asyncio.TaskGroup) -> EmbeddedServer | None:
        """Serve the HTTP API if configured; returns the server (None if not)."""
        api = self.config.api
        if api is None:
            return None
        from gateway.api.app import build_server, create_app

        self.api_context = ApiContext(
            self.config,
            self.records,
            self.metrics,
            self.hub,
            alerts=self.alerts,
            standards=self.standards,
            limits=self.limits,
            monitor=self.monitor,
            hubsync=self.hubsync,
            corrector=self.corrector,
        )
        server = build_server(create_app(self.api_context), api.host, api.port, api.tls)
        group.create_task(server.serve(), name="api")
        while not server.started:
            if server.should_exit:
                raise OSError(f"API cannot listen on {api.host}:{api.port}")
            await asyncio.sleep(0.02)
        host, port = server.servers[0].sockets[0].getsockname()[:2]
        self.api_url = f"{'https' if api.tls else 'http'}://{host}:{port}"
        log_event(log, logging.INFO, "api listening", url=self.api_url)
        return server

    async def _close(self) -> None:
        if self.alerts is not None:
            with contextlib.suppress(Exception):
                await self.alerts.close()
        for close in (self.store.close, self.spool.close, self.records.close):
            with contextlib.suppress(Exception):
                await close()
