"""Hostile JSON bodies for POST /standards/{id}/certificates: each is a 422 naming the field and
the reason (a validator's own message, not an empty object), never a 500 — NaN and bytes that
are not UTF-8 included — and nothing is registered."""

from __future__ import annotations

import httpx
import pytest

from gateway.service import Gateway
from tests.gateway.standards.test_api import CERTIFICATE, STANDARD, as_, gateway

__all__ = ["gateway"]

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("body", "where", "reason"),
    [
        (CERTIFICATE | {"due_date": "2020-01-01"}, ["body"], "due_date must be after"),
        (CERTIFICATE | {"value": "x"}, ["body", "value"], "valid number"),
        (b"{not json", ["body"], "Invalid JSON"),
        (b'{"value": NaN}', ["body", "value"], "must be a finite number"),
        (b"\xff\xfe", ["body"], "Invalid JSON"),
    ],
)
async def test_a_bad_certificate_body_is_a_422_with_its_reason(
    gateway: Gateway, body: dict[str, object] | bytes, where: list[str], reason: str
) -> None:
    assert gateway.api_url is not None
    admin = as_("ADMIN_TOKEN")
    async with httpx.AsyncClient(base_url=gateway.api_url + "/api/v1", timeout=60) as http:
        assert (await http.post("/standards", json=STANDARD, headers=admin)).status_code == 201
        url = "/standards/Z10-01/certificates"
        if isinstance(body, bytes):
            answer = await http.post(url, content=body, headers=admin | JSON)
        else:
            answer = await http.post(url, json=body, headers=admin)
        assert answer.status_code == 422, answer.text
        errors = answer.json()["detail"]
        assert any(
            e["loc"] == where and reason in (e["msg"] + str(e.get("ctx", ""))) for e in errors
        ), errors
        assert all("input" not in e for e in errors)
        listed = await http.get("/standards/Z10-01/certificates", headers=admin)
        assert listed.json() == []
