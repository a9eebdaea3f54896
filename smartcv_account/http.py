"""Request checks and response headers shared by every endpoint."""

from __future__ import annotations

import logging
import time

from flask import Flask, Response, current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from itsdangerous import BadSignature
from werkzeug.middleware.proxy_fix import ProxyFix

from .errors import ApiError
from .logs import REQUEST_ID_HEADER, REQUEST_LOGGER, configure_logging, request_id

BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A JSON API loads nothing and is never framed; browsers that honour CSP enforce both.
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}
_SECURITY_HEADERS = tuple((name.lower(), name, value) for name, value in SECURITY_HEADERS.items())
HSTS = "max-age=31536000; includeSubDomains"

request_log = logging.getLogger(REQUEST_LOGGER)


def _has_body() -> bool:
    """True when the request announces a body (a length or chunked encoding)."""
    return bool(request.content_length) or request.headers.get("Transfer-Encoding") == "chunked"


def require_json_content_type() -> None:
    """A state-changing request that carries a body must say it is JSON (else 415)."""
    if request.method in BODY_METHODS and _has_body() and not request.is_json:
        raise ApiError("UNSUPPORTED_MEDIA_TYPE", "Send the request body as application/json.", 415)


def start_timer() -> None:
    """Note when the request started, for the log line's duration."""
    g.request_started = time.perf_counter()


def add_response_headers(response: Response) -> Response:
    """Add the request id and the security headers to every response, errors included.

    A header the view set itself is kept (the request id and Cache-Control on /api excepted);
    the others are appended in one pass, since this runs on every response.
    """
    headers = response.headers
    present = {name.lower() for name in headers.keys()}  # noqa: SIM118 - Headers, not a dict
    api = request.path == "/api" or request.path.startswith("/api/")
    if "x-request-id" in present:
        del headers[REQUEST_ID_HEADER]
    if api and "cache-control" in present:
        del headers["Cache-Control"]
    added = [(REQUEST_ID_HEADER, request_id())]
    added += [(name, value) for key, name, value in _SECURITY_HEADERS if key not in present]
    if api:
        # Account data must not sit in shared or browser caches.
        added.append(("Cache-Control", "no-store"))
    secure = current_app.config.get("SESSION_COOKIE_SECURE")
    if secure and "strict-transport-security" not in present:
        added.append(("Strict-Transport-Security", HSTS))
    headers.extend(added)
    return response


def log_request(response: Response) -> Response:
    """Write this request's one log line (no query string, body or headers: they hold secrets)."""
    status = response.status_code
    level = logging.WARNING if status >= 500 else logging.INFO
    if not request_log.isEnabledFor(level):
        return response
    started = g.get("request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 2) if started else None
    method, path = request.method, request.path
    # makeRecord and handle are what Logger.log calls, minus its walk up the stack for the
    # caller's file and line, which this line does not print.
    record = request_log.makeRecord(
        request_log.name,
        level,
        __file__,
        0,
        "%s %s %s",
        (method, path, status),
        None,
        extra={
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
            "remote_addr": request.remote_addr,
        },
    )
    request_log.handle(record)
    return response


class VerifiedCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, each cookie's signature checked once per process.

    Opening the cookie (two HMACs, base64, zlib and JSON) is most of what a signed session
    costs, and a browser sends the same cookie on every request. A cookie that verified is
    remembered with its payload and signing time, and honoured again only while its age is
    within the session lifetime, as itsdangerous would judge it; anything else (a new, changed
    or unsigned cookie) goes through the full check. Payloads holding anything mutable are not
    remembered, so no request can change what the next one sees. The secret key cannot change
    under a running app, and each app has its own instance, so the memory is per key.
    """

    max_remembered = 10_000

    def __init__(self) -> None:
        self._verified: dict[str, tuple[dict, int]] = {}

    def open_session(self, app: Flask, request) -> SecureCookieSession | None:
        """Return the session of the request's cookie (empty when it is missing or invalid)."""
        value = request.cookies.get(self.get_cookie_name(app))
        if not value or not app.secret_key:
            return super().open_session(app, request)
        max_age = int(app.permanent_session_lifetime.total_seconds())
        known = self._verified.get(value)
        if known is not None and 0 <= int(time.time()) - known[1] <= max_age:
            return self.session_class(known[0])
        serializer = self.get_signing_serializer(app)
        try:
            data, signed = serializer.loads(value, max_age=max_age, return_timestamp=True)
        except BadSignature:
            return self.session_class()
        if isinstance(data, dict) and all(isinstance(v, _IMMUTABLE) for v in data.values()):
            if len(self._verified) >= self.max_remembered:
                self._verified.clear()
            self._verified[value] = (data, int(signed.timestamp()))
        return self.session_class(data)

    def save_session(self, app: Flask, session, response: Response) -> None:
        """Write the cookie when it changed; otherwise only say the answer depends on it."""
        if session and not self.should_set_cookie(app, session):
            if session.accessed:
                # What Flask does through `response.vary`, a parsed header set, for the same end.
                if "Vary" in response.headers:
                    response.vary.add("Cookie")
                else:
                    response.headers.add("Vary", "Cookie")
            return
        super().save_session(app, session, response)


_IMMUTABLE = (str, int, float, bool, type(None))


def register_http_hooks(app: Flask) -> None:
    """Install logging, the request id, the content-type check and the response headers."""
    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)
    configure_logging(app)
    app.session_interface = VerifiedCookieSessions()
    # First of all before-request hooks: the rate limiter's runs earlier otherwise, and a 429
    # would then be logged without a duration.
    app.before_request_funcs.setdefault(None, []).insert(0, start_timer)
    app.before_request(require_json_content_type)
    # after_request hooks run in reverse order: the log line is written last, with the headers.
    app.after_request(log_request)
    app.after_request(add_response_headers)
