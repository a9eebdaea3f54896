"""Invitations over HTTP: seats, duplicates, the link's token rules, accepting and revoking."""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from smartcv_account import catalogue, clock
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage, TeamInvitation
from smartcv_account.services import billing

from .helpers import (
    TEAMS_URL,
    accept,
    invitation_token,
    invite,
    member_of,
    new_team,
    on_enterprise,
    signed_in,
    signed_up,
    verified_user,
)


@pytest.fixture
def team_id(owner) -> str:
    """An ENTERPRISE team of `owner` with 3 seats (the owner takes one)."""
    team_id = new_team(owner)["id"]
    on_enterprise(team_id, 3)
    return team_id


def pending(client, team_id: str) -> list[dict]:
    """The team's pending invitations, as its owners and admins see them."""
    response = client.get(f"{TEAMS_URL}/{team_id}/invitations")
    assert response.status_code == 200, response.json
    return response.json["data"]


def test_an_invitation_answers_201_and_queues_a_link_to_the_address(owner, team_id, frozen_clock):
    response = invite(owner, team_id, "  Grace@Example.COM ", "admin")
    assert response.status_code == 201, response.json
    invitation = response.json["data"]
    assert list(invitation) == ["id", "email", "role", "expiresAt", "invitedBy"]
    assert re.fullmatch(r"inv_[0-9a-f]{24}", invitation["id"])
    assert (invitation["email"], invitation["role"]) == ("grace@example.com", "admin")
    assert invitation["expiresAt"] == "2025-01-08T00:00:00Z"  # 7 days
    assert invitation["invitedBy"] == owner.get("/api/account").json["data"]["id"]
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "team_invitation")
    )
    assert message.to_address == "grace@example.com"
    assert "/accept-invite?token={token}" in message.text_body
    assert pending(owner, team_id) == [invitation]


def test_the_token_is_stored_only_as_its_hash(owner, team_id):
    invite(owner, team_id, "grace@example.com")
    token = invitation_token("grace@example.com")
    assert len(token) >= 43  # 256 random bits, URL-safe
    stored = db.session.scalar(sa.select(TeamInvitation.token_hash))
    assert stored == hashlib.sha256(token.encode()).hexdigest()


def test_members_plus_pending_invitations_never_exceed_the_seats(owner, team_id, assert_error):
    assert invite(owner, team_id, "a@example.com").status_code == 201
    assert invite(owner, team_id, "b@example.com").status_code == 201
    refused = assert_error(invite(owner, team_id, "c@example.com"), 409, "SEAT_LIMIT_REACHED")
    assert refused["details"] == {"seats": 3}
    assert len(pending(owner, team_id)) == 2


def test_a_free_team_has_no_seat_for_anyone_but_its_owner(owner, assert_error):
    team_id = new_team(owner)["id"]
    assert_error(invite(owner, team_id, "a@example.com"), 409, "SEAT_LIMIT_REACHED")


def test_a_revoked_invitation_frees_its_seat_and_its_link_stops_working(
    app, owner, team_id, assert_error
):
    grace = verified_user(email="grace@example.com")
    first = invite(owner, team_id, grace.email).json["data"]
    invite(owner, team_id, "b@example.com")
    token = invitation_token(grace.email)
    revoked = owner.delete(f"{TEAMS_URL}/{team_id}/invitations/{first['id']}")
    assert revoked.status_code == 200
    assert invite(owner, team_id, "c@example.com").status_code == 201
    assert_error(accept(signed_in(app, grace.email), token), 400, "INVALID_TOKEN", field="token")
    again = owner.delete(f"{TEAMS_URL}/{team_id}/invitations/{first['id']}")
    assert_error(again, 404, "NOT_FOUND")


def test_an_expired_invitation_frees_its_seat_and_its_link(app, owner, team_id, assert_error):
    grace = verified_user(email="grace@example.com")
    invite(owner, team_id, grace.email)
    invite(owner, team_id, "b@example.com")
    token = invitation_token(grace.email)
    clock.freeze(clock.now() + timedelta(days=7, seconds=1))
    assert_error(accept(signed_in(app, grace.email), token), 400, "INVALID_TOKEN")
    assert invite(owner, team_id, "c@example.com").status_code == 201


def test_inviting_a_member_again_is_already_member(app, owner, team_id, assert_error):
    user, _ = member_of(app, owner, team_id)
    response = invite(owner, team_id, user.email.upper())
    assert_error(response, 409, "ALREADY_MEMBER", field="email")


