"""Where the HTTP API answers the error tree (:mod:`core.errors`) with status codes.

Routes raise domain errors and let them pass; the handlers installed here answer with the status
of the error's kind (:func:`core.http_api.status_for`, the mapping the hub shares) and
FastAPI's usual body, ``{"detail": REASON}``. The reason is in the language the request asks for
(``?lang=vi``, else its ``Accept-Language``; English otherwise, so a client that asks for nothing
reads what it always read): the API's own refusals, the domain errors' and a request's
validation problems, through the catalogue (:func:`core.i18n.translate_reason`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from core.config_loader import reason
from core.errors import EtalonError, OperationError, StoreError
from core.http_api import status_for
from core.i18n import LANGUAGES, accepted_language, load_table, register, translate_reason

register(load_table(__package__, "problems.json"))


def request_language(request: Request) -> str:
    """The language a request asks for: ``?lang=``, else the most preferred of
    ``Accept-Language`` that the catalogue has, else English."""
    asked = request.query_params.get("lang")
    if asked in LANGUAGES:
        return asked
    return accepted_language(request.headers.get("accept-language", "")) or "en"


async def _answer(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, EtalonError)
    detail = translate_reason(str(error), request_language(request))
    return JSONResponse({"detail": detail}, status_code=status_for(error))


async def _refused(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    lang = request_language(request)
    if lang != "en" and isinstance(error.detail, str):
        error = HTTPException(
            error.status_code, translate_reason(error.detail, lang), headers=error.headers
        )
    return await http_exception_handler(request, error)


async def _invalid(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    lang = request_language(request)
    if lang == "en":
        return await request_validation_exception_handler(request, error)
    problems: list[dict[str, Any]] = [
        {**item, "msg": reason(item, lang)} for item in error.errors()
    ]
    return await request_validation_exception_handler(
        request, RequestValidationError(problems, body=error.body)
    )


def install(app: FastAPI) -> None:
    """Answer every operation and store error a route lets pass with its mapped status, every
    refusal and invalid request in the language the request asks for."""
    app.add_exception_handler(OperationError, _answer)
    app.add_exception_handler(StoreError, _answer)
    app.add_exception_handler(HTTPException, _refused)
    app.add_exception_handler(RequestValidationError, _invalid)
