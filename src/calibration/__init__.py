"""Floor 5, beside the gateway: the calibration bench runner (procedures, runner, state, report).
A skeleton until its first feature lands; it imports the floors below it, never gateway or hub."""
