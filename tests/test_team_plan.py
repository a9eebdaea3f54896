"""The team's plan: the operator's command, the limits every member gets, and how they end."""

from __future__ import annotations

import pytest

from smartcv_account.services.teams.plan import assign_team_plan

from .factories import PASSWORD
from .helpers import (
    INTERNAL_TOKEN,
    TEAMS_URL,
    accept,
    invitation_token,
    invite,
    member_of,
    new_team,
    on_enterprise,
    post_usage,
    signed_in,
    subscribed,
    verified_user,
)

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


@pytest.fixture
def team_id(owner) -> str:
    """An ENTERPRISE team of `owner` with 5 seats."""
    team_id = new_team(owner)["id"]
    on_enterprise(team_id, 5)
    return team_id


def account(client) -> dict:
    """GET /api/account's data."""
    return client.get("/api/account").json["data"]


def assign_plan(team_id: str, plan_id: str) -> None:
    """Put a team on `plan_id` as the operator's command does (without seats)."""
    assign_team_plan(team_id, plan_id, None)


def assign(runner, *args: str):
    """Run `flask assign-plan ARGS`."""
    return runner.invoke(args=["assign-plan", *args])


# --- the operator's command ---------------------------------------------------------------------


def test_assign_plan_puts_a_team_on_enterprise_with_seats(runner, owner):
    team_id = new_team(owner)["id"]
    result = assign(runner, "--team", team_id, "plan_enterprise", "--seats", "25")
    assert result.exit_code == 0, result.output
    assert f"team {team_id} is now on plan_enterprise (25 seat(s))" in result.output
    team = owner.get(f"{TEAMS_URL}/{team_id}").json["data"]
    assert (team["subscriptionType"], team["seats"]) == ("ENTERPRISE", 25)
    events = owner.get(f"{TEAMS_URL}/{team_id}/activity").json["data"]["events"]
    assert (events[0]["type"], events[0]["details"], events[0]["actorId"]) == (
        "plan_assigned",
        {"planId": "plan_enterprise", "seats": 25},
        None,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("plan_enterprise",), "plan_enterprise needs --seats N"),
        (("plan_premium_monthly", "--seats", "3"), "a team can be put on"),
        (("plan_free", "--seats", "3"), "--seats goes with plan_enterprise"),
    ],
)
def test_assign_plan_refuses_what_a_team_cannot_be_on(runner, owner, args, message):
    team_id = new_team(owner)["id"]
    result = assign(runner, "--team", team_id, *args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and message in result.output
    assert "Traceback" not in result.output
    assert owner.get(f"{TEAMS_URL}/{team_id}").json["data"]["subscriptionType"] == "FREE"


def test_assign_plan_refuses_fewer_seats_than_members_and_invitations(runner, owner, team_id):
    invite(owner, team_id, "a@example.com")
    invite(owner, team_id, "b@example.com")
    result = assign(runner, "--team", team_id, "plan_enterprise", "--seats", "2")
    assert result.exit_code == 1
    assert "Error: the team has 3 members and pending invitations" in result.output
    assert assign(runner, "--team", team_id, "plan_enterprise", "--seats", "3").exit_code == 0


def test_assign_plan_refuses_an_unknown_team(runner, plans):
    result = assign(runner, "--team", "team_000000000000000000000000", "plan_free")
    assert result.exit_code == 1
    assert "Error: " in result.output and "no team with id" in result.output


def test_plan_free_keeps_members_revokes_invitations_and_leaves_one_seat(
    app, runner, owner, team_id, assert_error
):
    _, member = member_of(app, owner, team_id)
    invite(owner, team_id, "later@example.com")
    result = assign(runner, "--team", team_id, "plan_free")
    assert result.exit_code == 0, result.output
    assert "1 pending invitation(s) revoked" in result.output
    team = owner.get(f"{TEAMS_URL}/{team_id}").json["data"]
    assert (team["subscriptionType"], team["seats"], team["membersCount"]) == ("FREE", 1, 2)
    assert owner.get(f"{TEAMS_URL}/{team_id}/invitations").json["data"] == []
    assert_error(invite(owner, team_id, "new@example.com"), 409, "SEAT_LIMIT_REACHED")
    assert account(member)["subscriptionType"] == "FREE"


# --- the effective plan -------------------------------------------------------------------------


def test_a_member_of_an_enterprise_team_has_enterprise_limits(app, owner, team_id):
    _, member = member_of(app, owner, team_id)
    shown = account(member)
    assert (shown["subscriptionType"], shown["planSource"]) == ("ENTERPRISE", "team")
    assert (shown["resumesLimit"], shown["apiRequestsLimit"], shown["storageLimit"]) == (-1, -1, -1)
    assert shown["teams"] == [{"id": team_id, "name": "Acme", "role": "member"}]
    usage = member.get("/api/account/subscription").json["data"]["usage"]
    assert (usage["resumesLimit"], usage["apiRequestsLimit"]) == (-1, -1)


def test_a_user_without_a_team_shows_a_personal_plan_and_no_teams(auth_client, plans):
    shown = account(auth_client)
    assert (shown["subscriptionType"], shown["planSource"], shown["teams"]) == (
        "FREE",
        "personal",
        [],
    )


def test_a_free_team_gives_nothing_more_than_the_users_own_plan(app, owner):
    team_id = new_team(owner)["id"]
    shown = account(owner)
    assert (shown["subscriptionType"], shown["planSource"]) == ("FREE", "personal")
    assert shown["teams"] == [{"id": team_id, "name": "Acme", "role": "owner"}]


def test_a_premium_member_of_a_free_team_keeps_premium(app, owner):
    new_team(owner)
    subscribed(owner)
    shown = account(owner)
    assert (shown["subscriptionType"], shown["planSource"], shown["resumesLimit"]) == (
        "PREMIUM",
        "personal",
        -1,
    )


def test_a_premium_member_of_an_enterprise_team_gets_enterprise(app, owner, team_id):
    user, member = member_of(app, owner, team_id)
    subscribed(member)
    shown = account(member)
    assert (shown["subscriptionType"], shown["planSource"], shown["apiRequestsLimit"]) == (
        "ENTERPRISE",
        "team",
        -1,
    )
    assert shown["subscriptionStatus"] == "ACTIVE"  # their own subscription is still shown


def test_the_usage_call_counts_against_the_team_plans_limits(app, client, owner, team_id):
    user, _ = member_of(app, owner, team_id)
    response = post_usage(client, user.public_id, {"metric": "resumes", "delta": 50})
    assert response.status_code == 200, response.json
    assert (response.json["data"]["resumesCreated"], response.json["data"]["resumesLimit"]) == (
        50,
        -1,
    )


def test_counters_stay_per_user(app, client, owner, team_id):
    first, _ = member_of(app, owner, team_id)
    second, second_client = member_of(app, owner, team_id)
    post_usage(client, first.public_id, {"metric": "resumes", "delta": 7})
    assert account(second_client)["resumesCreated"] == 0


@pytest.mark.parametrize("ending", ["leave", "removal", "team_deletion", "plan_free"])
def test_every_way_out_drops_the_limits_at_once_and_keeps_usage_above_them(
    app, client, runner, owner, team_id, ending, assert_error
):
    user, member = member_of(app, owner, team_id)
    assert post_usage(client, user.public_id, {"metric": "resumes", "delta": 8}).status_code == 200
    member_url = f"{TEAMS_URL}/{team_id}/members/{user.public_id}"
    if ending == "leave":
        assert member.delete(member_url).status_code == 200
    elif ending == "removal":
        assert owner.delete(member_url).status_code == 200
    elif ending == "team_deletion":
        url = f"{TEAMS_URL}/{team_id}"
        assert owner.delete(url, json={"currentPassword": PASSWORD}).status_code == 200
    else:
        assert assign(runner, "--team", team_id, "plan_free").exit_code == 0
    shown = account(member)
    assert (shown["subscriptionType"], shown["resumesLimit"], shown["resumesCreated"]) == (
        "FREE",
        5,
        8,
    )
    refused = post_usage(client, user.public_id, {"metric": "resumes", "delta": 1})
    assert assert_error(refused, 429, "SUBSCRIPTION_LIMIT_EXCEEDED")["details"] == {
        "metric": "resumes",
        "limit": 5,
        "used": 8,
    }
    assert post_usage(client, user.public_id, {"metric": "resumes", "delta": -4}).status_code == 200


def test_of_several_teams_the_best_plan_applies(app, client, owner, team_id):
    user, member = member_of(app, owner, team_id)
    other_owner = signed_in(app, verified_user().email)
    free_team = new_team(other_owner, "Free")["id"]
    on_enterprise(free_team, 2)
    member_of_free = invite(other_owner, free_team, user.email)
    assert member_of_free.status_code == 201
    assert accept(member, invitation_token(user.email)).status_code == 200
    assign_plan(free_team, "plan_free")
    assert [t["name"] for t in account(member)["teams"]] == ["Acme", "Free"]
    assert account(member)["subscriptionType"] == "ENTERPRISE"
    member.delete(f"{TEAMS_URL}/{team_id}/members/{user.public_id}")
    assert (account(member)["subscriptionType"], account(member)["planSource"]) == (
        "FREE",
        "personal",
    )
    big = post_usage(client, user.public_id, {"metric": "apiRequests", "delta": 101})
    assert big.status_code == 429


# --- the internal look-ups ----------------------------------------------------------------------


def test_other_services_read_a_team(client, owner, team_id):
    owner.put(f"{TEAMS_URL}/{team_id}", json={"branding": {"primaryColor": "#112233"}})
    response = client.get(f"/api/internal/teams/{team_id}", headers=INTERNAL)
    assert response.status_code == 200, response.json
    assert response.json["data"] == {
        "id": team_id,
        "name": "Acme",
        "branding": {"displayName": None, "logoUrl": None, "primaryColor": "#112233"},
        "subscriptionType": "ENTERPRISE",
        "seats": 5,
    }


def test_other_services_ask_a_users_role(app, client, owner, team_id, assert_error):
    user, _ = member_of(app, owner, team_id, role="admin")
    url = f"/api/internal/teams/{team_id}/members"
    answer = client.get(f"{url}/{user.public_id}", headers=INTERNAL)
    assert answer.json["data"] == {"role": "admin"}
    stranger = verified_user()
    refused = client.get(f"{url}/{stranger.public_id}", headers=INTERNAL)
    assert_error(refused, 404, "NOT_A_MEMBER")
    assert_error(client.get(f"{url}/nobody", headers=INTERNAL), 404, "NOT_A_MEMBER")


def test_the_internal_look_ups_need_the_internal_token(client, owner, team_id, assert_error):
    assert_error(client.get(f"/api/internal/teams/{team_id}"), 401, "UNAUTHORIZED")
    wrong = {"Authorization": "Bearer nope"}
    assert_error(client.get(f"/api/internal/teams/{team_id}", headers=wrong), 401, "UNAUTHORIZED")
    unknown = client.get("/api/internal/teams/team_000000000000000000000000", headers=INTERNAL)
    assert_error(unknown, 404, "TEAM_NOT_FOUND")


# --- the team log -------------------------------------------------------------------------------


def test_the_team_log_pages_like_the_accounts_activity(owner):
    team_id = new_team(owner)["id"]
    for n in range(5):
        owner.put(f"{TEAMS_URL}/{team_id}", json={"name": f"Acme {n}"})
    url = f"{TEAMS_URL}/{team_id}/activity"
    first = owner.get(url, query_string={"limit": 4}).json["data"]
    assert [e["type"] for e in first["events"]] == ["team_updated"] * 4
    assert list(first["events"][0]) == [
        "id",
        "type",
        "createdAt",
        "ipAddress",
        "userAgent",
        "details",
        "actorId",
    ]
    rest = owner.get(url, query_string={"limit": 4, "before": first["nextCursor"]}).json["data"]
    assert [e["type"] for e in rest["events"]] == ["team_updated", "team_created"]
    assert rest["nextCursor"] is None
    assert first["events"][0]["details"] == {"fields": ["name"]}


def test_only_owners_and_admins_read_the_team_log(app, owner, team_id, assert_error):
    _, member = member_of(app, owner, team_id)
    assert_error(member.get(f"{TEAMS_URL}/{team_id}/activity"), 403, "FORBIDDEN")
    bad = owner.get(f"{TEAMS_URL}/{team_id}/activity", query_string={"before": "evt_x"})
    assert_error(bad, 400, "VALIDATION_ERROR", field="before")
