"""Every error leaves the API as JSON ``{"error": {"code", "message"}}``, never a stack trace."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from maskface.errors import (
    ImageLoadError,
    ImageTooLargeError,
    InputError,
    MaskfaceError,
    ModelError,
)
from maskface.gallery import DuplicateNameError, GalleryError, UnknownPersonError
from maskface.storage import StoreError

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
               405: "method_not_allowed", 409: "conflict", 413: "payload_too_large",
               415: "unsupported_media_type", 422: "invalid_request", 429: "too_many_requests",
               500: "internal", 503: "unavailable"}


class ApiError(Exception):
    """An error the client should see: HTTP status, stable code and a one-line message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


def error_response(status: int, code: str, message: str, headers=None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status,
                        headers=headers)


def _validation_message(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":  # loc is ("body", character offset)
            where = err.get("loc", ("", "?"))[-1]
            detail = (err.get("ctx") or {}).get("error", "")
            parts.append(f"the request body is not valid JSON ({detail} at character {where})")
            continue
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path"))
        if str(err.get("type", "")).startswith("datetime"):  # pydantic: "input is too short"
            parts.append(f"{loc}: expected an ISO 8601 time (e.g. 2026-12-01T08:00:00Z) or "
                         "epoch seconds")
            continue
        parts.append(f"{loc}: {err.get('msg', 'invalid')}" if loc else err.get("msg", "invalid"))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.code, exc.message)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        code = _HTTP_CODES.get(exc.status_code, f"http_{exc.status_code}")
        msg = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, msg, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        message = _validation_message(exc)
        sent = request.headers.get("content-type", "").split(";")[0].strip().lower()
        missing = [e["loc"][-1] for e in exc.errors()
                   if e.get("type") == "missing" and e.get("loc", ("",))[0] == "body"]
        if missing and sent not in ("multipart/form-data", "application/json",
                                    "application/x-www-form-urlencoded"):
            # a photo POSTed as the raw body is the commonest first try at the API
            message += (f" (the fields go in a multipart/form-data body, e.g. curl -F "
                        f"{missing[0]}=@photo.jpg; this request's body was "
                        f"{sent or 'not typed'})")
        return error_response(422, "invalid_request", message)

    @app.exception_handler(ImageLoadError)
    async def _image(request: Request, exc: ImageLoadError):
        too_large = isinstance(exc, ImageTooLargeError)
        return error_response(413 if too_large else 400,
                              "image_too_large" if too_large else "bad_image", str(exc))

    @app.exception_handler(ModelError)
    async def _model(request: Request, exc: ModelError):
        log.error("model error: %s", exc)
        return error_response(503, "model_unavailable", "a model is unavailable; see the log")

    @app.exception_handler(UnknownPersonError)
    async def _unknown_person(request: Request, exc: UnknownPersonError):
        return error_response(404, "person_not_found", str(exc))

    @app.exception_handler(DuplicateNameError)
    async def _duplicate(request: Request, exc: DuplicateNameError):
        return error_response(409, "duplicate_name", str(exc))

    @app.exception_handler(StoreError)
    @app.exception_handler(GalleryError)
    async def _store(request: Request, exc: MaskfaceError):
        # The message names server paths: log it, tell the client only what to do.
        log.error("database error: %s", exc)
        return error_response(503, "store_unavailable", "database busy or unavailable; retry")

    @app.exception_handler(MaskfaceError)
    async def _maskface(request: Request, exc: MaskfaceError):
        status = 400 if isinstance(exc, InputError) else 500
        if status == 500:
            log.error("%s: %s", type(exc).__name__, exc)
            return error_response(500, "internal", "internal server error")
        return error_response(400, "bad_request", str(exc))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        # The trace goes to the server log only: it can reveal paths, code and data.
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal server error")
