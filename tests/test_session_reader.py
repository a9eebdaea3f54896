"""The session check's kept connection and, on SQLite, its remembered rows (services/sessions.py).

A remembered row must never outlive what it was read from: every commit anywhere (another
worker, another process, the CLI) and the session's expiry end it. These tests change the
database the way another worker would, on a connection of its own, and expect the very next
request to see the change.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.services import sessions

from .factories import PASSWORD, UserFactory


def elsewhere(statement: str, **parameters) -> None:
    """Commit `statement` on a connection of its own, as another worker's request would."""
    with db.engine.begin() as connection:
        connection.execute(sa.text(statement), parameters)


def test_a_session_revoked_by_another_worker_ends_at_the_next_request(auth_client, assert_error):
    for _ in range(3):  # read, then remembered
        assert auth_client.get("/api/account").status_code == 200
    elsewhere("UPDATE auth_sessions SET revoked_at = :now", now=clock.now().replace(tzinfo=None))
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")
    assert_error(auth_client.get("/api/account/subscription"), 401, "UNAUTHORIZED")


def test_revoke_sessions_from_the_cli_ends_a_remembered_session(
    runner, auth_client, user, assert_error
):
    assert auth_client.get("/api/account").status_code == 200
    assert auth_client.get("/api/account").status_code == 200
    assert runner.invoke(args=["revoke-sessions", user.email]).exit_code == 0
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_a_password_changed_by_another_worker_ends_the_remembered_session(
    auth_client, assert_error
):
    assert auth_client.get("/api/account").status_code == 200
    elsewhere("UPDATE users SET credential_version = credential_version + 1")
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_an_account_changed_by_another_worker_shows_at_the_next_request(auth_client):
    assert auth_client.get("/api/account").json["data"]["name"] != "Changed Elsewhere"
    elsewhere("UPDATE users SET name = 'Changed Elsewhere', theme = 'dark'")
    data = auth_client.get("/api/account").json["data"]
    assert data["name"] == "Changed Elsewhere"
    assert data["preferences"]["theme"] == "dark"


def test_a_subscription_changed_by_another_worker_shows_at_the_next_request(auth_client, plans):
    from .billing_helpers import SUBSCRIPTION_URL, subscribe

    assert subscribe(auth_client).status_code == 201
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "ACTIVE"
    elsewhere("UPDATE subscriptions SET status = 'PAST_DUE'")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "PAST_DUE"
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "PAST_DUE"


def test_a_remembered_session_still_expires_with_no_commit_in_between(
    frozen_clock, auth_client, assert_error
):
    # Signed in at the pinned moment; nothing is committed after the first read.
    lifetime = timedelta(days=auth_client.application.config["SESSION_LIFETIME_DAYS"])
    clock.freeze(frozen_clock + lifetime - timedelta(seconds=1))
    assert auth_client.get("/api/account").status_code == 200
    assert auth_client.get("/api/account").status_code == 200
    clock.freeze(frozen_clock + lifetime)
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_another_users_session_is_never_served_from_memory(app):
    clients = []
    for index in range(3):
        user = UserFactory(email=f"reader{index}@example.com", name=f"Reader {index}")
        client = app.test_client()
        body = {"email": user.email, "password": PASSWORD}
        assert client.post("/api/auth/login", json=body).status_code == 200
        clients.append((user.email, client))
    for _ in range(2):
        for email, client in clients:
            assert client.get("/api/account").json["data"]["email"] == email


def test_threads_share_one_kept_connection_and_borrow_the_rest(app, auth_client):
    # More threads than the pool has connections: a thread that finds the kept connection
    # busy borrows one from the pool and gives it back, so none waits for the pool's timeout.
    statuses: list[int] = []
    barrier = threading.Barrier(24)

    def read() -> None:
        barrier.wait()
        for _ in range(5):
            statuses.append(auth_client.get("/api/account").status_code)

    threads = [threading.Thread(target=read) for _ in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == [200] * 120
    assert db.engine.pool.checkedout() <= 2  # the kept one (and this test's own session)


def test_the_kept_connection_is_replaced_when_the_server_dropped_it(auth_client):
    assert auth_client.get("/api/account").status_code == 200
    reader = auth_client.application.extensions["smartcv_session_reader"]
    kept = reader._connection
    kept.invalidate()  # as a server restart or an idle timeout leaves it
    assert auth_client.get("/api/account").status_code == 200
    assert reader._connection is not kept


def test_the_reader_belongs_to_its_app(app_factory):
    first, second = app_factory(), app_factory()
    with first.app_context():
        one = sessions.reader()
    with second.app_context():
        other = sessions.reader()
    assert one is not other
    assert one.engine is not other.engine


def test_the_signed_in_user_carries_no_secret(app, auth_client, two_factor, plans):
    from .billing_helpers import subscribe

    response = subscribe(auth_client, payment_method="pm_card_authenticationRequired")
    assert response.status_code == 201, response.json
    token = auth_client.get_cookie("smartcv_session").value
    with app.test_request_context(headers={"Cookie": f"smartcv_session={token}"}):
        from flask_login import current_user

        user = current_user._get_current_object()
        assert user.is_authenticated and user.current_subscription.requires_action
        for secret in ("password_hash", "totp_secret_encrypted", "totp_last_step"):
            assert not hasattr(user, secret)
        assert not hasattr(user.current_subscription, "client_secret")
        with pytest.raises(AttributeError, match="read-only"):
            user.name = "changed in memory"
