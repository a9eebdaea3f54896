"""A team's members over HTTP: the list, role changes, removal and leaving, the last owner."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage

from .helpers import TEAMS_URL, member_of, new_team, on_enterprise, verified_user


@pytest.fixture
def team(owner):
    """An ENTERPRISE team with 10 seats: (owner client, team id)."""
    team_id = new_team(owner)["id"]
    on_enterprise(team_id, 10)
    return owner, team_id


def members_url(team_id: str, user=None) -> str:
    """The members collection of a team, or one member's URL."""
    base = f"{TEAMS_URL}/{team_id}/members"
    return base if user is None else f"{base}/{user.public_id}"


def roles(client, team_id: str) -> dict[str, str]:
    """Each member's role, by user id, as the members list shows it."""
    return {m["userId"]: m["role"] for m in client.get(members_url(team_id)).json["data"]}


def test_any_member_lists_members_with_name_email_role_and_joining_time(app, team):
    owner, team_id = team
    user, member = member_of(app, owner, team_id)
    listed = member.get(members_url(team_id)).json["data"]
    assert [list(m) for m in listed] == [["userId", "name", "email", "role", "joinedAt"]] * 2
    assert [(m["name"], m["role"]) for m in listed] == [
        ("Olga Owner", "owner"),
        (user.name, "member"),
    ]
    assert listed[1]["email"] == user.email


def test_an_owner_changes_any_role(app, team):
    owner, team_id = team
    user, _ = member_of(app, owner, team_id)
    for role in ("admin", "owner", "member"):
        response = owner.put(members_url(team_id, user), json={"role": role})
        assert response.status_code == 200, response.json
        assert response.json["data"]["role"] == role
        assert roles(owner, team_id)[user.public_id] == role


def test_an_admin_moves_people_between_admin_and_member_only(app, team, assert_error):
    owner, team_id = team
    _, admin = member_of(app, owner, team_id, role="admin")
    user, _ = member_of(app, owner, team_id)
    assert admin.put(members_url(team_id, user), json={"role": "admin"}).status_code == 200
    assert admin.put(members_url(team_id, user), json={"role": "member"}).status_code == 200
    making_owner = admin.put(members_url(team_id, user), json={"role": "owner"})
    assert_error(making_owner, 403, "FORBIDDEN")
    me = owner.get("/api/account").json["data"]["id"]
    demoting_owner = admin.put(f"{members_url(team_id)}/{me}", json={"role": "member"})
    assert_error(demoting_owner, 403, "FORBIDDEN")
    assert roles(owner, team_id)[me] == "owner"


def test_a_member_changes_no_role(app, team, assert_error):
    owner, team_id = team
    user, member = member_of(app, owner, team_id)
    assert_error(member.put(members_url(team_id, user), json={"role": "admin"}), 403, "FORBIDDEN")


@pytest.mark.parametrize("role", ["", "boss", None])
def test_an_unknown_role_is_a_validation_error(app, team, role, assert_error):
    owner, team_id = team
    user, _ = member_of(app, owner, team_id)
    response = owner.put(members_url(team_id, user), json={"role": role})
    assert_error(response, 400, "VALIDATION_ERROR", field="role")


def test_a_user_outside_the_team_is_not_a_member(app, team, assert_error):
    owner, team_id = team
    stranger = verified_user()
    response = owner.put(members_url(team_id, stranger), json={"role": "admin"})
    assert_error(response, 404, "NOT_A_MEMBER", field="userId")
    assert_error(owner.delete(members_url(team_id, stranger)), 404, "NOT_A_MEMBER")


def test_the_last_owner_cannot_lose_the_role_leave_or_be_removed(app, team, assert_error):
    owner, team_id = team
    me = owner.get("/api/account").json["data"]["id"]
    _, admin = member_of(app, owner, team_id, role="admin")
    mine = f"{members_url(team_id)}/{me}"
    assert_error(owner.put(mine, json={"role": "admin"}), 409, "LAST_OWNER", field="userId")
    assert_error(owner.delete(mine), 409, "LAST_OWNER")
    assert_error(admin.delete(mine), 403, "FORBIDDEN")  # admins never remove owners
    assert roles(owner, team_id)[me] == "owner"


