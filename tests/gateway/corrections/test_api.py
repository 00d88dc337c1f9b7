"""The instruments API refuses hostile input with a clear reason and changes nothing: bodies that
are not DCCs, wrong media types, unknown keys, ids out of range, a viewer's change, a duplicate;
and the corrections config refuses bad fields with the field and the reason."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gateway.config import GatewayConfig
from gateway.corrections.config import CorrectionsConfig
from gateway.service import Gateway
from tests.support.calibration import ErrorCurve, prt_dcc
from tests.support.gateway import api_settings, bearer, running_gateway, token_env
from tests.support.services import Mosquitto

ADMIN, VIEW = bearer("ADMIN_TOKEN"), bearer("VIEW_TOKEN")
XML = {"Content-Type": "application/xml"}
LINK = "/api/v1/instruments/lab/bath-1/prt/channels/temperature/calibration"


@pytest.fixture
async def gateway(
    tmp_path: Path, mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Gateway]:
    for key, value in token_env().items():
        monkeypatch.setenv(key, value)
    settings = {
        "site": "lab",
        "mqtt": {"port": mosquitto.port},
        "spool": {"path": str(tmp_path / "spool.db")},
        "store": {"kind": "sqlite", "path": str(tmp_path / "readings.db")},
        "records": {"path": str(tmp_path / "records.db")},
        "api": api_settings(),
    }
    async with running_gateway(settings) as gw:
        yield gw


async def test_hostile_requests_are_refused(gateway: Gateway) -> None:
    assert gateway.api_url is not None
    async with httpx.AsyncClient(base_url=gateway.api_url, timeout=60) as http:
        url = "/api/v1/instruments/certificates"
        data = prt_dcc("PRT-A", ErrorCurve(), due=None)
        cases: list[tuple[dict[str, Any], int, str]] = [
            ({"content": data, "headers": {**VIEW, **XML}}, 403, "needs admin"),
            ({"content": data, "headers": {**ADMIN, "Content-Type": "text/plain"}}, 422,
             "expected application/xml"),
            ({"content": b"<html><body>x</body></html>", "headers": {**ADMIN, **XML}}, 422,
             "HTML page"),
            ({"content": b"\\x00\\xff not xml", "headers": {**ADMIN, **XML}}, 422, ""),
            ({"content": data, "headers": {**ADMIN, **XML}, "params": {"due": "tomorrow"}}, 422,
             "due"),
        ]  # fmt: skip
        for request, status, reason in cases:
            answer = await http.post(url, **request)
            assert answer.status_code == status, (request.get("headers"), answer.text)
            assert reason in answer.text
        assert (await http.get(url, headers=VIEW)).json() == []  # nothing was registered
        created = await http.post(url, content=data, headers={**ADMIN, **XML})
        assert created.status_code == 201
        again = await http.post(url, content=data, headers={**ADMIN, **XML})
        assert again.status_code == 409 and "already registered" in again.text
        assert (await http.get(f"{url}/99", headers=VIEW)).status_code == 404
        assert (await http.get(f"{url}/0", headers=VIEW)).status_code == 422
        assert (await http.get(f"{url}/99/dcc", headers=VIEW)).status_code == 404
        for body, status in (
            ({"certificate_id": 1, "extra": 1}, 422),
            ({"certificate_id": "one"}, 422),
            ({"certificate_id": 1, "table": -1}, 422),
            ({"certificate_id": 1, "from_ns": 1}, 422),  # in the past
            ({"certificate_id": 1}, 404),  # the channel was never declared
        ):
            answer = await http.put(LINK, json=body, headers=ADMIN)
            assert answer.status_code == status, (body, answer.text)
        answer = await http.put(
            "/api/v1/instruments/lab/bath 1/prt/channels/t/calibration",
            json={"certificate_id": 1},
            headers=ADMIN,
        )
        assert answer.status_code in (404, 422)
        assert (await http.delete(LINK, headers=ADMIN)).status_code == 404
        assert (await http.get("/api/v1/instruments/lab/x/y", headers=VIEW)).status_code == 404
        assert (await http.get("/api/v1/instruments/calibrated", headers=VIEW)).json() == []


@pytest.mark.parametrize(
    ("section", "field", "reason"),
    [
        ({"channels": [{"channel": "a/b/c"}]}, "channel", "should match pattern"),
        ({"channels": [{"channel": "a/b/c/d", "tolerance": {"mpe": 1, "upper": 2}}]},
         "tolerance", "either mpe or lower/upper"),
        ({"channels": [{"channel": "a/b/c/d", "tolerance": {"lower": 3, "upper": 2}}]},
         "tolerance", "lower 3.0 is above upper 2.0"),
        ({"channels": [{"channel": "a/b/c/d", "tolerance": {}}]}, "tolerance", "needs mpe"),
        ({"channels": [{"channel": "a/b/c/d", "degree": 7}]}, "degree", "less than or equal"),
        ({"channels": [{"channel": "a/b/c/d", "resolution": -1}]}, "resolution", "greater than"),
        ({"channels": [{"channel": "a/b/c/d", "reading_uncertainty": "nan"}]},
         "reading_uncertainty", "finite"),
        ({"channels": [{"channel": "a/b/c/d", "method": "spline"}]}, "method", "linear"),
        ({"channels": [{"channel": "a/b/c/d", "coverage_factor": 0.5}]}, "coverage_factor",
         "greater than or equal to 1"),
        ({"channels": [{"channel": "a/b/c/d", "decision_rule": {"kind": "maybe"}}]},
         "decision_rule", "simple_acceptance"),
        ({"reload_s": 0}, "reload_s", "greater than or equal"),
        ({"typo": True}, "typo", "Extra inputs are not permitted"),
    ],
)  # fmt: skip
def test_config_refusals_name_the_field(section: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as refused:
        GatewayConfig.model_validate(
            {
                "site": "lab",
                "spool": {"path": "s.db"},
                "store": {"kind": "sqlite", "path": "r.db"},
                "records": {"path": "rec.db"},
                "corrections": section,
            }
        )
    text = str(refused.value)
    assert "corrections" in text and field in text and reason in text


def test_first_matching_entry_applies() -> None:
    config = CorrectionsConfig.model_validate(
        {
            "channels": [
                {"channel": "lab/bath-*/prt/temperature", "method": "polynomial", "degree": 2},
                {"channel": "*/*/*/*", "resolution": 0.01},
            ]
        }
    )
    assert config.for_channel("lab/bath-2/prt/temperature").method == "polynomial"
    assert config.for_channel("lab/room/th/humidity").resolution == 0.01
    assert CorrectionsConfig().for_channel("a/b/c/d").method == "linear"
