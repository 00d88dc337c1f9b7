"""Schemathesis against the gateway's OpenAPI document: generated requests, valid and invalid, to
every endpoint (reads, and the standards registry's and alerts' changes, as an admin) never get a
5xx, and every answer, refusals included, matches what the document says.

(schemathesis' pytest plugin reads a private pytest attribute that pytest 9 no longer has, so the
operations are driven here with their Hypothesis strategies directly.)
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.gateway.web.conftest import bearer
from tests.support.lab import Lab

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
# The live stream never ends by itself: it has its own test (test_api.py).
ENDLESS = {"/api/v1/live"}


def operations(lab: Lab) -> list[schemathesis.APIOperation]:
    schema = schemathesis.openapi.from_url(f"{lab.api_url}/openapi.json")
    return [
        result.ok() for result in schema.get_all_operations() if result.ok().path not in ENDLESS
    ]


# schemathesis 4 draws from the `random` module inside its strategies, which Hypothesis now
# deprecates; that is schemathesis' business, not a fault of the API under test.
@pytest.mark.filterwarnings(
    "ignore:Do not use the `random` module inside strategies"
    ":hypothesis.errors.HypothesisDeprecationWarning"
)
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_makes_the_api_fail(lab: Lab, mode: GenerationMode) -> None:
    found = operations(lab)
    assert len(found) >= 10
    for operation in found:
        parameters = len(operation.query) + len(operation.path_parameters)
        if mode is GenerationMode.NEGATIVE and parameters == 0:
            continue  # nothing to get wrong

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=bearer("admin"), checks=CHECKS)

        run()


def test_the_document_itself_is_valid_openapi(lab: Lab) -> None:
    document = httpx.get(f"{lab.api_url}/openapi.json").json()
    assert document["openapi"].startswith("3.")
    methods = {"get", "put", "post", "delete", "patch"}
    documented = [
        (path, method)
        for path, item in document["paths"].items()
        if path not in ENDLESS
        for method in item
        if method in methods
    ]
    assert len(operations(lab)) == len(documented)
