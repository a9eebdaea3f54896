"""The pools without pre-ping (the session check, the usage UPDATE, the verify call): no ping
round trip, and a connection the server dropped still replaced."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db

from .helpers import api_key, post_usage, stored, verify_key


def test_the_session_check_sends_no_ping(app, auth_client, monkeypatch):
    assert auth_client.get("/api/account").status_code == 200
    pings: list[int] = []
    dialect = type(db.engine.dialect)
    real = dialect.do_ping

    def spy(self, dbapi_connection):
        pings.append(1)
        return real(self, dbapi_connection)

    monkeypatch.setattr(dialect, "do_ping", spy)
    for _ in range(3):
        assert auth_client.get("/api/account").status_code == 200
    assert pings == []


def _drop_idle_connections(last_query: str) -> int:
    """Kill the idle connections whose last statement began with `last_query`, as a server
    restart would; return how many."""
    with db.engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                " AND state = 'idle' AND query LIKE :prefix"
            ),
            {"prefix": last_query + "%"},
        )


def test_a_connection_the_server_dropped_is_replaced(app, auth_client):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only a server can drop a connection")
    assert auth_client.get("/api/account").status_code == 200
    # The session check's SELECT (its text is cut short there, the WHERE lost).
    assert _drop_idle_connections("SELECT users.id, users.public_id, users.email, users.name,")
    response = auth_client.get("/api/account")
    assert response.status_code == 200, response.json
    assert auth_client.get("/api/account").status_code == 200


def test_the_usage_call_sends_no_ping(app, client, user, monkeypatch):
    assert post_usage(client, user.public_id, {"metric": "storage", "delta": 1}).status_code == 200
    pings: list[int] = []
    dialect = type(db.engine.dialect)
    real = dialect.do_ping
    monkeypatch.setattr(dialect, "do_ping", lambda self, c: pings.append(1) or real(self, c))
    assert post_usage(client, user.public_id, {"metric": "storage", "delta": 1}).status_code == 200
    assert pings == []


def test_a_usage_call_on_a_dropped_connection_counts_once(app, client, user):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only a server can drop a connection")
    assert post_usage(client, user.public_id, {"metric": "storage", "delta": 1}).status_code == 200
    # The UPDATE's connection, whose last statement was its COMMIT.
    assert _drop_idle_connections("COMMIT")
    response = post_usage(client, user.public_id, {"metric": "storage", "delta": 1})
    assert response.status_code == 200, response.json
    assert response.json["data"]["storageUsed"] == 2
    assert stored(user.public_id)[2] == 2


def test_a_verify_on_a_dropped_connection_answers_503_counts_nothing_and_the_next_passes(
    app, client, key_owner, key_owner_client, assert_error
):
    """The verify call's statement commits itself, so it is not repeated on a lost connection
    (whether it ran is not known): 503 and nothing counted; its pool is let go, so the next
    call runs on a new connection."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only a server can drop a connection")
    secret = api_key(key_owner_client)["secret"]
    assert verify_key(client, secret).status_code == 200
    assert verify_key(client, secret).status_code == 200  # the key's last use is written
    # The verify call's connection, whose last statement was its counting UPDATE.
    assert _drop_idle_connections("UPDATE users SET api_requests_used")
    assert_error(verify_key(client, secret), 503, "SERVICE_UNAVAILABLE")
    assert stored(key_owner.public_id)[1] == 2
    response = verify_key(client, secret)
    assert response.status_code == 200, response.json
    assert response.json["data"]["usage"]["apiRequestsUsed"] == 3


def test_a_database_that_cannot_be_reached_answers_503(app, auth_client, assert_error):
    """No pooled connection and no new one: the session check's checkout fails as a database
    error (503 with the envelope), never as an unexpected one."""
    assert auth_client.get("/api/account").status_code == 200

    def refuse(dialect, conn_rec, cargs, cparams):
        raise dialect.loaded_dbapi.OperationalError("connection refused")

    db.session.remove()
    db.engine.dispose()  # and with it the session check's own pools
    sa.event.listen(sa.Engine, "do_connect", refuse)
    try:
        response = auth_client.get("/api/account")
    finally:
        sa.event.remove(sa.Engine, "do_connect", refuse)
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert auth_client.get("/api/account").status_code == 200
