"""The API's one error shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_input",
    429: "too_many_requests",
    500: "internal_error",
}


class ApiError(Exception):
    """Raised inside an API view to answer with the error shape."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")
        self.details = details or {}


def error_response(
    status: int, message: str, code: str | None = None, details: dict[str, Any] | None = None
) -> Response:
    body = {
        "error": {
            "code": code or _CODES.get(status, "error"),
            "message": message,
            "details": details or {},
        }
    }
    response = jsonify(body)
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="campaign"'
    return response


def _is_api() -> bool:
    return request.path.startswith("/api/")


def install_error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.message, exc.code, exc.details)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if _is_api():
            return error_response(status, exc.description or exc.name)
        if status < 400:
            return exc
        return render_template(
            "errors/error.html", title=exc.name, message=_PAGE_MESSAGES.get(status, exc.description)
        ), status


_PAGE_MESSAGES = {
    400: "The request could not be understood. If you sent a form, reload the page and try again.",
    403: "Your role does not allow this. Ask a manager or an admin if you need access.",
    404: "There is nothing here. It may have been removed, or the link may be wrong.",
    405: "That action is not available here.",
    429: "Too many requests. Wait a minute and try again.",
}
