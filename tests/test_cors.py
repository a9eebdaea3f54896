"""CORS for the listed origins, and the Origin check on state-changing requests."""

from __future__ import annotations

import pytest

from smartcv_account.config import ConfigError
from smartcv_account.cors import parse_origins

from .factories import PASSWORD

LISTED = "https://app.example.com"
OTHER = "https://evil.example.net"


@pytest.fixture
def cors_app(app_factory):
    """An app that lists one front-end origin."""
    app = app_factory(CORS_ORIGINS=f"{LISTED}, http://127.0.0.1:3000")
    with app.app_context():
        yield app


def test_a_listed_origin_gets_credentials_and_itself(cors_app):
    response = cors_app.test_client().get("/api/plans", headers={"Origin": LISTED})
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "Origin" in response.headers.get("Vary", "")


def test_another_origin_gets_no_cors_headers(cors_app):
    response = cors_app.test_client().get("/api/account", headers={"Origin": OTHER})
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_no_origins_listed_means_same_origin_only(app):
    response = app.test_client().get("/api/account", headers={"Origin": LISTED})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_preflight_allows_the_api_methods_and_headers(cors_app):
    response = cors_app.test_client().options(
        "/api/account/subscription",
        headers={
            "Origin": LISTED,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "Content-Type, Idempotency-Key, X-Request-ID",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == LISTED
    allowed = response.headers["Access-Control-Allow-Methods"]
    assert {"GET", "POST", "PUT", "DELETE"} <= {m.strip() for m in allowed.split(",")}
    headers = {
        h.strip().lower() for h in response.headers["Access-Control-Allow-Headers"].split(",")
    }
    assert headers == {"content-type", "idempotency-key", "x-request-id"}


def test_preflight_from_another_origin_is_not_allowed(cors_app):
    response = cors_app.test_client().options(
        "/api/account",
        headers={"Origin": OTHER, "Access-Control-Request-Method": "PUT"},
    )
    assert "Access-Control-Allow-Origin" not in response.headers


def test_a_foreign_bodyless_logout_does_not_sign_out(cors_app, user, assert_error):
    client = cors_app.test_client()
    client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    response = client.post(
        "/api/auth/logout", headers={"Origin": OTHER, "Content-Type": "text/plain"}
    )
    assert_error(response, 403, "FORBIDDEN")
    assert client.get("/api/account").status_code == 200


def test_a_foreign_json_write_is_refused_and_changes_nothing(cors_app, user, assert_error):
    client = cors_app.test_client()
    client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    response = client.put("/api/account", json={"name": "Pwned"}, headers={"Origin": OTHER})
    assert_error(response, 403, "FORBIDDEN")
    assert client.get("/api/account").json["data"]["name"] == user.name


def test_own_origin_and_listed_origins_may_write(cors_app, user):
    client = cors_app.test_client()
    own = client.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"Origin": "http://localhost"},
    )
    assert own.status_code == 200
    listed = client.put("/api/account", json={"name": "Renamed"}, headers={"Origin": LISTED})
    assert listed.status_code == 200


def test_a_null_origin_is_refused(cors_app, user, assert_error):
    client = cors_app.test_client()
    response = client.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"Origin": "null"},
    )
    assert_error(response, 403, "FORBIDDEN")


def test_requests_without_origin_pass(cors_app, user):
    response = cors_app.test_client().post(
        "/api/auth/login", json={"email": user.email, "password": PASSWORD}
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    "value", ["*", "https://*.example.com", "app.example.com", "https://a.com/path", "ftp://a.com"]
)
def test_cors_origins_must_be_exact_origins(value):
    with pytest.raises(ConfigError):
        parse_origins(value)


def test_cors_origins_are_split_and_normalised():
    assert parse_origins(" https://App.example.com ,http://127.0.0.1:3000,") == [
        "https://app.example.com",
        "http://127.0.0.1:3000",
    ]
