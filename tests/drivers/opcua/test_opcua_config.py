"""OPC UA instrument configs: what a wrong one says."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from drivers.opcua.config import OpcUaInstrument

BASE: dict[str, Any] = {
    "name": "chamber",
    "protocol": "opcua",
    "endpoint": "opc.tcp://192.0.2.20:4840/",
    "channels": [{"name": "t", "node": "ns=2;s=Chamber.T"}],
}


def _config(**overrides: Any) -> OpcUaInstrument:
    return OpcUaInstrument.model_validate(BASE | overrides)


def test_a_minimal_config_polls_with_units_from_the_node() -> None:
    config = _config()
    channel = config.channels[0]
    assert channel.mode == "poll"
    assert channel.unit == ""  # taken from EngineeringUnits at connect
    assert config.security.mode == "None"
    assert config.timestamps == "source"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"endpoint": "http://192.0.2.20/"}, "not an opc.tcp:// endpoint URL"),
        ({"channels": [{"name": "t"}]}, "give exactly one of node and browse_path"),
        (
            {"channels": [{"name": "t", "node": "ns=2;s=A", "browse_path": ["A"]}]},
            "give exactly one of node and browse_path",
        ),
        ({"channels": [{"name": "t", "node": "Chamber.T"}]}, "is not a NodeId"),
        (
            {
                "channels": [
                    {"name": "t", "node": "i=1", "deadband": {"kind": "absolute", "value": 1}}
                ]
            },
            "deadband and sampling_interval_ms are for mode: subscribe",
        ),
        (
            {
                "channels": [
                    {
                        "name": "t",
                        "node": "i=1",
                        "mode": "subscribe",
                        "deadband": {"kind": "percent", "value": 150},
                    }
                ]
            },
            "a percent deadband is at most 100",
        ),
        ({"channels": [{"name": "t", "browse_path": ["Chamber", "T"]}]}, "set namespace"),
        ({"security": {"mode": "Sign"}}, "needs trusted_server_certificates"),
        (
            {"security": {"mode": "None", "certificate": "/x/cert.der"}},
            "certificate and private_key go together",
        ),
        ({"username": "operator"}, "username and password go together"),
        (
            {"username": "op", "password": {"env": "ETALON_TEST_UNSET_VARIABLE"}},
            "environment variable ETALON_TEST_UNSET_VARIABLE is not set",
        ),
        ({"password": {"env": "X", "file": "/x"}, "username": "op"}, "exactly one of env and file"),
        ({"timestamp": "source"}, "Extra inputs are not permitted"),
    ],
)
def test_config_errors_say_what_is_wrong(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _config(**overrides)
