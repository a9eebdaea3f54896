"""The error envelope, `ApiError`, and the handlers that turn every failure into the envelope
(the codes themselves are error_codes.py's records)."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, g, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from .error_codes import ERRORS

log = logging.getLogger(__name__)


# The codes of the HTTP errors Flask, Werkzeug and Flask-Limiter raise themselves, by status;
# the sentence is the code's example (RATE_LIMITED computes its own, with the seconds to wait).
HTTP_CODES: dict[int, str] = {
    ERRORS[code].status: code
    for code in (
        "INVALID_JSON",
        "UNAUTHORIZED",
        "FORBIDDEN",
        "NOT_FOUND",
        "METHOD_NOT_ALLOWED",
        "PAYLOAD_TOO_LARGE",
        "UNSUPPORTED_MEDIA_TYPE",
        "RATE_LIMITED",
        "SERVICE_UNAVAILABLE",
    )
}


class ApiError(Exception):
    """A failure the client should see: a contract code (its status comes from ERRORS)."""

    def __init__(
        self,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        if details is not None and not isinstance(details, dict):
            raise TypeError("ApiError(code, message, details): the status comes from ERRORS")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = ERRORS[code].status
        self.details = details or {}
        self.headers = headers or {}


def envelope(code: str, message: str, details: dict | None = None, headers=None):
    """Build the JSON error response of `code`, and note the code for the request's log line."""
    g.error_code = code
    response = jsonify({"success": False, "error": message, "code": code, "details": details or {}})
    response.status_code = ERRORS[code].status
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
    return ApiError("VALIDATION_ERROR", message, details)


def field_error(code: str, message: str, field: str, **extra: Any) -> ApiError:
    """Make an error that names one offending field."""
    return ApiError(code, message, {"field": field, **extra})


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
        return envelope(error.code, error.message, error.details, error.headers)

    @app.errorhandler(ValidationError)
    def handle_validation_error(error: ValidationError):
        """Render marshmallow's errors as VALIDATION_ERROR with dotted field paths."""
        api_error = validation_error(flatten_messages(error.messages))
        return handle_api_error(api_error)

    @app.errorhandler(HTTPException)
    def handle_http_exception(error: HTTPException):
        """Render Werkzeug's HTTP errors (404, 405, 413, 429, ...) as the envelope."""
        code = HTTP_CODES.get(error.code or 500, "INTERNAL_ERROR")
        message = ERRORS[code].example
        details: dict[str, Any] = {}
        headers = {}
        if code == "METHOD_NOT_ALLOWED" and error.valid_methods:
            headers["Allow"] = ", ".join(sorted(error.valid_methods))
        if code == "RATE_LIMITED":
            seconds = _seconds_until_reset()
            message = f"Too many requests; try again in {seconds} second{'s' * (seconds != 1)}."
            details["retryAfter"] = seconds
            headers["Retry-After"] = str(seconds)
        return envelope(code, message, details, headers)

    @app.errorhandler(OperationalError)
    def handle_database_down(error: OperationalError):
        """Answer 503 while the database cannot be reached."""
        log.error("database unavailable: %s", error.__class__.__name__)
        _rollback_quietly()
        return envelope("SERVICE_UNAVAILABLE", ERRORS["SERVICE_UNAVAILABLE"].example)

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
        return envelope("INTERNAL_ERROR", ERRORS["INTERNAL_ERROR"].example)


def _seconds_until_reset() -> int:
    """Seconds until the breached rate limit lets requests through again (at least 1).

    Rounded down as Flask-Limiter rounds the `Retry-After` it writes over this one.
    """
    from .extensions import limiter

    current = limiter.current_limit
    if current is None:
        return 60
    return max(1, int(current.reset_at - time.time()))


def _rollback_quietly() -> None:
    """Roll the request's transaction back so the connection returns to the pool clean."""
    from .extensions import db

    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the connection may be gone; nothing more to do
        log.warning("rollback failed after an error")
