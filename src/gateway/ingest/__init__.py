"""Ingest: MQTT batches validated, spooled and acknowledged in order (``ingest``); the gateway's
in-process events that the features subscribe to (``events``); the live values the dashboard
streams (``live``)."""
