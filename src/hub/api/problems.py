"""The one place the hub's API maps the error tree (:mod:`core.errors`) to status codes (the
same mapping as the gateway's): NotFoundError 404, ConflictError 409, InvalidInputError 422,
other OperationError 400, StoreError 503; the body is ``{"detail": REASON}``."""

from __future__ import annotations

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse, Response

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


def status_for(error: EtalonError) -> int:
    """The HTTP status that answers ``error``."""
    for kind, code in STATUS_BY_KIND:
        if isinstance(error, kind):
            return code
    return status.HTTP_500_INTERNAL_SERVER_ERROR


async def _answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, EtalonError)
    if request.url.path.startswith("/ui"):
        from hub.api.pages import error_page

        return error_page(request, status_for(error), str(error))
    return JSONResponse({"detail": str(error)}, status_code=status_for(error))


def install(app: FastAPI) -> None:
    """Answer every operation and store error a route lets pass with its mapped status."""
    app.add_exception_handler(OperationError, _answer)
    app.add_exception_handler(StoreError, _answer)
