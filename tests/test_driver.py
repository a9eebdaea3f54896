"""DriverStatement: SQLAlchemy's SQL, values and errors, without its execution path."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.driver import DriverStatement
from smartcv_account.extensions import db
from smartcv_account.models import AuthSession, User
from smartcv_account.services import sessions

from .billing_helpers import subscribe


def session_parameters(user_id: int) -> dict:
    """The session check's parameters for the newest session of `user_id`."""
    token_hash = db.session.scalar(
        sa.select(AuthSession.token_hash)
        .where(AuthSession.user_id == user_id)
        .order_by(AuthSession.id.desc())
    )
    return {"token_hash": token_hash, "now": clock.now()}


@pytest.mark.parametrize("card", ["pm_card_visa", "pm_card_authenticationRequired"])
def test_values_are_what_sqlalchemy_itself_returns(auth_client, user, plans, card):
    assert subscribe(auth_client, payment_method=card).status_code == 201
    parameters = session_parameters(user.id)
    statement = DriverStatement(sessions._LIVE_SESSION_USER, db.engine.dialect)
    with db.engine.connect() as connection:
        expected = connection.execute(sessions._LIVE_SESSION_USER, parameters).one()._asdict()
        got = statement.first(connection, parameters)
    assert got == expected
    assert {key: type(value) for key, value in got.items()} == {
        key: type(value) for key, value in expected.items()
    }
    assert got["created_at"].tzinfo is not None  # UTC datetimes, as the model's type makes them


def test_no_row_is_none(app):
    statement = DriverStatement(sessions._LIVE_SESSION_USER, db.engine.dialect)
    with db.engine.connect() as connection:
        assert statement.first(connection, {"token_hash": "0" * 64, "now": clock.now()}) is None


def test_a_driver_error_becomes_sqlalchemys(app):
    missing = sa.select(sa.column("x")).select_from(sa.table("no_such_table"))
    statement = DriverStatement(missing, db.engine.dialect)
    with db.engine.connect() as connection, pytest.raises(sa.exc.DBAPIError) as raised:
        statement.first(connection, {})
    assert isinstance(raised.value.orig, db.engine.dialect.loaded_dbapi.Error)
    assert not raised.value.connection_invalidated


def test_a_lost_connection_is_invalidated_and_said_so(app):
    statement = DriverStatement(sa.select(User.id), db.engine.dialect)
    with db.engine.connect() as connection:
        connection.connection.driver_connection.close()  # as a server restart leaves it
        with pytest.raises(sa.exc.DBAPIError) as raised:
            statement.first(connection, {})
        assert raised.value.connection_invalidated
        assert connection.invalidated


def test_the_session_check_survives_its_connection_being_lost(auth_client):
    assert auth_client.get("/api/account").status_code == 200
    reader = auth_client.application.extensions["smartcv_session_reader"]
    reader._connection.connection.driver_connection.close()
    assert auth_client.get("/api/account").status_code == 200
