"""The InfluxDB 1.x write API: ``POST /write?db=&precision=ns``."""

from __future__ import annotations

import httpx

from core.errors import StoreError, StoreRejected
from gateway.config import InfluxV1StoreConfig
from gateway.stores.base import LineProtocolStore


class InfluxV1Store(LineProtocolStore):
    """See the module doc. influxd answers 204 when all points were written, 400 with the reason
    for malformed lines or field-type conflicts (after writing the good points of the batch)."""

    name = "influxdb_v1"

    def __init__(self, config: InfluxV1StoreConfig) -> None:
        super().__init__()
        self.config = config
        auth = None
        if config.username is not None:
            password = config.password.resolve() if config.password else ""
            auth = httpx.BasicAuth(config.username, password)
        self._http = httpx.AsyncClient(
            base_url=str(config.url).rstrip("/"),
            auth=auth,
            timeout=httpx.Timeout(config.timeout_s),
            verify=config.verify_tls,
        )
        self._params = {"db": config.database, "precision": "ns"}
        if config.retention_policy:
            self._params["rp"] = config.retention_policy

    async def open(self) -> None:
        """Create the database if asked to (idempotent in InfluxDB 1.x)."""
        if self.config.create_database:
            name = self.config.database.replace('"', '\\"')
            await self._request("/query", {"q": f'CREATE DATABASE "{name}"'}, None)

    async def _request(self, path: str, params: dict[str, str], body: str | None) -> None:
        try:
            response = await self._http.post(path, params=params, content=body)
        except httpx.HTTPError as exc:
            raise StoreError(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc
        if response.status_code < 300:
            return
        reason = f"HTTP {response.status_code}: {response.text[:300]}"
        if response.status_code in (400, 413, 422):
            raise StoreRejected(f"{self.config.url}: {reason}")
        raise StoreError(f"{self.config.url}: {reason}")

    async def _post(self, body: str) -> None:
        await self._request("/write", self._params, body)

    async def close(self) -> None:
        """Close the HTTP pool."""
        await self._http.aclose()
