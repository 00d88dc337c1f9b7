"""Floor 3: the gateway — MQTT ingest, spool, TSDB writers, records, alerts, API, dashboard."""
