"""The InfluxDB v2 write API (``/api/v2/write``) through influxdb-client.

Works with InfluxDB 2.x/3.x, InfluxDB Cloud and VictoriaMetrics. influxdb-client is blocking, so
writes run on one dedicated thread. Its own retries are off: the gateway's writer owns retry and
backoff, and must see every failure.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException
from urllib3.exceptions import HTTPError

from core.errors import StoreError, StoreRejected
from gateway.config import InfluxV2StoreConfig
from gateway.stores.base import LineProtocolStore

_DATA_REFUSED = {400, 413, 422}


class InfluxV2Store(LineProtocolStore):
    """See the module doc."""

    name = "influxdb_v2"

    def __init__(self, config: InfluxV2StoreConfig) -> None:
        super().__init__()
        self.config = config
        # Threads for the gateway's concurrent writes (influxdb-client's pool is thread-safe).
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="influx-v2")
        token = config.token.resolve() if config.token else ""
        self._client = InfluxDBClient(
            url=str(config.url).rstrip("/"),
            token=token,
            org=config.org,
            timeout=int(config.timeout_s * 1000),
            enable_gzip=config.gzip,
            verify_ssl=config.verify_tls,
            retries=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)

    async def open(self) -> None:
        """Nothing to prepare: the bucket must exist (servers differ in how it is created)."""

    def _write_blocking(self, body: str) -> None:
        try:
            self._write_api.write(
                bucket=self.config.bucket,
                org=self.config.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]  # its stubs say enum, it is a str
            )
        except ApiException as exc:
            reason = f"HTTP {exc.status}: {(exc.body or exc.reason or '')!s:.300}"
            if exc.status in _DATA_REFUSED:
                raise StoreRejected(f"{self.config.url}: {reason}") from exc
            raise StoreError(f"{self.config.url}: {reason}") from exc
        except (HTTPError, OSError) as exc:
            raise StoreError(f"{self.config.url}: {type(exc).__name__}: {exc}") from exc

    async def _post(self, body: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._write_blocking, body)

    async def close(self) -> None:
        """Close the HTTP pool and the thread."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._client.close)
        self._executor.shutdown(wait=True)
