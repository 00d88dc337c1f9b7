"""The gateway's configs that name a login or a secret (time-series stores, e-mail, webhooks)
refuse, at load, a password without a user name and a secret that does not resolve."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from gateway.alerts.config import SmtpConfig, WebhookConfig
from gateway.tsdb.config import InfluxV1StoreConfig, InfluxV2StoreConfig

UNSET = {"env": "ETALON_TEST_UNSET"}

LOGINS: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (InfluxV1StoreConfig, {"kind": "influxdb_v1", "url": "http://127.0.0.1:1", "database": "d"}),
    (SmtpConfig, {"host": "127.0.0.1", "sender": "alerts@lab.example"}),
]
SECRETS: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (
        InfluxV2StoreConfig,
        {"kind": "influxdb_v2", "url": "http://127.0.0.1:1", "bucket": "b"},
        "token",
    ),
    (WebhookConfig, {"id": "hook", "url": "http://127.0.0.1:1"}, "secret"),
]


@pytest.fixture(autouse=True)
def _unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETALON_TEST_UNSET", raising=False)


@pytest.mark.parametrize(("model", "base"), LOGINS)
def test_a_login_is_checked(
    model: type[BaseModel], base: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="password given without username"):
        model.model_validate(base | {"password": UNSET})
    with pytest.raises(ValidationError, match="ETALON_TEST_UNSET is not set"):
        model.model_validate(base | {"username": "u", "password": UNSET})
    monkeypatch.setenv("ETALON_TEST_UNSET", "now set")
    assert model.model_validate(base | {"username": "u", "password": UNSET})


@pytest.mark.parametrize(("model", "base", "name"), SECRETS)
def test_a_secret_is_checked(
    model: type[BaseModel], base: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ValidationError, match="ETALON_TEST_UNSET is not set"):
        model.model_validate(base | {name: UNSET})
    monkeypatch.setenv("ETALON_TEST_UNSET", "now set")
    assert model.model_validate(base | {name: UNSET})
