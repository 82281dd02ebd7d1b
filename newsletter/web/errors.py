"""Errors mapped to answers, in one place: a plain page for people, problem+json for machines.

``UserError`` → 4xx (``NotFound`` 404, ``LinkExpired`` 410, others 400), except the operator's
own mistakes (``ConfigError``, ``SchemaOutOfDate``: a visitor can do nothing about a bad
setting, so they are 500 like any fault of ours); ``DatabaseUnavailable`` → 503, try again
later; a request Starlette or FastAPI refuses keeps its status (404, 405, 422); anything else
is a bug or an outage: 500,
logged with its traceback by the server, and the visitor sees one sentence, never a stack, a
query or a file name. Webhooks, health and metrics answer JSON (RFC 9457 problem documents),
so a provider sees a status it can act on (5xx: retry later).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from newsletter.errors import (
    ConfigError,
    DatabaseUnavailable,
    LinkExpired,
    NotFound,
    SchemaOutOfDate,
    UserError,
)
from newsletter.web.pages import render

log = logging.getLogger(__name__)
MACHINE_PREFIXES = ("/webhooks/", "/healthz", "/metrics")
TITLES = {
    400: "This link or form is not valid",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed",
    410: "This link has expired",
    413: "Too large",
    422: "Please check the form",
    429: "Too many attempts",
    500: "Something went wrong on our side",
    503: "Temporarily unavailable",
}


def install(app: FastAPI) -> None:
    app.add_exception_handler(HTTPException, _http_error)  # type: ignore[arg-type]
    app.add_exception_handler(RequestValidationError, _validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(UserError, _user_error)  # type: ignore[arg-type]
    app.add_exception_handler(DatabaseUnavailable, _unavailable)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _server_error)


def error_response(request: Request, status: int, detail: str) -> Response:
    title = TITLES.get(status, "Error")
    if request.url.path.startswith(MACHINE_PREFIXES):
        return JSONResponse(
            {"type": "about:blank", "title": title, "status": status, "detail": detail},
            status_code=status,
            media_type="application/problem+json",
        )
    return render(request, "error.html", {"title": title, "detail": detail}, status_code=status)


async def _http_error(request: Request, exc: HTTPException) -> Response:
    detail = exc.detail if isinstance(exc.detail, str) else TITLES.get(exc.status_code, "")
    if exc.status_code == 404 and detail == "Not Found":
        detail = "There is no page at this address."
    response = error_response(request, exc.status_code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    fields = sorted({str(error["loc"][-1]) for error in exc.errors() if error.get("loc")})
    detail = "Missing or invalid: " + ", ".join(fields) if fields else "The request is invalid."
    return error_response(request, 422, detail)


async def _user_error(request: Request, exc: UserError) -> Response:
    if isinstance(exc, ConfigError | SchemaOutOfDate):
        return await _server_error(request, exc)
    status = 404 if isinstance(exc, NotFound) else 410 if isinstance(exc, LinkExpired) else 400
    return error_response(request, status, _sentence(str(exc)))


async def _server_error(request: Request, exc: Exception) -> Response:
    # The server logs the traceback (uvicorn does, as the exception propagates); the visitor
    # gets nothing of it.
    log.error("error in %s %s: %s", request.method, request.url.path, type(exc).__name__)
    return error_response(request, 500, "Please try again in a few minutes.")


async def _unavailable(request: Request, exc: DatabaseUnavailable) -> Response:
    log.error("error in %s %s: %s", request.method, request.url.path, exc)
    return error_response(request, 503, "Please try again in a few minutes.")


def _sentence(message: str) -> str:
    message = message.strip()
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