def test_with_a_second_owner_the_first_may_step_down_or_leave(app, team):
    owner, team_id = team
    me = owner.get("/api/account").json["data"]["id"]
    second, other = member_of(app, owner, team_id, role="admin")
    assert owner.put(members_url(team_id, second), json={"role": "owner"}).status_code == 200
    assert owner.delete(f"{members_url(team_id)}/{me}").status_code == 200
    assert me not in roles(other, team_id)
    assert owner.get(TEAMS_URL).json["data"] == []


def test_owners_remove_owners_admins_remove_admins_and_members(app, team, assert_error):
    owner, team_id = team
    co_owner, _ = member_of(app, owner, team_id, role="admin")
    owner.put(members_url(team_id, co_owner), json={"role": "owner"})
    _, admin = member_of(app, owner, team_id, role="admin")
    other_admin, _ = member_of(app, owner, team_id, role="admin")
    member, member_client = member_of(app, owner, team_id)
    assert admin.delete(members_url(team_id, other_admin)).status_code == 200
    assert admin.delete(members_url(team_id, member)).status_code == 200
    assert_error(admin.delete(members_url(team_id, co_owner)), 403, "FORBIDDEN")
    assert owner.delete(members_url(team_id, co_owner)).status_code == 200
    assert len(roles(owner, team_id)) == 2
    assert member_client.get(TEAMS_URL).json["data"] == []


def test_a_member_removes_nobody_but_may_leave(app, team, assert_error):
    owner, team_id = team
    user, member = member_of(app, owner, team_id)
    other, _ = member_of(app, owner, team_id)
    assert_error(member.delete(members_url(team_id, other)), 403, "FORBIDDEN")
    assert member.delete(members_url(team_id, user)).status_code == 200
    assert set(roles(owner, team_id)) == {
        owner.get("/api/account").json["data"]["id"],
        other.public_id,
    }


def test_a_removed_member_gets_a_notice_and_one_who_leaves_does_not(app, team):
    owner, team_id = team
    removed, _ = member_of(app, owner, team_id)
    leaving, leaver = member_of(app, owner, team_id)
    owner.delete(members_url(team_id, removed))
    leaver.delete(members_url(team_id, leaving))
    db.session.rollback()
    notices = db.session.execute(
        sa.select(OutboxMessage.to_address, OutboxMessage.text_body).where(
            OutboxMessage.kind == "notice_team_removed"
        )
    ).all()
    assert [to for to, _ in notices] == [removed.email]
    assert '"Acme"' in notices[0].text_body


def test_removal_and_leaving_are_in_the_team_log(app, team):
    owner, team_id = team
    removed, _ = member_of(app, owner, team_id)
    leaving, leaver = member_of(app, owner, team_id)
    owner.delete(members_url(team_id, removed))
    leaver.delete(members_url(team_id, leaving))
    events = owner.get(f"{TEAMS_URL}/{team_id}/activity").json["data"]["events"]
    assert [(e["type"], e["details"].get("userId")) for e in events[:2]] == [
        ("member_left", leaving.public_id),
        ("member_removed", removed.public_id),
    ]


def test_role_changes_are_in_the_team_log_and_a_change_to_the_same_role_is_not(app, team):
    owner, team_id = team
    user, _ = member_of(app, owner, team_id)
    owner.put(members_url(team_id, user), json={"role": "admin"})
    owner.put(members_url(team_id, user), json={"role": "admin"})
    events = owner.get(f"{TEAMS_URL}/{team_id}/activity").json["data"]["events"]
    assert [e["type"] for e in events[:2]] == ["role_changed", "member_joined"]
    assert events[0]["details"] == {"userId": user.public_id, "from": "member", "to": "admin"}
    assert events[0]["actorId"] == owner.get("/api/account").json["data"]["id"]
