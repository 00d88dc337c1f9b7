"""The one place the HTTP API maps the error tree (:mod:`core.errors`) to status codes.

Routes raise domain errors and let them pass; the handlers installed here answer with the status
of the error's kind and FastAPI's usual body, ``{"detail": REASON}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse

from core.errors import (
    ConflictError,
    EtalonError,
    InvalidInputError,
    NotFoundError,
    OperationError,
    StoreError,
)

STATUS_BY_KIND: tuple[tuple[type[EtalonError], int], ...] = (
    (NotFoundError, status.HTTP_404_NOT_FOUND),
    (ConflictError, status.HTTP_409_CONFLICT),
    (InvalidInputError, status.HTTP_422_UNPROCESSABLE_CONTENT),
    (OperationError, status.HTTP_400_BAD_REQUEST),
    (StoreError, status.HTTP_503_SERVICE_UNAVAILABLE),
)
"""Most specific first: the first kind an error is an instance of gives its status."""


def status_for(error: EtalonError) -> int:
    """The HTTP status that answers ``error``; 500 for a kind the API does not expect."""
    for kind, code in STATUS_BY_KIND:
        if isinstance(error, kind):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EtalonError)
    return JSONResponse({"detail": str(error)}, status_code=status_for(error))


def install(app: FastAPI) -> None:
    """Answer every operation and store error a route lets pass with its mapped status."""
    app.add_exception_handler(OperationError, _answer)
    app.add_exception_handler(StoreError, _answer)
