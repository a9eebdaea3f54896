"""Browsers on other origins: CORS for the listed ones, and a 403 for the rest.

`CORS_ORIGINS` lists the exact origins (`https://app.example.com`) whose pages may call the API
with `credentials: 'include'`; empty means same origin only. Flask-Cors answers preflights and
adds `Access-Control-Allow-Origin` (the origin itself, never `*`) and
`Access-Control-Allow-Credentials` for those origins only.

CORS only stops a page from reading an answer; a "simple" request (a bodyless POST, or one with
`text/plain`) is still sent and acted on. So every state-changing request that carries an
`Origin` is also checked here: neither this service's own origin nor a listed one → 403
`FORBIDDEN`, before any view runs. Requests without `Origin` (other services, curl) pass.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, current_app, request
from flask_cors import CORS

from .config import ConfigError
from .errors import ApiError

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ALLOWED_METHODS = ["GET", "POST", "PUT", "DELETE"]
ALLOWED_HEADERS = ["Content-Type", "Idempotency-Key", "X-Request-ID"]
EXPOSED_HEADERS = ["X-Request-ID", "Idempotent-Replayed", "Retry-After"]


def parse_origins(value: str) -> list[str]:
    """Split CORS_ORIGINS into exact origins; refuse wildcards, paths and other schemes."""
    origins = []
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        parts = urlsplit(item)
        if (
            item == "*"
            or parts.scheme not in ("http", "https")
            or not parts.hostname
            or "*" in item
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
            or parts.username is not None
        ):
            raise ConfigError(
                f"CORS_ORIGINS entry {item!r} is not an origin like https://app.example.com"
            )
        origins.append(f"{parts.scheme}://{parts.netloc}".lower())
    return origins


def register_cors(app: Flask) -> None:
    """Answer CORS for the configured origins and refuse writes from any other origin."""
    origins = parse_origins(app.config.get("CORS_ORIGINS", ""))
    app.config["CORS_ALLOWED_ORIGINS"] = frozenset(origins)
    CORS(
        app,
        resources={r"/api/*": {"origins": origins}},
        supports_credentials=True,
        methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=600,
        vary_header=True,
    )
    # Before-request hooks run before any view, so a foreign write never reaches one.
    app.before_request(check_origin)


def check_origin() -> None:
    """Refuse a state-changing request sent from a page on an origin that is not allowed."""
    if request.method not in STATE_CHANGING:
        return
    origin = request.headers.get("Origin")
    if origin is None:
        return
    origin = origin.strip().lower()
    if origin == own_origin() or origin in current_app.config["CORS_ALLOWED_ORIGINS"]:
        return
    raise ApiError(
        "FORBIDDEN", "Requests from this page's origin are not allowed.", {"origin": origin}
    )


def own_origin() -> str:
    """This service's origin as the request reached it (behind trusted proxies, theirs)."""
    return f"{request.scheme}://{request.host}".lower()
