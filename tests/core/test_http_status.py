"""The error tree's HTTP statuses, shared by the gateway's and the hub's APIs."""

from __future__ import annotations

import pytest

from core.errors import (
    ConflictError,
    EtalonError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    PayloadError,
    StoreError,
    StoreRejected,
)
from core.http_status import status_for


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (NotFoundError("x"), 404),
        (ConflictError("x"), 409),
        (InvalidInputError("x"), 422),
        (OperationError("x"), 400),
        (StoreError("x"), 503),
        (StoreRejected("x"), 503),
        (PayloadError("x"), 500),
        (EtalonError("x"), 500),
    ],
)
def test_each_kind_answers_its_status_most_specific_first(error: EtalonError, status: int) -> None:
    assert status_for(error) == status
    assert type(status_for(error)) is int
