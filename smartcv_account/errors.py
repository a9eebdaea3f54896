"""The contract's error codes and envelope, and the handlers that turn every failure into it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, g, jsonify
from marshmallow import ValidationError
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErrorCode:
    """One code of the contract: its HTTP status, a sentence the service answers it with, and
    what its `details` hold (each key's JSON Schema, with the value of the example answer).

    The document's ErrorEnvelope and every error answer's examples are built from these;
    `tests/test_errors.py` makes the service answer each code and compares it with the example.
    """

    status: int
    example: str
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def example_answer(self, code: str) -> dict[str, Any]:
        """The example as the envelope the service answers with."""
        details = {key: schema["example"] for key, schema in self.details.items()}
        return {"success": False, "error": self.example, "code": code, "details": details}


def detail(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """A `details` key's JSON Schema with the value the code's example carries."""
    return {**schema, "example": example}


def about_field(name: str) -> dict[str, dict[str, Any]]:
    """`details.field`: the request field (or header) the error is about."""
    return {"field": detail(FIELD, name)}


# The keys `details` may hold; an ErrorCode gives each the example's value (`detail`).
FIELD = {
    "type": "string",
    "description": "The request field (or header) the error is about; with VALIDATION_ERROR "
    "the first invalid one.",
}
FIELDS = {
    "type": "object",
    "description": "Each invalid field (dotted path for nested ones, `_schema` for the body as "
    "a whole) with its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
FEEDBACK = {
    "type": "object",
    "description": "Why the password is weak and how to make it stronger.",
    "required": ["warning", "suggestions", "score"],
    "properties": {
        "warning": {"type": "string", "description": "Why the password is easy to guess."},
        "suggestions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ways to make it stronger.",
        },
        "score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4,
            "description": "Its zxcvbn strength score, 0 (weakest) to 4; 3 is needed.",
        },
    },
}
DECLINE_CODE = {
    "type": "string",
    "description": "The card issuer's reason, as Stripe names it (e.g. `card_declined`, "
    "`insufficient_funds`, `expired_card`).",
}
# The metric names are the usage service's; the document defines this component from them.
METRIC = {
    "$ref": "#/components/schemas/UsageMetric",
    "description": "The counter that would pass its limit.",
}
LIMIT = {"type": "integer", "description": "The plan's limit for that metric."}
USED = {"type": "integer", "description": "How much of it is used now."}
RETRY_AFTER = {
    "type": "integer",
    "minimum": 0,
    "description": "Seconds to wait before trying again (also `Retry-After`).",
}
REASON = {
    "type": "string",
    "description": "Why a known coupon does not apply (`already_redeemed`: it is for a first "
    "subscription only); absent when the coupon does not exist.",
}
ORIGIN = {
    "type": "string",
    "description": "The refused page origin, when the Origin check refused the request.",
}

# Every error code of the contract: the one place its status, example and details are written.
ERRORS: dict[str, ErrorCode] = {
    "USER_NOT_FOUND": ErrorCode(404, "No user has this id."),
    "INVALID_PASSWORD": ErrorCode(
        400, "Current password is incorrect.", about_field("currentPassword")
    ),
    "WEAK_PASSWORD": ErrorCode(
        422,
        "The password is too weak: This is a top-10 common password.",
        about_field("password")
        | {
            "feedback": detail(
                FEEDBACK,
                {
                    "warning": "This is a top-10 common password.",
                    "suggestions": ["Add another word or two. Uncommon words are better."],
                    "score": 0,
                },
            )
        },
    ),
    "SUBSCRIPTION_NOT_FOUND": ErrorCode(404, "You have no subscription to change."),
    "PAYMENT_FAILED": ErrorCode(
        402,
        "The payment was declined (insufficient_funds).",
        about_field("paymentMethodId")
        | {"declineCode": detail(DECLINE_CODE, "insufficient_funds")},
    ),
    "PLAN_NOT_FOUND": ErrorCode(
        404, "There is no self-serve plan with id 'gold'.", about_field("planId")
    ),
    "SUBSCRIPTION_LIMIT_EXCEEDED": ErrorCode(
        429,
        "This would pass your plan's resumes limit of 5 (5 used). "
        "Premium (plan_premium_monthly or plan_premium_yearly) lifts it.",
        {"metric": detail(METRIC, "resumes"), "limit": detail(LIMIT, 5), "used": detail(USED, 5)},
    ),
    "VALIDATION_ERROR": ErrorCode(
        400,
        "name: Length must be between 1 and 100.",
        about_field("name")
        | {"fields": detail(FIELDS, {"name": ["Length must be between 1 and 100."]})},
    ),
    "INVALID_JSON": ErrorCode(400, "The request body is not valid JSON."),
    "UNAUTHORIZED": ErrorCode(401, "Sign in to continue."),
    "INVALID_CREDENTIALS": ErrorCode(401, "The email or password is incorrect."),
    "TWO_FACTOR_REQUIRED": ErrorCode(
        401,
        "Enter the code from your authenticator app or a backup code.",
        about_field("twoFactorCode"),
    ),
    "INVALID_TWO_FACTOR_CODE": ErrorCode(
        401,
        "The two-factor code is incorrect or has already been used.",
        about_field("twoFactorCode"),
    ),
    "FORBIDDEN": ErrorCode(
        403,
        "Requests from this page's origin are not allowed.",
        {"origin": detail(ORIGIN, "https://elsewhere.example")},
    ),
    "NOT_FOUND": ErrorCode(404, "The requested resource does not exist."),
    "METHOD_NOT_ALLOWED": ErrorCode(405, "This method is not allowed for this resource."),
    "EMAIL_TAKEN": ErrorCode(
        409, "An account with this email already exists.", about_field("email")
    ),
    "SUBSCRIPTION_ALREADY_EXISTS": ErrorCode(
        409, "You already have a subscription; change it instead of creating another."
    ),
    "INVALID_PLAN_CHANGE": ErrorCode(409, "You are already on Premium Monthly Plan."),
    "TRIAL_NOT_AVAILABLE": ErrorCode(
        409,
        "You have already had a trial or a paid subscription; subscribe without a trial.",
        about_field("trial"),
    ),
    "PAYMENT_METHOD_IN_USE": ErrorCode(
        409,
        "This card pays your subscription; make another card the default before removing it.",
        about_field("id"),
    ),
    "PAYMENT_METHOD_NOT_FOUND": ErrorCode(
        404, "You have no saved card with this id.", about_field("id")
    ),
    "PAYMENT_METHOD_LIMIT_REACHED": ErrorCode(
        409, "You can save at most 5 cards; remove one first.", about_field("paymentMethodId")
    ),
    "INVALID_COUPON": ErrorCode(
        400,
        "The coupon WELCOME20 is for a first subscription and was already used.",
        about_field("couponCode") | {"reason": detail(REASON, "already_redeemed")},
    ),
    "PAYLOAD_TOO_LARGE": ErrorCode(413, "The request body is larger than 1 MiB."),
    "UNSUPPORTED_MEDIA_TYPE": ErrorCode(415, "Send the request body as application/json."),
    "RATE_LIMITED": ErrorCode(
        429, "Too many requests; try again in 42 seconds.", {"retryAfter": detail(RETRY_AFTER, 42)}
    ),
    "INVALID_SIGNATURE": ErrorCode(400, "The webhook signature is missing or invalid."),
    "INTERNAL_ERROR": ErrorCode(500, "An unexpected error occurred."),
    "SERVICE_UNAVAILABLE": ErrorCode(503, "The database is unavailable; try again shortly."),
    "INVALID_TOKEN": ErrorCode(
        400, "This link is invalid or has expired; ask for a new one.", about_field("token")
    ),
    "EMAIL_ALREADY_VERIFIED": ErrorCode(409, "Your email address is already verified."),
    "SESSION_NOT_FOUND": ErrorCode(
        404, "You have no active session with this id.", about_field("id")
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorCode(
        422,
        "This Idempotency-Key was already used with another request body; use a new key.",
        about_field("Idempotency-Key"),
    ),
    "IDEMPOTENCY_KEY_IN_USE": ErrorCode(
        409,
        "A request with this Idempotency-Key is still running; retry it in a moment.",
        about_field("Idempotency-Key"),
    ),
}

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
