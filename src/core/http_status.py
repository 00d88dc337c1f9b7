"""The one mapping of the error tree (:mod:`core.errors`) to HTTP status codes, shared by every
HTTP API (the gateway's and the hub's) and free of any web framework."""

from __future__ import annotations

from http import HTTPStatus

from core.errors import (
    ConflictError,
    EtalonError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    StoreError,
)

STATUS_BY_KIND: tuple[tuple[type[EtalonError], int], ...] = (
    (NotFoundError, HTTPStatus.NOT_FOUND.value),
    (ConflictError, HTTPStatus.CONFLICT.value),
    (InvalidInputError, HTTPStatus.UNPROCESSABLE_ENTITY.value),
    (OperationError, HTTPStatus.BAD_REQUEST.value),
    (StoreError, HTTPStatus.SERVICE_UNAVAILABLE.value),
)
"""Most specific first: the first kind an error is an instance of gives its status."""


def status_for(error: EtalonError) -> int:
    """The HTTP status that answers ``error``; 500 for a kind an API does not expect."""
    for kind, code in STATUS_BY_KIND:
        if isinstance(error, kind):
            return code
    return HTTPStatus.INTERNAL_SERVER_ERROR.value
