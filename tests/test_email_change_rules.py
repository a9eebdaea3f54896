"""An email change takes only an address registration would take."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import EmailToken, OutboxMessage

from .factories import PASSWORD

REFUSED = ["root@localhost", "ops@[127.0.0.1]", "ann@example.invalid"]


@pytest.mark.parametrize("address", REFUSED)
def test_registration_refuses_the_address(client, assert_error, address):
    body = {"email": address, "password": PASSWORD, "name": "Ann"}
    assert_error(client.post("/api/auth/register", json=body), 400, "VALIDATION_ERROR", "email")


@pytest.mark.parametrize("address", REFUSED)
def test_an_email_change_refuses_it_too_and_changes_nothing(
    auth_client, user, assert_error, address
):
    body = {"newEmail": address, "currentPassword": PASSWORD}
    response = auth_client.post("/api/account/email", json=body)

    assert_error(response, 400, "VALIDATION_ERROR", "newEmail")
    assert auth_client.get("/api/account").json["data"]["email"] == user.email
    db.session.expire_all()
    assert db.session.scalars(sa.select(OutboxMessage.kind)).all() == []
    assert db.session.scalars(sa.select(EmailToken.kind)).all() == []
