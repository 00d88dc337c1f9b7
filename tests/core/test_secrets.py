"""A config's secrets are checked at load: a password needs a user name, a named secret must
resolve (variable set, file readable); the refusal says why."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.mqtt import MqttConfig
from core.secrets import EnvSecret, FileSecret, check_login, check_secret


def test_a_login_resolves(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETALON_TEST_PASSWORD", "s3cret")
    check_login("user", EnvSecret(env="ETALON_TEST_PASSWORD"))
    check_login(None, None)
    check_login("user", None)
    (tmp_path / "pw").write_text("s3cret\n")
    check_secret(FileSecret(file=tmp_path / "pw"))
    check_secret(None)


def test_a_password_without_user_name_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ETALON_TEST_PASSWORD", "s3cret")
    with pytest.raises(ValueError, match="password given without username"):
        check_login(None, EnvSecret(env="ETALON_TEST_PASSWORD"))


def test_a_secret_that_does_not_resolve_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="ETALON_TEST_UNSET is not set"):
        check_login("user", EnvSecret(env="ETALON_TEST_UNSET"))
    with pytest.raises(ValueError, match="cannot read secret file"):
        check_secret(FileSecret(file=tmp_path / "missing"))


def test_the_mqtt_config_checks_its_login(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ETALON_TEST_UNSET", raising=False)
    with pytest.raises(ValidationError, match="password given without username"):
        MqttConfig.model_validate({"password": {"env": "ETALON_TEST_UNSET"}})
    with pytest.raises(ValidationError, match="ETALON_TEST_UNSET is not set"):
        MqttConfig.model_validate({"username": "u", "password": {"env": "ETALON_TEST_UNSET"}})
    monkeypatch.setenv("ETALON_TEST_UNSET", "now set")
    assert MqttConfig.model_validate({"username": "u", "password": {"env": "ETALON_TEST_UNSET"}})
