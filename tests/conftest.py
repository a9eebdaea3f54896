"""Shared fixtures: a migrated database per test run, an app and a client per test.

The suite runs on a temporary SQLite file by default and on PostgreSQL when DATABASE_URL is
set (CI creates a fresh database for it). The schema is made by the Alembic migrations, so the
tests also prove that `flask db upgrade` builds what the models describe.
"""

from __future__ import annotations

import contextvars
import os
from collections.abc import Iterator
from datetime import UTC, datetime

import flask_migrate
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from smartcv_account import clock, create_app
from smartcv_account.extensions import db

from .factories import PASSWORD, UserFactory
from .gunicorn_helpers import migrated_database
from .helpers import INTERNAL_TOKEN, signed_in, subscribed, verified_user

TEST_CONFIG = {
    "TESTING": True,
    "BCRYPT_ROUNDS": 4,
    "SESSION_COOKIE_SECURE": True,
    "RATELIMIT_ENABLED": False,
    "RATELIMIT_STORAGE_URI": "memory://",
    "BILLING_PROVIDER": "local",
    "TEST_CLOCK_FILE": "",  # real (or frozen) time only; tests of `flask clock` set their own
    "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
    "STRIPE_WEBHOOK_SECRET": "whsec_test_secret",
    "SECRET_KEY": "test-secret-key-that-is-long-enough-000000",
}


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """The database the whole run uses, migrated to the newest revision once."""
    url = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    )
    app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": _normalise(url)})
    with app.app_context():
        flask_migrate.upgrade()
        db.engine.dispose()
    return _normalise(url)


def _normalise(url: str) -> str:
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


class RequestScopedClient(FlaskClient):
    """A test client whose every request runs in its own application context, as in production.

    The `app` fixture keeps an application context pushed for the test's own database work, and
    Flask reuses a pushed context for requests: `g` (Flask-Login's cached user) and the database
    session would then be shared by every request and every client of the test.
    """

    def open(self, *args, **kwargs):
        """Run the request in an empty context, so Flask pushes a fresh application context."""
        return contextvars.Context().run(super().open, *args, **kwargs)


@pytest.fixture
def app_factory(database_url) -> Iterator:
    """Build apps on the test database with extra configuration; tables are emptied after."""
    made: list[Flask] = []

    def make(**overrides) -> Flask:
        app = create_app({**TEST_CONFIG, "SQLALCHEMY_DATABASE_URI": database_url, **overrides})
        app.test_client_class = RequestScopedClient
        made.append(app)
        return app

    yield make
    clock.freeze(None)
    if made:
        with made[0].app_context():
            _empty_tables()
        for app in made:
            with app.app_context():
                db.engine.dispose()


def _empty_tables() -> None:
    db.session.remove()
    with db.engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            names = ", ".join(t.name for t in db.metadata.sorted_tables)
            connection.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            connection.execute(sa.text("UPDATE users SET current_subscription_id = NULL"))
            for table in reversed(db.metadata.sorted_tables):
                connection.execute(table.delete())


@pytest.fixture
def app(app_factory) -> Iterator[Flask]:
    """The application under test, with an application context pushed."""
    application = app_factory()
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def client(app) -> FlaskClient:
    """A test client (a browser with its own cookie jar)."""
    return app.test_client()


@pytest.fixture
def runner(app):
    """A CLI runner for the app's commands."""
    return app.test_cli_runner()


@pytest.fixture
def frozen_clock() -> Iterator[datetime]:
    """Pin the service clock to 2025-01-01T00:00:00Z; tests may move it with clock.freeze."""
    moment = datetime(2025, 1, 1, tzinfo=UTC)
    clock.freeze(moment)
    yield moment
    clock.freeze(None)


@pytest.fixture
def user(app):
    """A saved user whose password is `factories.PASSWORD`."""
    return UserFactory()


@pytest.fixture
def auth_client(app, user) -> FlaskClient:
    """A client signed in as `user`."""
    client = app.test_client()
    response = client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    return client


@pytest.fixture
def key_owner(app):
    """A saved user whose email is verified (API keys need it)."""
    return verified_user()


@pytest.fixture
def key_owner_client(app, key_owner) -> FlaskClient:
    """A client signed in as `key_owner`."""
    return signed_in(app, key_owner.email)


@pytest.fixture
def owner(app, plans) -> FlaskClient:
    """A client signed in as a new user whose email is verified (who may create teams)."""
    return signed_in(app, verified_user(name="Olga Owner").email)


@pytest.fixture
def premium_client(auth_client, plans) -> FlaskClient:
    """`auth_client` with a paid Premium Monthly subscription."""
    subscribed(auth_client)
    return auth_client


@pytest.fixture
def assert_error():
    """Check that a response is the contract's error envelope with this status and code."""

    def check(response, status: int, code: str, field: str | None = None) -> dict:
        body = response.get_json()
        assert response.status_code == status, body
        assert body["success"] is False
        assert body["code"] == code
        assert isinstance(body["error"], str) and body["error"]
        assert isinstance(body["details"], dict)
        if field is not None:
            assert body["details"]["field"] == field
        return body

    return check


@pytest.fixture
def two_factor(auth_client) -> dict:
    """Turn two-factor authentication on for `user`; return `secret` and `backupCodes`."""
    response = auth_client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    assert response.status_code == 200, response.json
    return response.json["data"]


@pytest.fixture
def plans(app):
    """The catalogue's plans and coupon, seeded as `flask seed-plans` does."""
    from smartcv_account import catalogue
    from smartcv_account.services import billing

    billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
    return {plan["id"]: plan for plan in catalogue.PLANS}


@pytest.fixture(scope="module")
def migrated_url(tmp_path_factory) -> str:
    """A database migrated by the operator's CLI for the module's gunicorn instances:
    DATABASE_URL's PostgreSQL database, or a SQLite file of the module's own."""
    return migrated_database(tmp_path_factory.mktemp("served"))


@pytest.fixture
def served_database(request, migrated_url) -> str:
    """`migrated_url`; rows a test leaves on PostgreSQL are removed after it."""
    if not migrated_url.startswith("sqlite"):
        # app_factory's teardown empties every table once it has made an app.
        request.getfixturevalue("app_factory")()
    return migrated_url
