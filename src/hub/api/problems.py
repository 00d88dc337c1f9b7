"""Where the hub's API answers the error tree (:mod:`core.errors`) with status codes (the
mapping of :mod:`core.http_api`, shared with the gateway): NotFoundError 404, ConflictError
409, InvalidInputError 422, other OperationError 400, StoreError 503; the body is
``{"detail": REASON}`` (a page under ``/ui`` answers with an error page)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from core.errors import EtalonError, OperationError, StoreError
from core.http_api import status_for


async def _answer(request: Request, error: Exception) -> Response:
    assert isinstance(error, EtalonError)
    if request.url.path.startswith("/ui"):
        from hub.api.html import error_page

        return error_page(request, status_for(error), str(error))
    return JSONResponse({"detail": str(error)}, status_code=status_for(error))


def install(app: FastAPI) -> None:
    """Answer every operation and store error a route lets pass with its mapped status."""
    app.add_exception_handler(OperationError, _answer)
    app.add_exception_handler(StoreError, _answer)
