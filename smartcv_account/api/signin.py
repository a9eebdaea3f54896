"""Signing in without a password: passkeys and OpenID Connect providers (under /api/auth).

The OIDC start and callback are pages a browser navigates to (the provider sends it back to
the callback), so they answer with redirects, not JSON; http.py lets cross-site navigations
reach them.
"""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, request, url_for
from flask_login import current_user

from ..errors import ApiError
from ..extensions import limiter
from ..openapi import Reply, endpoint
from ..schemas.account import account_schema
from ..schemas.signin import (
    WEBAUTHN_OPTIONS,
    oidc_callback_schema,
    oidc_start_schema,
    passkey_sign_in_schema,
    providers_schema,
    second_factor_schema,
)
from ..services import oidc, passkeys, social_sign_in
from ..session_cookie import cookie_token, set_session_cookie
from . import signing_in

bp = Blueprint("signin", __name__)

# A redirect's declaration: public, not enveloped; the body is Werkzeug's short HTML page.
REDIRECT_PAGE = {"type": "string", "description": "A short page linking to `Location`."}
REDIRECT = {
    "status": 302,
    "security": None,
    "envelope": False,
    "media_type": "text/html",
    "example": "<!doctype html>…",
}


def _login_limit() -> str:
    """Sign-ins without a password are limited per address as login is."""
    return current_app.config["RATELIMIT_LOGIN_PER_ADDRESS"]


def _cookie(response, name: str, value: str | None, path: str, max_age: int):
    """Set (or with None, drop) one of the flows' short-lived cookies."""
    options = {
        "path": path,
        "secure": bool(current_app.config["SESSION_COOKIE_SECURE"]),
        "httponly": True,
        "samesite": "Lax",
    }
    if value is None:
        response.delete_cookie(name, **options)
    else:
        response.set_cookie(name, value, max_age=max_age, **options)
    return response


def _signed_in_or_none():
    """The signed-in principal, or None (these pages are open to everyone)."""
    return current_user._get_current_object() if current_user.is_authenticated else None


def _callback_url(name: str) -> str:
    return url_for("signin.oidc_callback", name=name, _external=True)


@bp.get("/providers")
@endpoint(providers_schema, security=None)
def list_providers():
    """List the identity providers one can sign in with.

    Anyone may call it; it changes nothing. Each has the `name` its sign-in URLs use and a
    `displayName` for the button.
    """
    return oidc.providers()


@bp.get("/oidc/<name>/start")
@endpoint(REDIRECT_PAGE, query=oidc_start_schema, errors=("NOT_FOUND", "UNAUTHORIZED"), **REDIRECT)
def oidc_start(query, name: str):
    """Start signing in with a provider: redirect the browser to it.

    Anyone may open it (a page, not a fetch). Redirects (302) to the provider's authorization
    page with `state`, `nonce` and PKCE (S256), bound to this browser by a short-lived cookie.
    `returnTo` is a path on the front end to land on afterwards (anything else is ignored).
    With `link=true` the identity is linked to the signed-in account instead (needs a session).
    """
    chosen = oidc.provider(name)
    link_user = None
    if query.get("link"):
        principal = _signed_in_or_none()
        if principal is None:
            raise ApiError("UNAUTHORIZED", "Sign in to link another account.")
        link_user = principal.public_id
    return_to = oidc.safe_return_to(query.get("return_to"))
    base = current_app.config["APP_BASE_URL"]
    try:
        started = oidc.start(chosen, _callback_url(name), return_to, link_user)
    except oidc.SignInFailed as failure:
        return redirect(f"{base}/signin?error={failure.reason}")
    response = redirect(started.url)
    return _cookie(
        response,
        oidc.STATE_COOKIE,
        started.cookie,
        oidc.STATE_COOKIE_PATH,
        oidc.STATE_LIFETIME_SECONDS,
    )


