"""The hub's HTTP API and pages (FastAPI, served by uvicorn, HTTPS when configured)."""
