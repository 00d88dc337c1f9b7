"""The gateway's HTTP API (FastAPI): token authentication with roles, one router per area."""
