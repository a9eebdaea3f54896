"""The contract's error envelope, and the handlers that turn every failure into it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from flask import Flask, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)

# HTTP errors raised by Flask/Werkzeug themselves, mapped to the contract's codes.
HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("INVALID_JSON", "The request body is not valid JSON."),
    401: ("UNAUTHORIZED", "Authentication is required."),
    403: ("FORBIDDEN", "You are not allowed to do this."),
    404: ("NOT_FOUND", "The requested resource does not exist."),
    405: ("METHOD_NOT_ALLOWED", "This method is not allowed for this resource."),
    413: ("PAYLOAD_TOO_LARGE", "The request body is larger than 1 MiB."),
    415: ("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json."),
    429: ("RATE_LIMITED", "Too many requests; try again later."),
    503: ("SERVICE_UNAVAILABLE", "The service is temporarily unavailable."),
}


class ApiError(Exception):
    """A failure the client should see, with the contract's code and HTTP status."""

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.details = details or {}
        self.headers = headers or {}


def envelope(code: str, message: str, status: int, details: dict | None = None, headers=None):
    """Build the JSON error response."""
    response = jsonify({"success": False, "error": message, "code": code, "details": details or {}})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """Turn marshmallow's nested error dict into `{"a.b": ["msg", ...]}`."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            if key == "_schema":
                path = prefix or "_schema"
            for sub_path, sub_messages in flatten_messages(value, path).items():
                flat.setdefault(sub_path, []).extend(sub_messages)
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, dict | list):
                for sub_path, sub_messages in flatten_messages(item, prefix).items():
                    flat.setdefault(sub_path, []).extend(sub_messages)
            else:
                flat.setdefault(prefix or "_schema", []).append(str(item))
    else:
        flat.setdefault(prefix or "_schema", []).append(str(messages))
    return flat


def validation_error(fields: dict[str, list[str]]) -> ApiError:
    """Make the VALIDATION_ERROR for a map of field paths to messages."""
    first = next(iter(fields))
    message = f"{first}: {fields[first][0]}" if first != "_schema" else fields[first][0]
    details: dict[str, Any] = {"fields": fields}
    if first != "_schema":
        details["field"] = first
    return ApiError("VALIDATION_ERROR", message, 400, details)


def field_error(code: str, message: str, status: int, field: str, **extra: Any) -> ApiError:
    """Make an error that names one offending field."""
    return ApiError(code, message, status, {"field": field, **extra})


def register_error_handlers(app: Flask) -> None:
    """Render every exception as the contract's JSON envelope."""

    # Registered after Flask-SQLAlchemy's teardown, so it runs first (teardowns run in reverse).
    @app.teardown_appcontext
    def remove_session_quietly(_error: BaseException | None) -> None:
        """End the request's session; a connection the database dropped after the answer was
        made (a server shutting down) must not turn that answer into gunicorn's HTML 500."""
        from .extensions import db

        try:
            db.session.remove()
        except DBAPIError:
            log.warning("database connection lost while ending a request; discarded")
            # Close the connection itself (no ROLLBACK is tried again), then forget the session.
            db.session().invalidate()
            db.session.remove()

    @app.errorhandler(ApiError)
    def handle_api_error(error: ApiError):
        """Render a domain error as the envelope."""
        return envelope(error.code, error.message, error.status, error.details, error.headers)

    @app.errorhandler(ValidationError)
    def handle_validation_error(error: ValidationError):
        """Render marshmallow's errors as VALIDATION_ERROR with dotted field paths."""
        api_error = validation_error(flatten_messages(error.messages))
        return handle_api_error(api_error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        """Render Werkzeug's HTTP errors (404, 405, 413, 429, ...) as the envelope."""
        status = error.code or 500
        code, message = HTTP_CODES.get(status, ("INTERNAL_ERROR", "Unexpected error."))
        headers = {}
        if status == 405 and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if status == 429:
            headers["Retry-After"] = str(_seconds_until_reset())
        return envelope(code, message, status, {}, headers)

    @app.errorhandler(OperationalError)
    def handle_database_down(error: OperationalError):
        """Answer 503 while the database cannot be reached."""
        log.error("database unavailable: %s", error.__class__.__name__)
        _rollback_quietly()
        return envelope(
            "SERVICE_UNAVAILABLE", "The database is unavailable; try again shortly.", 503
        )

    @app.errorhandler(DBAPIError)
    def handle_database_error(error: DBAPIError):
        """Treat a dropped connection as an outage, anything else as unexpected."""
        if error.connection_invalidated:
            return handle_database_down(error)  # type: ignore[arg-type]
        return handle_unexpected(error)

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception):
        """Log the failure and answer 500 without a trace."""
        log.exception("unhandled error")
        _rollback_quietly()
        return envelope("INTERNAL_ERROR", "An unexpected error occurred.", 500)


def _seconds_until_reset() -> int:
    """Seconds until the breached rate limit lets requests through again (at least 1)."""
    from .extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, math.ceil(current.reset_at - time.time()))


def _rollback_quietly() -> None:
    """Roll the request's transaction back so the connection returns to the pool clean."""
    from .extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; nothing more to do
        log.warning("rollback failed after an error")