def test_inviting_a_pending_address_again_is_already_invited(owner, team_id, assert_error):
    invite(owner, team_id, "grace@example.com")
    response = invite(owner, team_id, "Grace@example.com", "admin")
    assert_error(response, 409, "ALREADY_INVITED", field="email")
    assert len(pending(owner, team_id)) == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "grace@example.com", "role": "owner"}, "role"),
        ({"email": "grace@localhost", "role": "member"}, "email"),
        ({"email": "not an address", "role": "member"}, "email"),
        ({"role": "member"}, "email"),
    ],
)
def test_a_bad_invitation_is_a_validation_error(owner, team_id, body, field, assert_error):
    response = owner.post(f"{TEAMS_URL}/{team_id}/invitations", json=body)
    assert_error(response, 400, "VALIDATION_ERROR", field=field)
    assert pending(owner, team_id) == []


def test_a_member_may_not_invite_or_see_invitations(app, owner, team_id, assert_error):
    _, member = member_of(app, owner, team_id)
    assert_error(invite(member, team_id, "x@example.com"), 403, "FORBIDDEN")
    assert_error(member.get(f"{TEAMS_URL}/{team_id}/invitations"), 403, "FORBIDDEN")


def test_an_admin_invites_lists_and_revokes(app, owner, team_id):
    _, admin = member_of(app, owner, team_id, role="admin")
    created = invite(admin, team_id, "x@example.com").json["data"]
    assert [i["id"] for i in pending(admin, team_id)] == [created["id"]]
    assert admin.delete(f"{TEAMS_URL}/{team_id}/invitations/{created['id']}").status_code == 200
    assert pending(owner, team_id) == []


def test_accepting_joins_the_team_with_the_offered_role(app, owner, team_id):
    grace = verified_user(email="grace@example.com")
    invite(owner, team_id, grace.email, "admin")
    client = signed_in(app, grace.email)
    response = accept(client, invitation_token(grace.email))
    assert response.status_code == 200, response.json
    team = response.json["data"]
    assert (team["id"], team["role"], team["membersCount"]) == (team_id, "admin", 2)
    assert pending(owner, team_id) == []
    events = owner.get(f"{TEAMS_URL}/{team_id}/activity").json["data"]["events"]
    assert events[0]["type"] == "member_joined"
    assert events[0]["actorId"] == grace.public_id


def test_a_link_works_once(app, owner, team_id, assert_error):
    grace = verified_user(email="grace@example.com")
    invite(owner, team_id, grace.email)
    token = invitation_token(grace.email)
    client = signed_in(app, grace.email)
    assert accept(client, token).status_code == 200
    assert_error(accept(client, token), 400, "INVALID_TOKEN")


def test_an_unknown_token_is_invalid(auth_client, plans, assert_error):
    assert_error(accept(auth_client, "x" * 43), 400, "INVALID_TOKEN", field="token")


def test_only_the_invited_address_may_accept(app, owner, team_id, assert_error):
    invite(owner, team_id, "grace@example.com")
    token = invitation_token("grace@example.com")
    stranger = signed_in(app, verified_user().email)
    assert_error(accept(stranger, token), 403, "INVITATION_EMAIL_MISMATCH")
    # The refusal leaves the link working for the right person.
    grace = verified_user(email="grace@example.com")
    assert accept(signed_in(app, grace.email), token).status_code == 200


def test_the_invited_address_must_be_verified(app, client, owner, team_id, assert_error):
    invite(owner, team_id, "grace@example.com")
    signed_up(client, "grace@example.com", "Grace")
    response = accept(client, invitation_token("grace@example.com"))
    assert_error(response, 403, "INVITATION_EMAIL_MISMATCH")


def test_accepting_needs_a_session(client, assert_error):
    assert_error(accept(client, "x" * 43), 401, "UNAUTHORIZED")


def test_the_team_log_records_invitations_and_revocations(owner, team_id):
    created = invite(owner, team_id, "x@example.com").json["data"]
    owner.delete(f"{TEAMS_URL}/{team_id}/invitations/{created['id']}")
    events = owner.get(f"{TEAMS_URL}/{team_id}/activity").json["data"]["events"]
    assert [(e["type"], e["details"]["invitationId"]) for e in events[:2]] == [
        ("invitation_revoked", created["id"]),
        ("member_invited", created["id"]),
    ]


def test_inviting_and_revoking_one_address_in_a_loop_stops_at_three_mails_an_hour(
    app_factory, frozen_clock, assert_error
):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    with app.app_context():
        billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
        owner = signed_in(app, verified_user().email)
        team_id = new_team(owner)["id"]
        on_enterprise(team_id, 3)
        for _ in range(3):
            created = invite(owner, team_id, "grace@example.com").json["data"]
            owner.delete(f"{TEAMS_URL}/{team_id}/invitations/{created['id']}")
        assert_error(invite(owner, team_id, "grace@example.com"), 429, "RATE_LIMITED")
        assert invite(owner, team_id, "other@example.com").status_code == 201
        clock.freeze(frozen_clock + timedelta(hours=1, seconds=1))
        assert invite(owner, team_id, "grace@example.com").status_code == 201
