"""The hub's config and a gateway's ``hub:`` section: what is refused, with the field and the
reason (never the secret), and ``etalon check`` recognising a hub.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.cli import main
from gateway.hubsync.config import HubSyncConfig
from hub.config import HubConfig
from tests.support.processes import write_yaml

BASE: dict[str, Any] = {
    "database": {"url": "host=db.example dbname=hub user=hub sslmode=verify-full"},
    "key_file": "/var/lib/etalon/hub.key",
}


def with_(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def test_a_minimal_hub_config() -> None:
    config = HubConfig.model_validate(BASE)
    assert config.api.port == 8443 and config.api.public_read
    assert config.database.migrate_on_start


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"database": {"url": "host=db password=hunter2"}}, "database.url", "no password"),
        ({"database": {"url": "postgresql://hub:hunter2@db/hub"}}, "database.url", "no password"),
        ({"database": {"url": ""}}, "database.url", "at least 1"),
        ({"database": {"pool_min": 5, "pool_max": 2}}, "database", "pool_max"),
        ({"database": {"statement_timeout_s": 0}}, "database.statement_timeout_s", "greater"),
        ({"database": {"sslmode": "disable"}}, "database.sslmode", "Extra inputs"),
        ({"id": "hub with spaces"}, "id", "pattern"),
        ({"api": {"port": 70000}}, "api.port", "less than"),
        ({"api": {"max_segment_bytes": 10}}, "api.max_segment_bytes", "greater"),
        (
            {"api": {"tokens": [{"name": "a", "role": "root", "token": {"env": "T"}}]}},
            "api.tokens.0.role",
            "viewer",
        ),
        (
            {"api": {"tokens": [{"name": "a", "role": "admin", "token": "inline-secret-123456"}]}},
            "api.tokens.0.token",
            "",
        ),
        ({"due_soon_days": -1}, "due_soon_days", "greater"),
        ({"key_file": None}, "key_file", ""),
        ({"unknown": 1}, "unknown", "Extra inputs"),
    ],
)
def test_hostile_hub_configs(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HubConfig.model_validate(with_(BASE, **changes))
    errors = caught.value.errors()
    locations = [".".join(str(p) for p in e["loc"]) for e in errors]
    assert any(loc.startswith(field) for loc in locations), locations
    assert any(reason in e["msg"] for e in errors), errors
    assert all("hunter2" not in e["msg"] for e in errors)  # the loader prints msg, not input


def test_tokens_unique_long_and_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("A", "a-long-enough-secret-1")
    monkeypatch.setenv("B", "short")
    token = {"name": "a", "role": "admin", "token": {"env": "A"}}
    with pytest.raises(ValidationError, match="at least 16"):
        HubConfig.model_validate(
            with_(
                BASE,
                api={"tokens": [token, {"name": "b", "role": "viewer", "token": {"env": "B"}}]},
            )
        )
    with pytest.raises(ValidationError, match="same secret"):
        HubConfig.model_validate(with_(BASE, api={"tokens": [token, token | {"name": "b"}]}))
    with pytest.raises(ValidationError, match="unique"):
        HubConfig.model_validate(with_(BASE, api={"tokens": [token, token]}))


def test_etalon_check_knows_a_hub_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_yaml(tmp_path / "hub.yaml", BASE)
    bad = write_yaml(tmp_path / "bad.yaml", with_(BASE, database={"pool_max": 0}))
    assert main(["check", str(good)]) == 0
    assert "hub" in capsys.readouterr().out
    assert main(["--lang", "vi", "check", str(bad)]) == 1
    out = capsys.readouterr()
    assert "database.pool_max" in out.out + out.err and "không hợp lệ" in out.err


SYNC: dict[str, Any] = {"url": "https://hub.example.vn:8443", "token": {"env": "HUB_TOKEN"}}


def test_a_hub_section() -> None:
    config = HubSyncConfig.model_validate(SYNC)
    assert config.url == "https://hub.example.vn:8443" and config.max_entries == 1000
    assert HubSyncConfig.model_validate(SYNC | {"url": "http://127.0.0.1:9/"}).url == (
        "http://127.0.0.1:9"
    )


@pytest.mark.parametrize(
    ("changes", "field", "reason"),
    [
        ({"url": "http://hub.example.vn"}, "url", "over HTTPS"),
        ({"url": "ftp://hub.example.vn"}, "url", "https://HOST"),
        ({"url": "https://user:pw@hub.example.vn"}, "url", "no credentials"),
        ({"url": "https://hub.example.vn/?token=x"}, "url", "no query"),
        ({"url": "hub.example.vn"}, "url", ""),
        ({"token": "inline-token"}, "token", ""),
        ({"lab": "../etc"}, "lab", "pattern"),
        ({"max_entries": 0}, "max_entries", "greater"),
        ({"max_entries": 10_001}, "max_entries", "less"),
        ({"interval_s": 0}, "interval_s", "greater"),
        ({"timeout_s": -1}, "timeout_s", "greater"),
        ({"extra": True}, "extra", "Extra inputs"),
    ],
)
def test_hostile_hub_sections(changes: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        HubSyncConfig.model_validate(SYNC | changes)
    errors = caught.value.errors()
    assert any(".".join(str(p) for p in e["loc"]).startswith(field) for e in errors), errors
    assert any(reason in e["msg"] for e in errors), errors
