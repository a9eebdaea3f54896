"""The session cookie: it carries the session's random token, and the database decides.

A server-side session needs no signature: the token is 256 random bits whose hash the
database looks up on every request (`principal.load`), so a forged or revoked cookie finds
nothing. Flask's signed session is switched off; Flask-Login finds the user through its
`request_loader`.
"""

from __future__ import annotations

from flask import Flask, Request, Response, current_app, g, request
from flask.sessions import SessionInterface

from . import clock, principal
from .errors import ApiError
from .extensions import login_manager
from .principal import Principal
from .services import sessions

# A token is 43 characters; anything much longer is not one of ours and is not looked up.
MAX_TOKEN_LENGTH = 128


class NoSignedSession(SessionInterface):
    """Flask's session, switched off: nothing is kept in a signed cookie."""

    def open_session(self, app: Flask, request: Request):
        """Give every request the read-only empty session."""
        return self.make_null_session(app)

    def save_session(self, app: Flask, session, response: Response) -> None:
        """Write nothing."""


def cookie_token() -> str | None:
    """Return the session token the request's cookie carries, or None."""
    token = request.cookies.get(current_app.config["SESSION_COOKIE_NAME"])
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    return token


def load_principal(_request: Request) -> Principal | None:
    """Flask-Login's request loader: the principal of the cookie's live session, or None."""
    token = cookie_token()
    if token is None:
        return None
    now = clock.now()
    found = principal.load(token, now)
    g.principal = found
    if found is not None:
        sessions.touch_if_stale(found.session_id, found.session_last_seen_at, now)
    return found


def signed_in() -> Principal:
    """Return the request's principal (in views behind `login_required`)."""
    return g.principal


def _cookie_options() -> dict:
    """The attributes every session cookie the service sets carries."""
    return {
        "path": "/",
        "secure": bool(current_app.config["SESSION_COOKIE_SECURE"]),
        "httponly": True,
        "samesite": "Lax",
    }


def set_session_cookie(response: Response, token: str) -> Response:
    """Put a new session's token in the cookie, for exactly the session's lifetime."""
    config = current_app.config
    max_age = config["SESSION_LIFETIME_DAYS"] * 86400
    response.set_cookie(config["SESSION_COOKIE_NAME"], token, max_age=max_age, **_cookie_options())
    return response


def clear_session_cookie(response: Response) -> Response:
    """Tell the browser to drop the session cookie."""
    response.delete_cookie(current_app.config["SESSION_COOKIE_NAME"], **_cookie_options())
    return response


def register_session_cookie(app: Flask) -> None:
    """Switch Flask's signed session off and let Flask-Login read the token cookie."""
    app.session_interface = NoSignedSession()
    login_manager.init_app(app)
    login_manager.session_protection = None  # revocation is server-side
    login_manager.request_loader(load_principal)
    login_manager.unauthorized_handler(_unauthorized)


def _unauthorized():
    """Answer 401 in the envelope when a view needs a session."""
    raise ApiError("UNAUTHORIZED", "Sign in to continue.")
