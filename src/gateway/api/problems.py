"""Where the HTTP API answers the error tree (:mod:`core.errors`) with status codes.

Routes raise domain errors and let them pass; the handlers installed here answer with the status
of the error's kind (:func:`core.http_api.status_for`, the mapping the hub shares) and
FastAPI's usual body, ``{"detail": REASON}``.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from core.errors import EtalonError, OperationError, StoreError
from core.http_api import status_for


async def _answer(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EtalonError)
    return JSONResponse({"detail": str(error)}, status_code=status_for(error))


def install(app: FastAPI) -> None:
    """Answer every operation and store error a route lets pass with its mapped status."""
    app.add_exception_handler(OperationError, _answer)
    app.add_exception_handler(StoreError, _answer)
