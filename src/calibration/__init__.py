"""Floor 5, beside the gateway: the calibration bench runner (issue 15) — procedures, runner,
settling, state, computation, record, report, DCC export and the ``etalon calibrate`` commands.
It imports the floors below it (core, drivers, edge_agent, metrology, ledger), never the
gateway."""
