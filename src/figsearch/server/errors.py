"""Every error the HTTP API answers with has one JSON shape::

    {"error": {"code": "not_found", "message": "unknown figure id 'X' ...", "status": 404}}

Validation errors add ``"details": [{"field": "k", "problem": "..."}]``. Domain exceptions
(figsearch.errors) carry their own status and code; FastAPI's and Starlette's own errors
(422 validation, 404 unknown route, 405 wrong method) and unexpected exceptions (500, logged,
never shown to the client) are turned into the same shape here, in one place.

Messages never name the server's directories: library messages do (``unknown patent 'X' in
collection /srv/data/coll``, for the CLI's sake), so every message is passed through
``redact_paths`` on its way out, which puts the collection's name where its path was.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import tempfile
from http import HTTPStatus
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from figsearch.errors import FigsearchError, InputError, UnsupportedFormat

log = logging.getLogger(__name__)


class PayloadTooLarge(InputError):
    """An upload over the byte limit, or an image with more pixels than the server decodes."""

    http_status = 413
    code = "too_large"


class UnsupportedMediaType(UnsupportedFormat):
    """An upload whose content is none of the image formats the API reads."""

    http_status = 415


class ServerBusy(FigsearchError):
    """Every thread of a pool is busy and its queue is full: come back after ``retry_after`` seconds."""

    http_status = 503
    code = "busy"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Unauthorized(FigsearchError):
    """A request without this server's access token (or with another one)."""

    http_status = 401
    code = "unauthorized"


#: codes for Starlette's own HTTP errors; anything else falls back to the status phrase
_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_format",
    422: "invalid_request",
}


@functools.lru_cache(maxsize=16)
def _server_directories(collection_root: Path | None) -> tuple[tuple[str, str], ...]:
    """(path, what to show instead), longest first, so a path's deepest known prefix is the one replaced.
    Worked out once per collection: resolving paths reads the file system, which an error answer
    must not do on the event loop each time (py-spy found it there under load)."""
    pairs: list[tuple[str, str]] = []
    if collection_root is not None:
        name = collection_root.name or "collection"
        for form in {str(collection_root), str(collection_root.absolute()), str(collection_root.resolve())}:
            pairs.append((form, name))
    package = Path(__file__).resolve().parent.parent
    for directory, shown in ((package, "figsearch"), (Path(sys.prefix), "python"),
                             (Path(tempfile.gettempdir()), "tmp"), (Path.home(), "~"), (Path.cwd(), ".")):
        pairs.append((str(directory), shown))
    # "/" or a one-letter prefix would blank out ordinary text
    pairs = [(p, s) for p, s in pairs if len(p) > 3 and p != os.sep]
    return tuple(sorted(set(pairs), key=lambda pair: -len(pair[0])))


def redact_paths(message: str, collection_root: Path | None = None) -> str:
    """``message`` with the server's directories (the collection's, the installation's, the home
    and temporary directories) replaced by short names."""
    for path, shown in _server_directories(collection_root):
        if path in message:
            message = message.replace(path, shown)
    return message


def _root_of(request: Request) -> Path | None:
    state = getattr(request.app.state, "figsearch", None)
    return getattr(state, "root", None)


def error_body(status: int, code: str, message: str, details: list[dict] | None = None) -> dict:
    error: dict = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = details
    return {"error": error}


def error_response(status: int, code: str, message: str, details: list[dict] | None = None, headers=None) -> JSONResponse:
    return JSONResponse(error_body(status, code, message, details), status_code=status, headers=headers)


def _field_name(loc) -> str:
    # ("body", "k") / ("query", "k") -> "k"; the first element says where, not what
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 else [str(p) for p in loc]
    return ".".join(parts) or "request"


def validation_details(exc: RequestValidationError) -> list[dict]:
    return [{"field": _field_name(e.get("loc", ())), "problem": e.get("msg", "invalid")} for e in exc.errors()]


async def _figsearch_error(request: Request, exc: FigsearchError) -> JSONResponse:
    status = exc.http_status
    if status >= 500 and status != 503:
        log.error("%s %s failed: %s", request.method, request.url.path, exc)
    headers = None
    if isinstance(exc, ServerBusy):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, Unauthorized):
        headers = {"WWW-Authenticate": 'Bearer realm="figsearch"'}
    return error_response(status, exc.code, redact_paths(str(exc), _root_of(request)), headers=headers)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    details = validation_details(exc)
    summary = "; ".join(f"{d['field']}: {d['problem']}" for d in details[:5])
    return error_response(422, "invalid_request", f"invalid request: {summary}", details)


async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
    status = exc.status_code
    code = _HTTP_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
    message = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    message = redact_paths(message, _root_of(request))
    if status == 404 and message == "Not Found":
        message = f"no such resource: {request.method} {request.url.path}"
    elif status == 405:
        message = f"method {request.method} is not allowed on {request.url.path}"
    return error_response(status, code, message, headers=getattr(exc, "headers", None))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # the traceback goes to the log, never to the client
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal_error", "internal server error; the server log has the details")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(FigsearchError, _figsearch_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected_error)


class ErrorDetail(BaseModel):
    field: str
    problem: str


class ErrorInfo(BaseModel):
    code: str = Field(examples=["not_found"], description="short machine-readable code")
    message: str = Field(description="what went wrong, naming the input at fault")
    status: int = Field(examples=[404], description="the HTTP status, repeated")
    details: list[ErrorDetail] | None = Field(None, description="one entry per invalid field (422 only)")


class ErrorResponse(BaseModel):
    """The one shape of every 4xx and 5xx answer."""

    error: ErrorInfo


def error_responses(*statuses: int) -> dict:
    """``responses=`` for a route: the shared error shape under each status it may answer."""
    return {s: {"model": ErrorResponse, "description": HTTPStatus(s).phrase} for s in statuses}
