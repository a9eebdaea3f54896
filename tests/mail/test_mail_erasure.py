"""Deleting an account erases the mail about it, wherever that mail was going."""

from __future__ import annotations

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage

from ..factories import PASSWORD
from ..helpers import change_email, signed_up
from .conftest import link_in

NAME = "Annabel Quux"


def outbox_rows() -> list[OutboxMessage]:
    """Every message the outbox holds, queued or sent, oldest first."""
    db.session.expire_all()
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def delete_account(client) -> None:
    """Delete the client's account over the API."""
    response = client.delete("/api/account", json={"currentPassword": PASSWORD})
    assert response.status_code == 200, response.json


def test_deletion_erases_a_pending_confirmation_to_the_new_address(mail_app, deliver):
    client = mail_app.test_client()
    signed_up(client, name=NAME)
    deliver()  # the verification link is sent; the confirmation below stays queued
    assert change_email(client, "annabel.new@example.com").status_code == 202

    delete_account(client)

    [goodbye] = outbox_rows()
    assert (goodbye.to_address, goodbye.kind) == ("ann@example.com", "notice_account_deleted")
    assert goodbye.user_id is None
    assert "Annabel" not in goodbye.subject + goodbye.text_body


def test_deletion_erases_the_notice_sent_to_an_address_given_up(mail_app, deliver, inbox):
    client = mail_app.test_client()
    signed_up(client, name=NAME)
    change_email(client, "annabel.new@example.com")
    deliver()
    token = link_in(inbox.only("annabel.new@example.com"))["token"]
    assert client.post("/api/account/email/confirm", json={"token": token}).status_code == 200

    delete_account(client)

    [goodbye] = outbox_rows()
    assert goodbye.to_address == "annabel.new@example.com"
    assert all("ann@example.com" not in row.text_body for row in outbox_rows())
