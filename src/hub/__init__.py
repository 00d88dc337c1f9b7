"""Floor 5, beside the gateway: the national hub (PostgreSQL). A skeleton until its first feature
lands; it imports the floors below it, never gateway or calibration."""
