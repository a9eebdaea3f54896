"""A sent link leaves no copy of its token: the service keeps tokens only as SHA-256."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.mail import outbox
from smartcv_account.models import EmailToken, OutboxMessage

from ..helpers import change_email, signed_up
from .conftest import link_in


def rows_holding(text: str) -> list[tuple[str, tuple]]:
    """Every row of every table that holds `text` in any column, as (table, row)."""
    db.session.expire_all()
    found = []
    for table in db.metadata.sorted_tables:
        for row in db.session.execute(sa.select(table)):
            if any(text in str(value) for value in row):
                found.append((table.name, tuple(row)))
    db.session.commit()
    return found


def ask_for_a_link(client, kind: str) -> str:
    """Make the signed-in Ann's app write a link of `kind`; return the address it goes to."""
    if kind == "verify-email":
        assert client.post("/api/auth/verify-email/request").status_code == 202
        return "ann@example.com"
    if kind == "reset-password":
        body = {"email": "ann@example.com"}
        assert client.post("/api/auth/password-reset/request", json=body).status_code == 202
        return "ann@example.com"
    assert change_email(client, "ann.new@example.com").status_code == 202
    return "ann.new@example.com"


@pytest.mark.parametrize("kind", ["verify-email", "reset-password", "confirm-email"])
def test_no_table_holds_a_sent_links_token(mail_app, deliver, inbox, kind):
    client = mail_app.test_client()
    signed_up(client)
    deliver()
    address = ask_for_a_link(client, kind)
    deliver()
    found = link_in(inbox.to(address)[-1])
    assert found["path"] == kind

    assert rows_holding(found["token"]) == []
    digest = hashlib.sha256(found["token"].encode()).hexdigest()
    assert db.session.scalar(sa.select(EmailToken.kind).where(EmailToken.token_hash == digest))


def test_a_message_retried_keeps_its_link_until_it_is_sent(mail_app, deliver, inbox):
    client = mail_app.test_client()
    clock.freeze(clock.now())
    signed_up(client)
    inbox.replies.append("451 4.3.0 try again later")
    assert deliver().retried == 1

    clock.freeze(clock.now() + outbox.FIRST_RETRY)
    assert deliver().sent == 1
    token = link_in(inbox.only("ann@example.com"))["token"]
    assert client.post("/api/auth/verify-email", json={"token": token}).status_code == 200
    assert rows_holding(token) == []


def test_a_message_given_up_keeps_only_the_slot_of_its_token(mail_app, deliver, inbox):
    signed_up(mail_app.test_client())
    inbox.replies.append("550 5.1.1 no such mailbox")
    assert deliver().failed == 1

    [message] = db.session.scalars(sa.select(OutboxMessage)).all()
    assert (message.status, message.link_token) == ("failed", None)
    slot = f"https://app.example.com/verify-email?token={outbox.TOKEN_SLOT}"
    assert slot in message.text_body.splitlines()
