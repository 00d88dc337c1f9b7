"""No two routes of the gateway's API answer the same method and path: Starlette serves the first
one included and silently hides the other (the calibrated-instruments listing was once declared
at ``GET /api/v1/instruments``, the fleet's listing, and never answered)."""

from __future__ import annotations

from collections import Counter

from fastapi.routing import APIRoute

from gateway.api.app import ROUTERS


def test_every_method_and_path_has_one_route() -> None:
    declared = Counter(
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods
    )
    assert len(declared) > 50  # the whole API was walked
    assert [key for key, count in declared.items() if count > 1] == []
