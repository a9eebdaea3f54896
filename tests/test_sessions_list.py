"""GET/DELETE /api/account/sessions: see where one is signed in, and sign places out."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import AuthSession

from .factories import PASSWORD, UserFactory
from .helpers import signed_in
from .lifecycle_helpers import SESSIONS_URL, current_session, event_types, sessions

NEW_PASSWORD = "a much longer passphrase nobody guesses 42"


def test_list_shows_each_live_session_newest_first_with_what_identifies_it(app, user, frozen_clock):
    signed_in(app, user.email, "203.0.113.7", "Firefox on a laptop")
    clock.freeze(frozen_clock + timedelta(minutes=1))
    phone = signed_in(app, user.email, "198.51.100.2", "Safari on a phone")

    listed = sessions(phone)

    assert [(s["ipAddress"], s["userAgent"], s["current"]) for s in listed] == [
        ("198.51.100.2", "Safari on a phone", True),
        ("203.0.113.7", "Firefox on a laptop", False),
    ]
    assert listed[0]["createdAt"] == listed[0]["lastSeenAt"] == "2025-01-01T00:01:00Z"
    assert set(listed[0]) == {"id", "createdAt", "lastSeenAt", "ipAddress", "userAgent", "current"}


def test_session_ids_are_public_ids_not_the_token_or_its_hash(app, user):
    client = signed_in(app, user.email)
    listed = sessions(client)
    row = db.session.scalar(sa.select(AuthSession).where(AuthSession.user_id == user.id))
    token = client.get_cookie("smartcv_session").value
    assert listed[0]["id"].startswith("sess_") and listed[0]["id"] == row.public_id
    assert row.token_hash not in listed[0]["id"] and token not in str(listed)


def test_client_address_comes_through_trusted_proxies_only(app_factory):
    trusting = app_factory(TRUSTED_PROXIES=1)
    with trusting.app_context():
        user = UserFactory()
        client = trusting.test_client()
        client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
        client.post(
            "/api/auth/login",
            json={"email": user.email, "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.44"},
        )
        assert current_session(client)["ipAddress"] == "192.0.2.44"


def test_forwarded_header_is_ignored_without_trusted_proxies(app, user):
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.0.0.9"
    client.post(
        "/api/auth/login",
        json={"email": user.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.44"},
    )
    assert current_session(client)["ipAddress"] == "10.0.0.9"


def test_last_seen_is_not_written_within_five_minutes(app, user, frozen_clock):
    client = signed_in(app, user.email)
    clock.freeze(frozen_clock + timedelta(minutes=4, seconds=59))
    assert client.get("/api/account").status_code == 200
    assert current_session(client)["lastSeenAt"] == "2025-01-01T00:00:00Z"


def test_last_seen_is_written_once_it_is_five_minutes_old(app, user, frozen_clock):
    client = signed_in(app, user.email)
    clock.freeze(frozen_clock + timedelta(minutes=7))
    assert client.get("/api/account").status_code == 200
    assert current_session(client)["lastSeenAt"] == "2025-01-01T00:07:00Z"


def test_revoking_another_session_signs_that_browser_out(app, user):
    laptop = signed_in(app, user.email, agent="laptop")
    phone = signed_in(app, user.email, agent="phone")
    target = current_session(phone)["id"]

    response = laptop.delete(f"{SESSIONS_URL}/{target}")

    assert response.status_code == 200 and response.json == {"success": True}
    assert phone.get("/api/account").status_code == 401
    assert [s["userAgent"] for s in sessions(laptop)] == ["laptop"]


def test_revoking_the_current_session_is_a_logout(app, user, assert_error):
    client = signed_in(app, user.email)
    response = client.delete(f"{SESSIONS_URL}/{current_session(client)['id']}")
    assert response.status_code == 200
    assert_error(client.get("/api/account"), 401, "UNAUTHORIZED")


def test_another_users_session_is_not_found_and_stays_live(app, user, assert_error):
    mine = signed_in(app, user.email)
    other = signed_in(app, UserFactory().email)
    theirs = current_session(other)["id"]
    assert_error(mine.delete(f"{SESSIONS_URL}/{theirs}"), 404, "SESSION_NOT_FOUND")
    assert other.get("/api/account").status_code == 200


def test_unknown_session_id_is_not_found(auth_client, assert_error):
    for unknown in ("sess_nope", "sess_" + "0" * 24, "sess%00x", "x" * 300, "%F0%9F%98%80"):
        response = auth_client.delete(f"{SESSIONS_URL}/{unknown}")
        assert_error(response, 404, "SESSION_NOT_FOUND")


def test_a_revoked_session_is_gone_from_the_list_and_not_found_again(app, user, assert_error):
    laptop = signed_in(app, user.email)
    phone = signed_in(app, user.email)
    target = current_session(phone)["id"]
    laptop.delete(f"{SESSIONS_URL}/{target}")
    assert target not in [s["id"] for s in sessions(laptop)]
    assert_error(laptop.delete(f"{SESSIONS_URL}/{target}"), 404, "SESSION_NOT_FOUND")


def test_revoke_all_others_keeps_only_this_session(app, user):
    others = [signed_in(app, user.email) for _ in range(3)]
    me = signed_in(app, user.email)

    response = me.delete(SESSIONS_URL)

    assert response.json == {"success": True, "data": {"revoked": 3}}
    assert [c.get("/api/account").status_code for c in others] == [401, 401, 401]
    assert me.get("/api/account").status_code == 200
    assert [s["current"] for s in sessions(me)] == [True]


def test_revoke_all_others_when_alone_revokes_none(auth_client):
    assert auth_client.delete(SESSIONS_URL).json["data"] == {"revoked": 0}


def test_revoke_all_others_leaves_other_users_alone(app, user):
    other = signed_in(app, UserFactory().email)
    signed_in(app, user.email).delete(SESSIONS_URL)
    assert other.get("/api/account").status_code == 200


def test_expired_and_superseded_sessions_are_not_listed(app, user, frozen_clock):
    old = signed_in(app, user.email, agent="old")
    clock.freeze(frozen_clock + timedelta(days=29))
    changer = signed_in(app, user.email, agent="changer")
    stale = signed_in(app, user.email, agent="stale")
    body = {
        "currentPassword": PASSWORD,
        "newPassword": NEW_PASSWORD,
        "confirmPassword": NEW_PASSWORD,
    }
    assert changer.put("/api/account/security", json=body).status_code == 200
    clock.freeze(frozen_clock + timedelta(days=30, seconds=1))  # `old` has expired
    assert [s["userAgent"] for s in sessions(changer)] == ["changer"]
    assert old.get("/api/account").status_code == stale.get("/api/account").status_code == 401


def test_revocations_are_recorded_as_activity(app, user):
    me = signed_in(app, user.email)
    other = signed_in(app, user.email)
    me.delete(f"{SESSIONS_URL}/{current_session(other)['id']}")
    me.delete(SESSIONS_URL)  # nothing else is left: nothing recorded
    assert event_types(me)[:2] == ["session_revoked", "login_succeeded"]


def test_sessions_need_a_signed_in_user(client, assert_error):
    assert_error(client.get(SESSIONS_URL), 401, "UNAUTHORIZED")
    assert_error(client.delete(SESSIONS_URL), 401, "UNAUTHORIZED")
    assert_error(client.delete(f"{SESSIONS_URL}/sess_x"), 401, "UNAUTHORIZED")
