"""The parameters the published OpenAPI document lists for the channel routes: their names, order,
place and constraints. The routes take them as shared pieces (``ChannelQuery``/``AgentQuery``,
query-parameter models FastAPI lists in place, and the ``ChannelPath`` dependency); a client
reading the document must see what the routes declared one by one before."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from core.models import NAME_PATTERN
from gateway.api import fleet, readings


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    app = FastAPI()
    app.include_router(fleet.router)
    app.include_router(readings.router)
    return app.openapi()


CHANNEL = "/api/v1/channels/{site}/{agent}/{instrument}/{channel}"
FILTER = ["site", "agent", "instrument", "channel"]


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/api/v1/channels", [*FILTER, "room", "status", "tag", "include_retired", "format"]),
        ("/api/v1/readings/latest", [*FILTER, "format"]),
        ("/api/v1/live", [*FILTER, "interval_ms"]),
        ("/api/v1/instruments", ["site", "agent", "state", "include_retired", "format"]),
        (CHANNEL, FILTER),
        (f"{CHANNEL}/history", [*FILTER, "start", "end", "max_points", "format"]),
    ],
)
def test_the_channel_routes_list_their_parameters_in_declared_order(
    document: dict[str, Any], path: str, expected: list[str]
) -> None:
    parameters = document["paths"][path]["get"]["parameters"]
    assert [p["name"] for p in parameters] == expected


@pytest.mark.parametrize("path", ["/api/v1/channels", "/api/v1/readings/latest", "/api/v1/live"])
def test_a_name_filter_is_an_optional_query_parameter_with_the_name_pattern(
    document: dict[str, Any], path: str
) -> None:
    parameters = {p["name"]: p for p in document["paths"][path]["get"]["parameters"]}
    for name in FILTER:
        parameter = parameters[name]
        assert parameter["in"] == "query"
        assert parameter["required"] is False
        assert parameter["description"] == "Exact name."
        assert {"type": "string", "pattern": NAME_PATTERN} in parameter["schema"]["anyOf"]


@pytest.mark.parametrize("path", [CHANNEL, f"{CHANNEL}/history"])
def test_a_channel_path_names_four_required_path_parameters(
    document: dict[str, Any], path: str
) -> None:
    parameters = document["paths"][path]["get"]["parameters"][:4]
    assert [(p["name"], p["in"], p["required"]) for p in parameters] == [
        (name, "path", True) for name in FILTER
    ]
    assert all(p["schema"]["pattern"] == NAME_PATTERN for p in parameters)
