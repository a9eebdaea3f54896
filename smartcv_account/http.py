"""Request checks and response headers shared by every endpoint."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ApiError
from .logs import REQUEST_ID_HEADER, REQUEST_LOGGER, configure_logging, request_id
from .payments import budget

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A JSON API loads nothing and is never framed; browsers that honour CSP enforce both.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
HSTS = "max-age=31536000; includeSubDomains"
# Pages a browser is meant to open from anywhere: the sign-in redirects that identity providers
# send browsers back to, and the API reference (its assets are under /api/docs/ too).
NAVIGABLE_PREFIXES = ("/api/auth/oidc/", "/api/docs", "/api/openapi.json")
# Sec-Fetch-Mode of a top-level or framed page load ("nested-navigate": older Chromium frames).
NAVIGATION_MODES = frozenset({"navigate", "nested-navigate"})

request_log = logging.getLogger(REQUEST_LOGGER)


def _has_body() -> bool:
    """True when the request announces a body (a length or chunked encoding)."""
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


def require_json_content_type() -> None:
    """A state-changing request that carries a body must say it is JSON (else 415)."""
    if request.method in BODY_METHODS and _has_body() and not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.")


def refuse_cross_site_navigation() -> None:
    """Refuse a page load of an API endpoint started on another site (403), before it counts.

    A link or a form on another site opens the endpoint with the user's SameSite=Lax cookie, so
    without this a stranger's page could read nothing but still make the user's export count
    against their limit. Browsers say where a request comes from in `Sec-Fetch-Site`; clients
    that send no such header (other services, curl) and the API's own pages' fetches pass.
    """
    headers = request.headers
    if (
        headers.get("Sec-Fetch-Site") == "cross-site"
        and headers.get("Sec-Fetch-Mode") in NAVIGATION_MODES
        and request.path.startswith("/api/")
        and not request.path.startswith(NAVIGABLE_PREFIXES)
    ):
        raise ApiError("FORBIDDEN", "This address cannot be opened from a link on another site.")


def start_timer() -> None:
    """Note when the request started, for the log line's duration, and start its time budget
    for the payment provider (payments/budget.py)."""
    g.request_started = time.perf_counter()
    budget.start(current_app.config["PROVIDER_TIME_BUDGET_SECONDS"])


def add_response_headers(response: Response) -> Response:
    """Add the request id and the security headers to every response, errors included."""
    headers = response.headers
    headers[REQUEST_ID_HEADER] = request_id()
    # Werkzeug's `in` and `setdefault` raise and catch an exception for every header that is
    # absent, which is the usual case here: one pass over the few headers already set instead.
    present = {name.lower() for name, _ in headers}
    for name, value in SECURITY_HEADERS.items():
        if name.lower() not in present:  # a view may set its own (the reference page's CSP)
            headers.add(name, value)
    if request.path == "/api" or request.path.startswith("/api/"):
        # Account data must not sit in shared or browser caches, and depends on the cookie.
        headers["Cache-Control"] = "no-store"
        headers.add("Vary", "Cookie")
    if current_app.config.get("SESSION_COOKIE_SECURE"):
        headers["Strict-Transport-Security"] = HSTS
    return response


def log_request(response: Response) -> Response:
    """Write this request's one log line (no query string, body or headers: they hold secrets)."""
    status = response.status_code
    started = g.get("request_started")
    fields = {
        "method": request.method,
        "path": request.path,
        "status": status,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
        "remote_addr": request.remote_addr,
    }
    if status >= 400:
        fields["code"] = g.get("error_code")
    level = logging.WARNING if status >= 500 else logging.INFO
    if request_log.isEnabledFor(level):
        # `Logger.log` less its search of the stack for the caller's file and line, which are
        # always this function's and are not written.
        arguments = (fields["method"], fields["path"], status)
        line = request_log.makeRecord(
            REQUEST_LOGGER, level, __file__, 0, "%s %s %s", arguments, None, extra=fields
        )
        request_log.handle(line)
    return response


def register_http_hooks(app: Flask) -> None:
    """Install logging, the request id, the request checks and the response headers."""
    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    configure_logging(app)
    # First of all before-request hooks: the rate limiter's runs earlier otherwise, and a 429
    # would then be logged without a duration.
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, start_timer)
    # Right after it, still before the rate limiter and anything that loads the session: a
    # refused navigation must not count against a limit or touch the database.
    hooks.insert(1, refuse_cross_site_navigation)
    app.before_request(require_json_content_type)
    # after_request hooks run in reverse order: the log line is written last, with the headers.
    app.after_request(log_request)
    app.after_request(add_response_headers)
