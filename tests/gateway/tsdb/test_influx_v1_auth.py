"""InfluxDB 1.x credentials: the store sends HTTP basic auth when the config names a user, and
no Authorization header when it names none (a server on 127.0.0.1 records what it is sent)."""

from __future__ import annotations

import asyncio
import base64

import pytest

from gateway.tsdb.config import InfluxV1StoreConfig
from gateway.tsdb.influx_v1 import InfluxV1Store


async def _headers_of_create(config: dict[str, object]) -> dict[str, str]:
    """The headers InfluxV1Store.open() sends (its CREATE DATABASE), as a server receives them."""
    seen: dict[str, str] = {}

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        for line in head.decode("latin-1").split("\r\n")[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                seen[name.strip().lower()] = value.strip()
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    store = InfluxV1Store(
        InfluxV1StoreConfig.model_validate(
            {
                "kind": "influxdb_v1",
                "url": f"http://127.0.0.1:{port}",
                "database": "lab",
                "create_database": True,
            }
            | config
        )
    )
    try:
        await asyncio.wait_for(store.open(), 10)
    finally:
        await store.close()
        server.close()
        await server.wait_closed()
    return seen


async def test_a_named_user_is_sent_as_basic_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETALON_TEST_INFLUX_PASSWORD", "s3cret:x")
    seen = await _headers_of_create(
        {"username": "writer", "password": {"env": "ETALON_TEST_INFLUX_PASSWORD"}}
    )
    assert seen["authorization"] == "Basic " + base64.b64encode(b"writer:s3cret:x").decode()


async def test_a_user_without_password_sends_an_empty_one() -> None:
    seen = await _headers_of_create({"username": "reader"})
    assert seen["authorization"] == "Basic " + base64.b64encode(b"reader:").decode()


async def test_no_user_sends_no_authorization() -> None:
    assert "authorization" not in await _headers_of_create({})
