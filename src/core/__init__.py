"""Floor 1: what every other floor shares — errors, base models, clock, logs, i18n, spool, MQTT."""
