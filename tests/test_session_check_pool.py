"""The session check's connections: no pre-ping round trip, and a dropped one still replaced."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db


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


def test_a_connection_the_server_dropped_is_replaced(app, auth_client):
    # The session check's idle connection is killed, as a server restart would.
    if db.engine.dialect.name != "postgresql":
        pytest.skip("only a server can drop a connection")
    assert auth_client.get("/api/account").status_code == 200
    with db.engine.connect() as connection:
        dropped = connection.scalar(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                # The session check's SELECT (its text is cut short here, the WHERE lost).
                " AND state = 'idle'"
                " AND query LIKE 'SELECT users.id, users.public_id, users.email, users.name,%'"
            )
        )
    assert dropped >= 1
    response = auth_client.get("/api/account")
    assert response.status_code == 200, response.json
    assert auth_client.get("/api/account").status_code == 200
