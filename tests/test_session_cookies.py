"""The session cookie is the session's random token: no signature, no payload, no cache."""

from __future__ import annotations

from smartcv_account.session_cookie import NoSignedSession

from .factories import PASSWORD

COOKIE = "smartcv_session"


def test_flask_signed_sessions_are_off(app):
    assert isinstance(app.session_interface, NoSignedSession)


def test_an_answer_that_read_the_cookie_says_it_varies_with_it(auth_client):
    response = auth_client.get("/api/account")
    assert response.status_code == 200
    assert "Cookie" in response.headers.get("Vary", "")
    assert "Set-Cookie" not in response.headers  # an unchanged session is not sent back


def test_login_sets_the_cookie_for_the_session_lifetime(app, user):
    client = app.test_client()
    response = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    attributes = response.headers["Set-Cookie"].split("; ")
    days = app.config["SESSION_LIFETIME_DAYS"]
    assert f"Max-Age={days * 86400}" in attributes
    assert {"HttpOnly", "SameSite=Lax", "Secure", "Path=/"} <= set(attributes)


def test_logout_deletes_the_cookie_and_revokes_the_session(app, auth_client, assert_error):
    token = auth_client.get_cookie(COOKIE).value
    logout = auth_client.post("/api/auth/logout")
    assert logout.status_code == 200
    assert logout.headers["Set-Cookie"].startswith(f"{COOKIE}=;")
    copy = app.test_client()
    copy.set_cookie(COOKIE, token)
    assert_error(copy.get("/api/account"), 401, "UNAUTHORIZED")


def test_logout_without_a_cookie_is_still_a_success(client):
    assert client.post("/api/auth/logout").status_code == 200
