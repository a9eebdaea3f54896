"""Request checks and response headers shared by every endpoint."""

from __future__ import annotations

from flask import Flask, request

from .errors import ApiError

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def _has_body() -> bool:
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


def require_json_content_type() -> None:
    """A state-changing request that carries a body must say it is JSON (else 415)."""
    if request.method in BODY_METHODS and _has_body() and not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.", 415)


def register_http_hooks(app: Flask) -> None:
    """Install the content-type check."""
    app.before_request(require_json_content_type)
