"""GET and PUT /api/account: every field, the defaults, the partial update and its rules."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from smartcv_account import clock

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")

ACCOUNT_FIELDS = [
    "id",
    "email",
    "name",
    "avatar",
    "emailVerified",
    "emailVerifiedAt",
    "subscriptionType",
    "subscriptionStatus",
    "subscriptionExpiresAt",
    "resumesCreated",
    "resumesLimit",
    "apiRequestsUsed",
    "apiRequestsLimit",
    "storageUsed",
    "storageLimit",
    "preferences",
    "createdAt",
    "updatedAt",
    "lastLoginAt",
    # The contract's additions for teams.
    "planSource",
    "teams",
]
DEFAULT_PREFERENCES = {
    "language": "en",
    "timezone": "UTC",
    "theme": "light",
    "emailNotifications": True,
    "marketingEmails": False,
}
AVATAR = "https://storage.smartcv.cc/avatars/user_123.jpg"


def account(client) -> dict:
    """GET /api/account and return its `data`."""
    response = client.get("/api/account")
    assert response.status_code == 200, response.json
    return response.json["data"]


def update(client, body):
    """PUT /api/account with a JSON body."""
    return client.put("/api/account", json=body)


# --- GET --------------------------------------------------------------------------------------


def test_get_account_answers_the_success_envelope(auth_client):
    body = auth_client.get("/api/account").json
    assert body["success"] is True
    assert set(body) == {"success", "data"}


def test_get_account_has_every_field_of_the_document(auth_client):
    assert list(account(auth_client)) == ACCOUNT_FIELDS


def test_get_account_shows_the_users_identity(auth_client, user):
    data = account(auth_client)
    assert data["id"] == user.public_id
    assert data["email"] == user.email
    assert data["name"] == user.name


def test_account_id_is_an_opaque_user_prefixed_string(auth_client):
    data = account(auth_client)
    assert isinstance(data["id"], str)
    assert data["id"].startswith("user_")
    assert not data["id"].removeprefix("user_").isdigit()


def test_new_account_has_no_avatar(auth_client):
    assert account(auth_client)["avatar"] is None


def test_new_account_email_is_not_verified(auth_client):
    data = account(auth_client)
    assert data["emailVerified"] is False
    assert data["emailVerifiedAt"] is None


def test_new_account_is_on_the_free_plan(auth_client):
    data = account(auth_client)
    assert data["subscriptionType"] == "FREE"
    assert data["subscriptionStatus"] == "ACTIVE"
    assert data["subscriptionExpiresAt"] is None


def test_new_account_has_the_free_limits(auth_client):
    data = account(auth_client)
    assert (data["resumesLimit"], data["apiRequestsLimit"], data["storageLimit"]) == (
        5,
        100,
        10485760,
    )


def test_new_account_has_zero_usage(auth_client):
    data = account(auth_client)
    assert (data["resumesCreated"], data["apiRequestsUsed"], data["storageUsed"]) == (0, 0, 0)


def test_usage_and_limits_are_integers(auth_client):
    data = account(auth_client)
    for name in ACCOUNT_FIELDS[9:15]:
        assert type(data[name]) is int, name


def test_new_account_has_the_default_preferences(auth_client):
    assert account(auth_client)["preferences"] == DEFAULT_PREFERENCES


@pytest.mark.parametrize("name", ["createdAt", "updatedAt", "lastLoginAt"])
def test_account_timestamps_are_utc_to_the_second(auth_client, name):
    assert TIMESTAMP.match(account(auth_client)[name])


def test_account_timestamps_come_from_the_clock(app, frozen_clock):
    client = app.test_client()
    client.post(
        "/api/auth/register",
        json={"email": "t@example.com", "password": "violet tugboat climbs", "name": "T"},
    )
    data = account(client)
    assert data["createdAt"] == data["updatedAt"] == data["lastLoginAt"] == "2025-01-01T00:00:00Z"


def test_get_account_without_a_session_is_unauthorized(client, assert_error):
    assert_error(client.get("/api/account"), 401, "UNAUTHORIZED")


# --- PUT: the happy paths ---------------------------------------------------------------------


def test_update_with_the_documents_example_changes_everything_sent(auth_client):
    body = {
        "name": "Li Si",
        "avatar": "https://storage.smartcv.cc/avatars/new_avatar.jpg",
        "preferences": {
            "language": "en",
            "timezone": "America/New_York",
            "theme": "dark",
            "emailNotifications": False,
            "marketingEmails": True,
        },
    }
    data = update(auth_client, body).json["data"]
    assert {key: data[key] for key in body} == body


def test_update_returns_the_whole_account(auth_client):
    response = update(auth_client, {"name": "Li Si"})
    assert response.status_code == 200
    assert response.json["success"] is True
    assert list(response.json["data"]) == ACCOUNT_FIELDS


def test_update_is_persisted(auth_client):
    update(auth_client, {"name": "Li Si"})
    assert account(auth_client)["name"] == "Li Si"


def test_update_changes_only_the_fields_sent(auth_client):
    update(auth_client, {"avatar": AVATAR})
    before = account(auth_client)
    update(auth_client, {"name": "Li Si"})
    after = account(auth_client)
    assert after["avatar"] == AVATAR
    assert {k: v for k, v in after.items() if k not in ("name", "updatedAt")} == {
        k: v for k, v in before.items() if k not in ("name", "updatedAt")
    }


def test_preferences_merge_key_by_key(auth_client):
    update(auth_client, {"preferences": {"language": "zh-cn", "timezone": "Asia/Shanghai"}})
    update(auth_client, {"preferences": {"theme": "dark"}})
    assert account(auth_client)["preferences"] == {
        **DEFAULT_PREFERENCES,
        "language": "zh-cn",
        "timezone": "Asia/Shanghai",
        "theme": "dark",
    }


def test_update_moves_updated_at_but_not_created_at(auth_client, frozen_clock):
    before = account(auth_client)
    clock.freeze(frozen_clock + timedelta(hours=1))
    data = update(auth_client, {"name": "Li Si"}).json["data"]
    assert data["updatedAt"] == "2025-01-01T01:00:00Z"
    assert data["createdAt"] == before["createdAt"]


def test_update_trims_the_name(auth_client):
    assert update(auth_client, {"name": "  Li Si \t"}).json["data"]["name"] == "Li Si"


@pytest.mark.parametrize("name", ["L", "x" * 100, "  " + "x" * 100 + "  ", "张三"])
def test_update_accepts_a_name_of_1_to_100_characters(auth_client, name):
    assert update(auth_client, {"name": name}).json["data"]["name"] == name.strip()


def test_update_accepts_a_null_avatar(auth_client):
    update(auth_client, {"avatar": AVATAR})
    assert update(auth_client, {"avatar": None}).json["data"]["avatar"] is None


def test_update_accepts_an_avatar_of_2048_characters(auth_client):
    url = "https://storage.smartcv.cc/" + "a" * (2048 - len("https://storage.smartcv.cc/"))
    assert update(auth_client, {"avatar": url}).json["data"]["avatar"] == url


@pytest.mark.parametrize("language", ["en", "zh-cn"])
def test_update_accepts_each_supported_language(auth_client, language):
    data = update(auth_client, {"preferences": {"language": language}}).json["data"]
    assert data["preferences"]["language"] == language


@pytest.mark.parametrize("timezone", ["UTC", "Asia/Shanghai", "America/New_York", "Europe/Paris"])
def test_update_accepts_a_real_iana_timezone(auth_client, timezone):
    data = update(auth_client, {"preferences": {"timezone": timezone}}).json["data"]
    assert data["preferences"]["timezone"] == timezone


@pytest.mark.parametrize("theme", ["light", "dark", "auto"])
def test_update_accepts_each_theme(auth_client, theme):
    data = update(auth_client, {"preferences": {"theme": theme}}).json["data"]
    assert data["preferences"]["theme"] == theme


@pytest.mark.parametrize("flag", ["emailNotifications", "marketingEmails"])
@pytest.mark.parametrize("value", [True, False])
def test_update_accepts_boolean_flags(auth_client, flag, value):
    data = update(auth_client, {"preferences": {flag: value}}).json["data"]
    assert data["preferences"][flag] is value


def test_update_with_an_empty_object_changes_nothing(auth_client):
    before = account(auth_client)
    assert update(auth_client, {}).json["data"] == before


# --- PUT: refused values, and nothing changes -------------------------------------------------

INVALID_UPDATES = [
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": "x" * 101}, "name"),
    ({"name": None}, "name"),
    ({"name": 42}, "name"),
    ({"avatar": "http://storage.smartcv.cc/a.jpg"}, "avatar"),
    ({"avatar": "ftp://storage.smartcv.cc/a.jpg"}, "avatar"),
    ({"avatar": "javascript:alert(1)"}, "avatar"),
    ({"avatar": "not a url"}, "avatar"),
    ({"avatar": "https://storage.smartcv.cc/" + "a" * 2022}, "avatar"),
    ({"avatar": 7}, "avatar"),
    ({"preferences": None}, "preferences"),
    ({"preferences": "dark"}, "preferences"),
    ({"preferences": {"language": "fr"}}, "preferences.language"),
    ({"preferences": {"language": "EN"}}, "preferences.language"),
    ({"preferences": {"language": None}}, "preferences.language"),
    ({"preferences": {"timezone": "Mars/Olympus_Mons"}}, "preferences.timezone"),
    ({"preferences": {"timezone": "utc"}}, "preferences.timezone"),
    ({"preferences": {"timezone": "+08:00"}}, "preferences.timezone"),
    ({"preferences": {"theme": "blue"}}, "preferences.theme"),
    ({"preferences": {"theme": "Dark"}}, "preferences.theme"),
    ({"preferences": {"emailNotifications": "yes"}}, "preferences.emailNotifications"),
    ({"preferences": {"emailNotifications": 1}}, "preferences.emailNotifications"),
    ({"preferences": {"marketingEmails": "true"}}, "preferences.marketingEmails"),
    ({"preferences": {"marketingEmails": 0}}, "preferences.marketingEmails"),
    ({"preferences": {"marketingEmails": None}}, "preferences.marketingEmails"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_UPDATES)
def test_update_refuses_an_invalid_value(auth_client, body, field, assert_error):
    error = assert_error(update(auth_client, body), 400, "VALIDATION_ERROR", field=field)
    assert field in error["details"]["fields"]
    assert all(isinstance(m, str) for m in error["details"]["fields"][field])


@pytest.mark.parametrize(("body", "field"), INVALID_UPDATES)
def test_refused_update_changes_nothing(auth_client, body, field):
    before = account(auth_client)
    update(auth_client, body)
    assert account(auth_client) == before


READ_ONLY = {
    "id": "user_attacker",
    "email": "attacker@example.com",
    "emailVerified": True,
    "emailVerifiedAt": "2024-01-15T10:00:00Z",
    "subscriptionType": "ENTERPRISE",
    "subscriptionStatus": "ACTIVE",
    "subscriptionExpiresAt": "2099-01-01T00:00:00Z",
    "resumesCreated": 0,
    "resumesLimit": -1,
    "apiRequestsUsed": 0,
    "apiRequestsLimit": -1,
    "storageUsed": 0,
    "storageLimit": -1,
    "createdAt": "2024-01-15T10:00:00Z",
    "updatedAt": "2024-01-15T10:00:00Z",
    "lastLoginAt": "2024-01-15T10:00:00Z",
}


@pytest.mark.parametrize("field", list(READ_ONLY))
def test_update_refuses_a_read_only_field(auth_client, field, assert_error):
    body = {"name": "Li Si", field: READ_ONLY[field]}
    assert_error(update(auth_client, body), 400, "VALIDATION_ERROR", field=field)


def test_update_with_read_only_fields_changes_nothing(auth_client):
    before = account(auth_client)
    update(auth_client, {"name": "Li Si", **READ_ONLY})
    assert account(auth_client) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"nickname": "x"}, "nickname"),
        ({"password": "violet tugboat climbs"}, "password"),
        ({"twoFactorEnabled": True}, "twoFactorEnabled"),
        ({"preferences": {"fontSize": 12}}, "preferences.fontSize"),
        (
            {"preferences": {"theme": "dark", "email_notifications": False}},
            "preferences.email_notifications",
        ),
    ],
)
def test_update_refuses_an_unknown_field(auth_client, body, field, assert_error):
    error = assert_error(update(auth_client, body), 400, "VALIDATION_ERROR", field=field)
    assert error["details"]["fields"][field]


def test_update_with_unknown_nested_field_changes_nothing(auth_client):
    before = account(auth_client)
    update(auth_client, {"name": "Li Si", "preferences": {"theme": "dark", "fontSize": 12}})
    assert account(auth_client) == before


def test_update_lists_every_offending_field(auth_client, assert_error):
    body = {"name": "", "preferences": {"theme": "blue", "language": "fr"}, "role": "admin"}
    error = assert_error(update(auth_client, body), 400, "VALIDATION_ERROR")
    assert set(error["details"]["fields"]) == {
        "name",
        "preferences.theme",
        "preferences.language",
        "role",
    }
    assert error["details"]["field"] in error["details"]["fields"]


def test_update_refuses_a_nul_character_in_the_name(auth_client, assert_error):
    assert_error(update(auth_client, {"name": "Li\x00Si"}), 400, "VALIDATION_ERROR", field="name")


def test_update_without_a_session_is_unauthorized(client, assert_error):
    assert_error(update(client, {"name": "Li Si"}), 401, "UNAUTHORIZED")
