"""Teams over HTTP: creating, reading, changing and deleting one; who may see and do what."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from smartcv_account import catalogue, clock
from smartcv_account.services import billing

from .factories import PASSWORD
from .helpers import TEAMS_URL, member_of, new_team, on_enterprise, signed_in, verified_user
from .signin_helpers import passwordless_user, session_client

TEAM_FIELDS = [
    "id",
    "name",
    "role",
    "subscriptionType",
    "seats",
    "membersCount",
    "branding",
    "createdAt",
]
NO_BRANDING = {"displayName": None, "logoUrl": None, "primaryColor": None}


def test_a_new_team_is_free_with_one_seat_and_its_creator_as_owner(owner):
    team = new_team(owner, "  Acme  ")
    assert list(team) == TEAM_FIELDS
    assert re.fullmatch(r"team_[0-9a-f]{24}", team["id"])
    assert (team["name"], team["role"], team["subscriptionType"]) == ("Acme", "owner", "FREE")
    assert (team["seats"], team["membersCount"], team["branding"]) == (1, 1, NO_BRANDING)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", team["createdAt"])


def test_creating_a_team_needs_a_verified_email(auth_client, plans, assert_error):
    response = auth_client.post(TEAMS_URL, json={"name": "Acme"})
    assert_error(response, 403, "EMAIL_NOT_VERIFIED")
    assert auth_client.get(TEAMS_URL).json["data"] == []


@pytest.mark.parametrize("body", [{}, {"name": ""}, {"name": "x" * 101}, {"name": "A", "x": 1}])
def test_a_team_needs_a_name_of_1_to_100_characters(owner, body, assert_error):
    assert_error(owner.post(TEAMS_URL, json=body), 400, "VALIDATION_ERROR")
    assert owner.get(TEAMS_URL).json["data"] == []


def test_creating_a_team_needs_a_session(client, assert_error):
    assert_error(client.post(TEAMS_URL, json={"name": "Acme"}), 401, "UNAUTHORIZED")


def test_the_list_shows_each_team_of_the_user_with_their_role(owner):
    first, second = new_team(owner, "First"), new_team(owner, "Second")
    listed = owner.get(TEAMS_URL).json["data"]
    assert [(t["id"], t["role"]) for t in listed] == [
        (first["id"], "owner"),
        (second["id"], "owner"),
    ]


def test_a_member_reads_the_team_with_their_own_role(app, owner):
    team = new_team(owner)
    _enterprise(team["id"])
    _, member = member_of(app, owner, team["id"])
    shown = member.get(f"{TEAMS_URL}/{team['id']}").json["data"]
    assert (shown["role"], shown["membersCount"], shown["subscriptionType"]) == (
        "member",
        2,
        "ENTERPRISE",
    )
    assert [t["role"] for t in member.get(TEAMS_URL).json["data"]] == ["member"]


@pytest.mark.parametrize("team_id", ["team_000000000000000000000000", "nope", "team_%00"])
def test_an_unknown_team_is_team_not_found(owner, team_id, assert_error):
    assert_error(owner.get(f"{TEAMS_URL}/{team_id}"), 404, "TEAM_NOT_FOUND")


def test_another_users_team_is_team_not_found_for_every_verb(app, owner, assert_error):
    team = new_team(owner)
    stranger = signed_in(app, verified_user().email)
    base = f"{TEAMS_URL}/{team['id']}"
    for method, path, body in (
        ("get", base, None),
        ("put", base, {"name": "Mine"}),
        ("delete", base, {"currentPassword": PASSWORD}),
        ("get", f"{base}/members", None),
        ("post", f"{base}/invitations", {"email": "x@example.com", "role": "member"}),
        ("get", f"{base}/invitations", None),
        ("get", f"{base}/activity", None),
    ):
        response = getattr(stranger, method)(path, json=body)
        assert_error(response, 404, "TEAM_NOT_FOUND")
    assert owner.get(base).json["data"]["name"] == "Acme"


def test_owner_changes_name_and_branding_partially(owner):
    team = new_team(owner)
    url = f"{TEAMS_URL}/{team['id']}"
    branding = {"displayName": "Acme Inc.", "logoUrl": "https://CDN.example.com/a.png"}
    first = owner.put(url, json={"branding": branding})
    assert first.status_code == 200, first.json
    second = owner.put(url, json={"name": "Acme EU", "branding": {"primaryColor": "#1a73E8"}})
    assert second.json["data"]["name"] == "Acme EU"
    assert second.json["data"]["branding"] == {
        "displayName": "Acme Inc.",
        "logoUrl": "https://cdn.example.com/a.png",
        "primaryColor": "#1a73E8",
    }
    cleared = owner.put(url, json={"branding": {"logoUrl": None}}).json["data"]["branding"]
    assert cleared["logoUrl"] is None and cleared["displayName"] == "Acme Inc."


@pytest.mark.parametrize(
    ("branding", "field"),
    [
        ({"logoUrl": "http://cdn.example.com/a.png"}, "branding.logoUrl"),
        ({"logoUrl": "https://cdn.example.com/" + "a" * 480}, "branding.logoUrl"),
        ({"logoUrl": "https://127.0.0.1/a.png"}, "branding.logoUrl"),
        ({"primaryColor": "#12345"}, "branding.primaryColor"),
        ({"primaryColor": "red"}, "branding.primaryColor"),
        ({"displayName": ""}, "branding.displayName"),
        ({"font": "Arial"}, "branding.font"),
    ],
)
def test_bad_branding_is_refused_and_nothing_changes(owner, branding, field, assert_error):
    team = new_team(owner)
    url = f"{TEAMS_URL}/{team['id']}"
    response = owner.put(url, json={"name": "Changed", "branding": branding})
    assert_error(response, 400, "VALIDATION_ERROR", field=field)
    assert owner.get(url).json["data"]["name"] == "Acme"


def test_an_admin_may_change_the_team_but_a_member_may_not(app, owner, assert_error):
    team = new_team(owner)
    _enterprise(team["id"])
    _, admin = member_of(app, owner, team["id"], role="admin")
    _, member = member_of(app, owner, team["id"])
    url = f"{TEAMS_URL}/{team['id']}"
    assert admin.put(url, json={"name": "By admin"}).status_code == 200
    assert_error(member.put(url, json={"name": "By member"}), 403, "FORBIDDEN")
    assert owner.get(url).json["data"]["name"] == "By admin"


def test_only_the_owner_deletes_the_team_with_the_password(app, owner, assert_error):
    team = new_team(owner)
    _enterprise(team["id"])
    _, admin = member_of(app, owner, team["id"], role="admin")
    url = f"{TEAMS_URL}/{team['id']}"
    assert_error(admin.delete(url, json={"currentPassword": PASSWORD}), 403, "FORBIDDEN")
    wrong = owner.delete(url, json={"currentPassword": "not it"})
    assert_error(wrong, 400, "INVALID_PASSWORD", field="currentPassword")
    assert owner.delete(url, json={"currentPassword": PASSWORD}).status_code == 200
    assert_error(owner.get(url), 404, "TEAM_NOT_FOUND")
    assert admin.get(TEAMS_URL).json["data"] == []


def test_deleting_a_team_takes_its_plan_from_the_members_at_once(app, owner):
    team = new_team(owner)
    _enterprise(team["id"])
    _, member = member_of(app, owner, team["id"])
    assert member.get("/api/account").json["data"]["subscriptionType"] == "ENTERPRISE"
    owner.delete(f"{TEAMS_URL}/{team['id']}", json={"currentPassword": PASSWORD})
    account = member.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["resumesLimit"], account["teams"]) == (
        "FREE",
        5,
        [],
    )


def test_wrong_team_deletion_passwords_count_in_the_accounts_guessing_budget(
    app_factory, assert_error
):
    app = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")
    with app.app_context():
        seed_plans()
        owner = signed_in(app, verified_user().email)
    team = new_team(owner)
    url = f"{TEAMS_URL}/{team['id']}"
    for _ in range(10):
        assert owner.delete(url, json={"currentPassword": "wrong"}).status_code == 400
    # The budget is the account's: the right password now waits too, here and elsewhere.
    assert_error(owner.delete(url, json={"currentPassword": PASSWORD}), 429, "RATE_LIMITED")
    security = owner.put("/api/account/security", json={"currentPassword": PASSWORD})
    assert_error(security, 429, "RATE_LIMITED")
    events = owner.get("/api/account/activity").json["data"]["events"]
    refused = [e for e in events if e["type"] == "secret_refused"]
    assert len(refused) == 10
    assert refused[0]["details"] == {"action": "team_deletion", "reason": "currentPassword"}


def _enterprise(team_id: str, seats: int = 10) -> None:
    """Give the team room for the members a test adds."""
    on_enterprise(team_id, seats)


def seed_plans() -> None:
    """Seed the catalogue's plans, as `flask seed-plans` does."""
    billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)


def test_an_owner_without_password_deletes_the_team_within_ten_minutes_of_signing_in(
    app, plans, frozen_clock, assert_error
):
    client = session_client(app, passwordless_user())
    first, second = new_team(client), new_team(client, "Beta")
    assert client.delete(f"{TEAMS_URL}/{first['id']}", json={}).status_code == 200
    clock.freeze(frozen_clock + timedelta(minutes=10))
    stale = client.delete(f"{TEAMS_URL}/{second['id']}", json={})
    assert_error(stale, 401, "REAUTHENTICATION_REQUIRED")
    assert [team["id"] for team in client.get(TEAMS_URL).json["data"]] == [second["id"]]