@bp.get("/oidc/<name>/callback")
@endpoint(REDIRECT_PAGE, query=oidc_callback_schema, errors=("NOT_FOUND",), **REDIRECT)
def oidc_callback(query, name: str):
    """Finish signing in with a provider (the provider sends the browser here).

    Checks `state` against this browser's cookie, exchanges the code, verifies the ID token and
    redirects to `{APP_BASE_URL}{returnTo}` signed in (a linked identity, or a new account for
    a verified email no account has). Failures redirect to `{APP_BASE_URL}/signin?error=…`
    (`account_exists` when the email belongs to an account: sign in and link from settings).
    With two-factor on, redirects to `/signin?twoFactor=required`: POST the code to
    /api/auth/login/second-factor within 5 minutes.
    """
    chosen = oidc.provider(name)
    outcome = social_sign_in.callback(
        chosen,
        _callback_url(name),
        query,
        request.cookies.get(oidc.STATE_COOKIE),
        _signed_in_or_none(),
        cookie_token(),
    )
    response = redirect(current_app.config["APP_BASE_URL"] + outcome.target)
    _cookie(response, oidc.STATE_COOKIE, None, oidc.STATE_COOKIE_PATH, 0)
    if outcome.sign_in is not None:
        set_session_cookie(response, outcome.sign_in.token)
    if outcome.pending is not None:
        _cookie(
            response,
            social_sign_in.PENDING_COOKIE,
            outcome.pending,
            social_sign_in.PENDING_COOKIE_PATH,
            social_sign_in.PENDING_LIFETIME_SECONDS,
        )
    return response


@bp.post("/login/second-factor")
@limiter.limit(_login_limit)
@endpoint(
    account_schema,
    body=second_factor_schema,
    errors=("UNAUTHORIZED", "INVALID_TWO_FACTOR_CODE", "RATE_LIMITED"),
    security=None,
)
def complete_second_factor(fields):
    """Finish a social sign-in of an account with two-factor on.

    Anyone may call it, from the browser the provider's callback sent to
    `/signin?twoFactor=required` (a cookie remembers that step for 5 minutes). Send a code from
    the authenticator app or an unused backup code; wrong codes count toward the account's
    guessing limit. Success starts a session and returns the account.
    """
    sign_in = social_sign_in.complete_second_factor(
        request.cookies.get(social_sign_in.PENDING_COOKIE),
        fields["two_factor_code"],
        cookie_token(),
    )

    def finish(response):
        set_session_cookie(response, sign_in.token)
        return _cookie(
            response, social_sign_in.PENDING_COOKIE, None, social_sign_in.PENDING_COOKIE_PATH, 0
        )

    return Reply(sign_in.account, finish)


@bp.post("/passkey/options")
@limiter.limit(_login_limit)
@endpoint(WEBAUTHN_OPTIONS, errors=("RATE_LIMITED",), security=None)
def passkey_sign_in_options():
    """Start signing in with a passkey: the WebAuthn request options.

    Anyone may call it, with no body. Returns `publicKey` for `navigator.credentials.get()`
    (discoverable credentials: no email is asked), with a single-use challenge valid 5 minutes.
    """
    return passkeys.authentication_options()


@bp.post("/passkey")
@limiter.limit(_login_limit)
@endpoint(
    account_schema,
    body=passkey_sign_in_schema,
    errors=("INVALID_CREDENTIALS", "RATE_LIMITED"),
    security=None,
)
def passkey_sign_in(fields):
    """Sign in with a passkey.

    Anyone may call it; rate limited like login. Send the browser's assertion as JSON. A passkey
    verified the user, so no second factor is asked. An unknown passkey, a used or expired
    challenge, another origin or a sign count that went backwards is INVALID_CREDENTIALS.
    Success starts a fresh session and returns the account.
    """
    sign_in = passkeys.authenticate(fields["credential"], cookie_token())
    return signing_in(sign_in.account, sign_in.token)
