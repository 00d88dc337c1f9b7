"""The API facing a network: HTTPS, no plain HTTP on a non-loopback address without an explicit
escape, tokens stored as argon2id hashes (verified once, then remembered), a token in the query
only on the live stream, failed authentication logged without the token and throttled per client
address (429 + Retry-After, counted), CSV exports that a spreadsheet cannot run."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from core import pki
from core.csv_cells import FORMULA_STARTS, neutralise, restore
from gateway.api.auth import FailedLogins, TokenBook, token_hasher
from gateway.api.export import csv_text
from gateway.config import ApiConfig, AuthFailuresConfig, GatewayConfig
from gateway.service import Gateway
from tests.support.mqtt_client import RawClient
from tests.support.processes import child_env, etalon_command
from tests.support.services import Mosquitto

PLAIN = "plain-operator-token-0123456789"
HASHED = "hashed-viewer-token-0123456789"
WRONG = "wrong-token-0123456789-SECRET"
MAX_FAILURES = 3
WINDOW_S = 3.0


@pytest.fixture(scope="module")
def hashed_viewer() -> str:
    return str(token_hasher().hash(HASHED))


@pytest.fixture
def api_pki(tmp_path: Path) -> Path:
    directory = tmp_path / "pki"
    pki.init_ca(directory)
    pki.issue_server(directory, "api", ["127.0.0.1", "localhost"])
    return directory


@pytest.fixture
async def gateway(
    tmp_path: Path,
    mosquitto: Mosquitto,
    monkeypatch: pytest.MonkeyPatch,
    api_pki: Path,
    hashed_viewer: str,
) -> AsyncIterator[Gateway]:
    monkeypatch.setenv("PLAIN_TOKEN", PLAIN)
    config = GatewayConfig.model_validate(
        {
            "site": "lab-1",
            "mqtt": {"port": mosquitto.port},
            "spool": {"path": str(tmp_path / "spool.db")},
            "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
            "records": {"path": str(tmp_path / "records.db")},
            "write": {"batch_max_delay_ms": 50},
            "api": {
                "port": 0,
                "tls": {
                    "cert_file": str(api_pki / "api.pem"),
                    "key_file": str(api_pki / "api.key"),
                },
                "auth_failures": {"max_failures": MAX_FAILURES, "window_s": WINDOW_S},
                "tokens": [
                    {"name": "wall-screen", "role": "viewer", "token_hash": hashed_viewer},
                    {"name": "nguyen", "role": "operator", "token": {"env": "PLAIN_TOKEN"}},
                ],
            },
        }
    )
    stop = asyncio.Event()
    gw = Gateway(config)
    task = asyncio.create_task(gw.run(stop))
    await asyncio.wait_for(gw.started.wait(), 30)
    yield gw
    stop.set()
    await asyncio.wait_for(task, 30)


def https(gateway: Gateway, api_pki: Path) -> httpx.AsyncClient:
    assert gateway.api_url is not None
    return httpx.AsyncClient(
        base_url=gateway.api_url, verify=ssl.create_default_context(cafile=str(api_pki / "ca.pem"))
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_api_speaks_https_and_hashed_tokens_open_it(
    gateway: Gateway, api_pki: Path
) -> None:
    assert gateway.api_url is not None and gateway.api_url.startswith("https://127.0.0.1:")
    async with https(gateway, api_pki) as http:
        assert (await http.get("/api/v1/health")).status_code == 200
        me = await http.get("/api/v1/me", headers=bearer(HASHED))
        assert me.status_code == 200, me.text
        assert me.json()["name"] == "wall-screen"
        assert (await http.get("/api/v1/me", headers=bearer(PLAIN))).json()["name"] == "nguyen"
    # Plain HTTP on the HTTPS port gets nothing.
    plain = gateway.api_url.replace("https://", "http://")
    async with httpx.AsyncClient(base_url=plain) as http:
        with pytest.raises(httpx.HTTPError):
            await http.get("/api/v1/health")


async def test_a_token_in_the_query_opens_only_the_live_stream(
    gateway: Gateway, api_pki: Path
) -> None:
    async with https(gateway, api_pki) as http:
        async with http.stream("GET", "/api/v1/live", params={"access_token": HASHED}) as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
        for path in ("/api/v1/agents", "/api/v1/metrics", "/api/v1/readings/latest"):
            answer = await http.get(path, params={"access_token": HASHED})
            assert answer.status_code == 401, path
            assert answer.json()["detail"] == (
                "access_token in the query is accepted only on /api/v1/live: send "
                "Authorization: Bearer TOKEN"
            )
    # Refused unread: not a failed authentication.
    assert gateway.metrics.api_auth_failures == 0


async def test_failed_authentication_is_logged_without_the_token_and_throttled(
    gateway: Gateway, api_pki: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="etalon.api")
    async with https(gateway, api_pki) as http:
        for _ in range(MAX_FAILURES):
            refused = await http.get("/api/v1/agents", headers=bearer(WRONG))
            assert refused.status_code == 401
        throttled_at = time.monotonic()
        # Now even the right token is not looked at from this address.
        for token in (WRONG, PLAIN):
            blocked = await http.get("/api/v1/agents", headers=bearer(token))
            assert blocked.status_code == 429, blocked.text
            assert 1 <= int(blocked.headers["retry-after"]) <= WINDOW_S
        # Reads without a token are not guessing: anonymous requests are answered as before.
        assert (await http.get("/api/v1/health")).status_code == 200
        assert gateway.metrics.api_auth_failures == MAX_FAILURES
        assert gateway.metrics.api_auth_throttled == 2
        await asyncio.sleep(WINDOW_S - (time.monotonic() - throttled_at) + 0.2)
        assert (await http.get("/api/v1/agents", headers=bearer(PLAIN))).status_code == 200
    failed = [r for r in caplog.records if r.getMessage().startswith("api authentication failed")]
    assert len(failed) == MAX_FAILURES
    assert {(r.__dict__["client"], r.__dict__["path"]) for r in failed} == {
        ("127.0.0.1", "/api/v1/agents")
    }
    throttled = [r for r in caplog.records if r.getMessage().startswith("api client throttled")]
    assert len(throttled) == 1
    assert "SECRET" not in caplog.text  # never the token
    assert not [r for r in caplog.records if "SECRET" in repr(r.__dict__)]


def test_failures_are_counted_per_address_in_a_sliding_window() -> None:
    now = [1000.0]
    limits = FailedLogins(AuthFailuresConfig(max_failures=2, window_s=10), clock=lambda: now[0])
    assert limits.failed("10.0.0.1") is False
    now[0] += 4
    assert limits.failed("10.0.0.1") is True  # the second reaches the limit
    assert limits.retry_after("10.0.0.1") == 6  # until the first leaves the window
    assert limits.retry_after("10.0.0.2") is None  # another address is not held
    now[0] += 6.5
    assert limits.retry_after("10.0.0.1") is None  # one failure left in the window
    assert limits.failed("10.0.0.1") is True
    now[0] += 20
    assert limits.retry_after("10.0.0.1") is None


def test_the_failure_book_forgets_the_least_recent_address_past_its_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gateway.api.auth.MAX_TRACKED_CLIENTS", 3)
    limits = FailedLogins(AuthFailuresConfig(max_failures=1, window_s=60))
    for client in ("a", "b", "c", "d"):
        limits.failed(client)
    assert limits.retry_after("a") is None  # forgotten: memory stays bounded
    assert all(limits.retry_after(c) is not None for c in ("b", "c", "d"))


async def test_a_hashed_token_is_verified_once_then_remembered(
    hashed_viewer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = ApiConfig.model_validate(
        {"tokens": [{"name": "wall", "role": "viewer", "token_hash": hashed_viewer}]}
    )
    book = TokenBook(config)
    verified: list[str] = []
    verify = book._verify_hashed

    def counting(token: str) -> Any:
        verified.append(token)
        return verify(token)

    monkeypatch.setattr(book, "_verify_hashed", counting)
    for _ in range(5):
        principal = await book.lookup(HASHED)
        assert principal is not None and principal.name == "wall"
    assert verified == [HASHED]
    assert await book.lookup(WRONG) is None
    assert await book.lookup(HASHED + "x") is None
    assert await book.lookup("x" * 100_000) is None  # too long to be ours: not even hashed
    assert verified == [HASHED, WRONG, HASHED + "x"]


@pytest.mark.parametrize(
    ("api", "reason"),
    [
        ({"host": "0.0.0.0"}, "host 0.0.0.0 is not loopback and there is no tls"),
        ({"host": "192.168.1.20"}, "set allow_plain_http_on: 192.168.1.20"),
        (
            {"host": "0.0.0.0", "allow_plain_http_on": "192.168.1.20"},
            "host 0.0.0.0 is not loopback",
        ),
        ({"allow_plain_http_on": "127.0.0.1"}, "allow_plain_http_on is only for"),
        ({"tls": {"cert_file": "/nonexistent.pem", "key_file": "/x.key"}}, "file not found"),
        (
            {"tokens": [{"name": "a", "role": "admin", "token_hash": "$2b$12$bcrypt-not-argon"}]},
            "not an argon2id hash",
        ),
        (
            {"tokens": [{"name": "a", "role": "admin"}]},
            "either as token (env or file) or as token_hash",
        ),
        ({"auth_failures": {"max_failures": 0}}, "greater than or equal to 1"),
    ],
)
def test_api_config_mistakes_are_refused_with_the_reason(api: dict[str, Any], reason: str) -> None:
    with pytest.raises(ValidationError, match=None) as caught:
        ApiConfig.model_validate(api)
    assert reason in str(caught.value)


def test_plain_http_on_the_network_only_when_named_on_purpose() -> None:
    assert ApiConfig.model_validate({"host": "::1"}).tls is None  # loopback
    assert ApiConfig.model_validate({"host": "localhost"}).tls is None
    named = ApiConfig.model_validate({"host": "0.0.0.0", "allow_plain_http_on": "0.0.0.0"})
    assert named.allow_plain_http_on == "0.0.0.0"


# -- CSV that a spreadsheet will not run ----------------------------------------------------------


@pytest.mark.parametrize("start", FORMULA_STARTS)
def test_a_cell_a_spreadsheet_would_run_is_neutralised_and_restored(start: str) -> None:
    text = f'{start}HYPERLINK("http://evil.example","click")'
    assert neutralise(text) == "'" + text
    assert restore(neutralise(text)) == text
    assert neutralise("10 V Zener") == "10 V Zener"
    assert restore("'quoted on purpose") == "'quoted on purpose"


def test_csv_text_neutralises_text_not_numbers() -> None:
    rows = [
        {
            "name": "=1+1",
            "reason": "@SUM(A1)",
            "value": -1.5,
            "count": -3,
            "note": "-x",
            "ok": True,
        },
        {"name": "plain", "reason": None, "value": 2.0, "count": 0, "note": "+x", "ok": False},
    ]
    text = csv_text(rows, ["name", "reason", "value", "count", "note", "ok"])
    parsed = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert parsed[0] == {
        "name": "'=1+1",
        "reason": "'@SUM(A1)",
        "value": "-1.5",
        "count": "-3",
        "note": "'-x",
        "ok": "true",
    }
    assert parsed[1]["note"] == "'+x" and parsed[1]["value"] == "2.0"


async def test_a_hostile_reason_reaches_the_csv_export_neutralised(
    gateway: Gateway, mosquitto: Mosquitto, api_pki: Path
) -> None:
    hostile = '=HYPERLINK("http://evil.example","report")'
    reading = {
        "instrument": "dmm-1",
        "channel": "voltage",
        "ts": time.time_ns(),
        "value": -1.25,
        "unit": "V",
        "quality": "uncertain",
        "reason": hostile,
    }
    body = {"schema": 1, "site": "lab-1", "agent": "bench-1", "seq": 0, "readings": [reading]}
    client = RawClient(mosquitto.port)
    try:
        client.publish("etalon/v1/lab-1/bench-1/data", json.dumps(body).encode())
    finally:
        client.close()
    async with https(gateway, api_pki) as http:
        deadline = time.monotonic() + 15
        rows: list[dict[str, str]] = []
        while not rows and time.monotonic() < deadline:
            answer = await http.get(
                "/api/v1/readings/latest", params={"format": "csv"}, headers=bearer(HASHED)
            )
            assert answer.status_code == 200
            rows = list(csv.DictReader(io.StringIO(answer.text.lstrip("\ufeff"))))
            await asyncio.sleep(0.2)
    assert rows, "the reading never reached the API"
    assert rows[0]["reason"] == "'" + hostile
    assert rows[0]["value"] == "-1.25"


# -- etalon token -------------------------------------------------------------------------------


def run_token(*args: str, stdin: str = "", lang: str = "en") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        etalon_command("--lang", lang, "token", *args),
        input=stdin,
        capture_output=True,
        text=True,
        env=child_env(),
        timeout=60,
    )


def test_token_new_prints_a_token_and_an_entry_the_config_accepts() -> None:
    made = run_token("new", "--name", "wall-screen", "--role", "viewer")
    assert made.returncode == 0, made.stderr
    lines = [line.strip() for line in made.stdout.splitlines()]
    token, entry = lines[1], lines[3]
    assert len(token) >= 40
    assert token not in entry
    import yaml

    parsed = yaml.safe_load(entry)[0]
    api = ApiConfig.model_validate({"tokens": [parsed]})
    assert api.tokens[0].name == "wall-screen" and api.tokens[0].role == "viewer"
    assert parsed["token_hash"].startswith("$argon2id$v=19$")  # argon2id, never the token
    assert token_hasher().verify(token, parsed["token_hash"])


def test_token_hash_reads_stdin_and_refuses_what_is_not_a_token() -> None:
    hashed = run_token("hash", stdin="an-existing-token-0123456789\n")
    assert hashed.returncode == 0, hashed.stderr
    assert token_hasher().verify("an-existing-token-0123456789", hashed.stdout.strip())
    short = run_token("hash", stdin="short\n", lang="vi")
    assert short.returncode == 1
    assert "token phải có từ 16 đến 512 ký tự" in short.stderr
    bad_name = run_token("new", "--name", "a b", "--role", "viewer")
    assert bad_name.returncode == 1 and "--name 'a b'" in bad_name.stderr
