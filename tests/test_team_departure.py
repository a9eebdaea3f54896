"""Leaving SmartCV with teams: ownership holds a deletion back, solo teams go, the rest is left;
the export lists memberships."""

from __future__ import annotations

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Team, TeamEvent, TeamInvitation

from .factories import PASSWORD
from .helpers import (
    TEAMS_URL,
    invite,
    member_of,
    new_team,
    on_enterprise,
)


def delete_account(client):
    """DELETE /api/account with the factories' password."""
    return client.delete("/api/account", json={"currentPassword": PASSWORD})


def test_the_only_owner_of_a_team_with_members_cannot_delete_the_account(app, owner, assert_error):
    team = new_team(owner)
    on_enterprise(team["id"], 3)
    member_of(app, owner, team["id"])
    new_team(owner, "Solo")
    refused = assert_error(delete_account(owner), 409, "TEAM_OWNERSHIP_REQUIRED")
    assert refused["details"] == {"teams": [{"id": team["id"], "name": "Acme"}]}
    # Nothing happened: still signed in, both teams there.
    assert len(owner.get(TEAMS_URL).json["data"]) == 2


def test_after_handing_ownership_over_the_account_can_go(app, owner):
    team = new_team(owner)
    on_enterprise(team["id"], 3)
    user, member = member_of(app, owner, team["id"])
    owner.put(f"{TEAMS_URL}/{team['id']}/members/{user.public_id}", json={"role": "owner"})
    assert delete_account(owner).status_code == 200
    members = member.get(f"{TEAMS_URL}/{team['id']}/members").json["data"]
    assert [m["userId"] for m in members] == [user.public_id]


def test_a_team_whose_only_member_is_the_owner_goes_with_the_account(owner):
    team = new_team(owner)
    assert delete_account(owner).status_code == 200
    db.session.rollback()
    assert db.session.scalar(sa.select(Team).where(Team.public_id == team["id"])) is None


def test_a_deleted_member_leaves_every_team_and_its_log_forgets_them(app, owner):
    team = new_team(owner)
    on_enterprise(team["id"], 5)
    user, member = member_of(app, owner, team["id"], role="admin")
    invite(member, team["id"], "friend@example.com")
    assert delete_account(member).status_code == 200
    ids = [m["userId"] for m in owner.get(f"{TEAMS_URL}/{team['id']}/members").json["data"]]
    assert user.public_id not in ids and len(ids) == 1
    [invitation] = owner.get(f"{TEAMS_URL}/{team['id']}/invitations").json["data"]
    assert invitation["invitedBy"] is None
    db.session.rollback()
    events = db.session.scalars(sa.select(TeamEvent).order_by(TeamEvent.id)).all()
    # created, the owner's invitation, the member's joining, the member's invitation
    assert [e.type for e in events] == [
        "team_created",
        "plan_assigned",
        "member_invited",
        "member_joined",
        "member_invited",
    ]
    assert all(e.actor_user_id != user.id for e in events)
    assert [(e.actor_user_id, e.ip_address) for e in events[3:]] == [(None, None)] * 2
    assert events[2].actor_user_id is not None
    friend = sa.select(TeamInvitation.invited_by_user_id).where(
        TeamInvitation.email == "friend@example.com"
    )
    assert db.session.scalar(friend) is None


def test_the_export_lists_memberships(app, owner):
    team = new_team(owner)
    on_enterprise(team["id"], 3)
    _, member = member_of(app, owner, team["id"], role="admin")
    document = member.get("/api/account/export").json["data"]
    [membership] = document["teams"]
    assert list(membership) == ["id", "name", "role", "joinedAt"]
    assert (membership["id"], membership["name"], membership["role"]) == (
        team["id"],
        "Acme",
        "admin",
    )
    assert document["account"]["teams"] == [{"id": team["id"], "name": "Acme", "role": "admin"}]


def test_the_export_of_a_user_without_teams_lists_none(auth_client, plans):
    assert auth_client.get("/api/account/export").json["data"]["teams"] == []
