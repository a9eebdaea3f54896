"""The team invitation as sent: names made safe for a stranger's inbox, a link that works once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account import catalogue
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage
from smartcv_account.services import billing

from ..helpers import (
    TEAMS_URL,
    accept,
    invite,
    new_team,
    on_enterprise,
    signed_in,
    verified_user,
)
from .conftest import link_in

BAIT = "Win at evil.example/prize " + "x" * 60


@pytest.fixture
def team(mail_app):
    """An ENTERPRISE team whose owner and name are bait: (owner client, team id)."""
    billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
    owner = signed_in(mail_app, verified_user(name=BAIT).email)
    team_id = new_team(owner, "Visit www.evil.example now")["id"]
    on_enterprise(team_id, 3)
    return owner, team_id


def test_the_invitation_shows_the_names_cut_and_made_link_safe(team, deliver, inbox):
    owner, team_id = team
    assert invite(owner, team_id, "grace@example.com").status_code == 201
    deliver()
    message = inbox.only("grace@example.com")
    text = message.get_content()
    assert "Win at evil example prize " + "x" * 24 + " invited you" in text
    assert '"Visit www evil example now"' in text
    assert "evil.example" not in text and "www." not in text
    found = link_in(message)
    assert (found["link"].split("?")[0], found["path"]) == (
        "https://app.example.com/accept-invite",
        "accept-invite",
    )


def test_the_sent_link_joins_once_and_no_copy_of_its_token_is_kept(
    mail_app, team, deliver, inbox, assert_error
):
    owner, team_id = team
    grace = verified_user(email="grace@example.com")
    invite(owner, team_id, grace.email)
    deliver()
    token = link_in(inbox.only(grace.email))["token"]
    db.session.rollback()
    assert db.session.scalars(sa.select(OutboxMessage.link_token)).all() == [None]
    client = signed_in(mail_app, grace.email)
    assert accept(client, token).json["data"]["id"] == team_id
    assert_error(accept(client, token), 400, "INVALID_TOKEN")
    assert len(owner.get(f"{TEAMS_URL}/{team_id}/members").json["data"]) == 2
