"""The signed session cookie, verified once per process and still judged on every request."""

from __future__ import annotations

import time

import pytest
from itsdangerous import URLSafeTimedSerializer

from smartcv_account import http

COOKIE = "smartcv_session"


def cookie_of(client) -> str:
    """The client's session cookie value."""
    return client.get_cookie(COOKIE).value


@pytest.fixture
def loads_calls(monkeypatch) -> list[str]:
    """Record every full signature check of a session cookie."""
    calls: list[str] = []
    real = URLSafeTimedSerializer.loads

    def spy(self, value, *args, **kwargs):
        calls.append(value)
        return real(self, value, *args, **kwargs)

    monkeypatch.setattr(URLSafeTimedSerializer, "loads", spy)
    return calls


def test_a_verified_cookie_is_not_checked_again(auth_client, loads_calls):
    for _ in range(3):
        assert auth_client.get("/api/account").status_code == 200
    assert loads_calls == [cookie_of(auth_client)]


def test_a_changed_cookie_is_checked_and_refused(app, auth_client, assert_error):
    assert auth_client.get("/api/account").status_code == 200
    value = cookie_of(auth_client)
    forged = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    other = app.test_client()
    other.set_cookie(COOKIE, forged)
    assert_error(other.get("/api/account"), 401, "UNAUTHORIZED")
    assert auth_client.get("/api/account").status_code == 200


def test_a_remembered_cookie_older_than_the_lifetime_is_refused(
    app, auth_client, assert_error, monkeypatch
):
    assert auth_client.get("/api/account").status_code == 200
    lifetime = app.permanent_session_lifetime.total_seconds()
    later = time.time() + lifetime + 1
    # Both clocks that judge a cookie's age: the remembered one's and itsdangerous's.
    monkeypatch.setattr(time, "time", lambda: later)
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_each_request_gets_its_own_copy_of_a_remembered_session(app, auth_client):
    assert auth_client.get("/api/account").status_code == 200
    interface = app.session_interface
    with app.test_request_context(headers={"Cookie": f"{COOKIE}={cookie_of(auth_client)}"}):
        from flask import request

        first = interface.open_session(app, request)
        first["_user_id"] = "someone else"
        second = interface.open_session(app, request)
    assert second["_user_id"] != "someone else"


def test_apps_do_not_share_remembered_cookies(app_factory):
    one, other = app_factory(), app_factory(SECRET_KEY="another-secret-key-long-enough-0000000")
    assert one.session_interface is not other.session_interface
    assert isinstance(one.session_interface, http.VerifiedCookieSessions)


def test_an_answer_that_read_the_cookie_says_it_varies_with_it(auth_client):
    response = auth_client.get("/api/account")
    assert response.status_code == 200
    assert "Cookie" in response.headers.get("Vary", "")
    assert "Set-Cookie" not in response.headers  # an unchanged session is not sent back


def test_a_changed_session_is_still_written(app, user):
    from .factories import PASSWORD

    client = app.test_client()
    response = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200
    assert COOKIE in response.headers["Set-Cookie"]
    logout = client.post("/api/auth/logout")
    assert logout.status_code == 200
    assert f"{COOKIE}=;" in logout.headers["Set-Cookie"]  # emptied: the cookie is deleted
