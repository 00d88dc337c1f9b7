"""The certificate-identity check of the agent and gateway configs (core.mqtt): the CN it
expects for each role is the one ``etalon pki`` issues, and a mismatch names the command that
issues the right certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from core import pki
from core.mqtt import MqttConfig, TlsConfig, check_client_identity


def client_mqtt(issued: pki.Issued) -> MqttConfig:
    return MqttConfig(tls=TlsConfig(cert_file=issued.cert, key_file=issued.key))


@pytest.mark.parametrize("role", ["agent", "gateway"])
def test_the_identity_pki_issues_for_a_role_is_the_one_checked(
    tmp_path: Path, role: Literal["agent", "gateway"]
) -> None:
    pki.init_ca(tmp_path)
    issue = pki.issue_agent if role == "agent" else pki.issue_gateway
    mqtt = client_mqtt(issue(tmp_path, "hanoi", "one"))
    check_client_identity(mqtt, role, "hanoi", "one")
    cn = "hanoi/one" if role == "agent" else "hanoi/gateways/one"
    with pytest.raises(ValueError, match=r"the certificate's identity \(CN\) is ") as refused:
        check_client_identity(mqtt, role, "hanoi", "two")
    assert f"is {cn!r} but this process is {cn[:-3] + 'two'!r}" in str(refused.value)
    assert f"etalon pki issue {role} --site hanoi --id two)" in str(refused.value)


def test_no_client_certificate_or_a_user_name_is_not_checked(tmp_path: Path) -> None:
    pki.init_ca(tmp_path)
    issued = pki.issue_agent(tmp_path, "hanoi", "one")
    check_client_identity(MqttConfig(), "gateway", "hanoi", "two")
    check_client_identity(
        MqttConfig(username="u", tls=TlsConfig(cert_file=issued.cert, key_file=issued.key)),
        "gateway",
        "hanoi",
        "two",
    )
