"""PUT /api/account/security: password changes and turning two-factor authentication on and off."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import BackupCode, User

from .factories import PASSWORD
from .helpers import NEW_PASSWORD, change_password, login

MESSAGE = "Security settings updated successfully"


def security(client, **body):
    """PUT /api/account/security; keyword arguments are the camelCase body fields."""
    return client.put("/api/account/security", json=body)


def stored_user(user) -> User:
    """Re-read the user from the database, bypassing the session's identity map."""
    db.session.expire_all()
    return db.session.get(User, user.id)


# --- the envelope and the no-op ---------------------------------------------------------------


def test_password_change_answers_the_documents_envelope(auth_client):
    body = change_password(auth_client).json
    assert body == {
        "success": True,
        "message": MESSAGE,
        "data": {"passwordUpdated": True, "twoFactorEnabled": False},
    }


def test_only_current_password_succeeds_and_changes_nothing(auth_client, user, app):
    before = stored_user(user).password_hash
    response = security(auth_client, currentPassword=PASSWORD)
    assert response.status_code == 200
    assert response.json["data"] == {"passwordUpdated": False, "twoFactorEnabled": False}
    assert stored_user(user).password_hash == before


def test_current_password_is_required(auth_client, assert_error):
    response = security(auth_client, newPassword=NEW_PASSWORD, confirmPassword=NEW_PASSWORD)
    assert_error(response, 400, "VALIDATION_ERROR", field="currentPassword")


def test_wrong_current_password_is_invalid_password(auth_client, assert_error):
    response = change_password(auth_client, current="not my password")
    assert_error(response, 400, "INVALID_PASSWORD", field="currentPassword")


def test_wrong_current_password_changes_nothing(auth_client, app, user):
    change_password(auth_client, current="not my password")
    assert login(app.test_client(), user.email).status_code == 200


def test_wrong_current_password_is_checked_before_new_password_strength(auth_client, assert_error):
    response = change_password(auth_client, new="short", current="not my password")
    assert_error(response, 400, "INVALID_PASSWORD", field="currentPassword")


def test_wrong_current_password_cannot_turn_on_two_factor(auth_client, assert_error):
    response = security(auth_client, currentPassword="not my password", twoFactorEnabled=True)
    assert_error(response, 400, "INVALID_PASSWORD", field="currentPassword")


def test_security_refuses_unknown_fields(auth_client, assert_error):
    response = security(auth_client, currentPassword=PASSWORD, email="x@example.com")
    assert_error(response, 400, "VALIDATION_ERROR", field="email")


def test_security_without_a_session_is_unauthorized(client, assert_error):
    assert_error(security(client, currentPassword=PASSWORD), 401, "UNAUTHORIZED")


# --- the new password's rules -----------------------------------------------------------------


def test_new_password_without_confirmation_is_refused(auth_client, assert_error):
    response = security(auth_client, currentPassword=PASSWORD, newPassword=NEW_PASSWORD)
    assert_error(response, 400, "VALIDATION_ERROR", field="confirmPassword")


def test_confirmation_without_new_password_is_refused(auth_client, assert_error):
    response = security(auth_client, currentPassword=PASSWORD, confirmPassword=NEW_PASSWORD)
    assert_error(response, 400, "VALIDATION_ERROR", field="newPassword")


def test_mismatched_confirmation_is_refused(auth_client, assert_error):
    response = change_password(auth_client, confirm=NEW_PASSWORD + "!")
    assert_error(response, 400, "VALIDATION_ERROR", field="confirmPassword")


def test_7_character_new_password_is_weak(auth_client, assert_error):
    body = assert_error(change_password(auth_client, new="Xk9#qLm"), 422, "WEAK_PASSWORD")
    assert body["details"]["field"] == "newPassword"
    assert body["details"]["feedback"]["warning"]


def test_long_but_guessable_new_password_is_weak_with_feedback(auth_client, assert_error):
    response = change_password(auth_client, new="password1234")
    body = assert_error(response, 422, "WEAK_PASSWORD", field="newPassword")
    assert isinstance(body["details"]["feedback"]["warning"], str)
    assert body["details"]["feedback"]["warning"]
    assert isinstance(body["details"]["feedback"]["suggestions"], list)
    assert body["details"]["feedback"]["suggestions"]


def test_weak_new_password_is_not_stored(auth_client, app, user):
    change_password(auth_client, new="password1234")
    assert login(app.test_client(), user.email, "password1234").status_code == 401


def test_129_character_new_password_is_a_validation_error(auth_client, assert_error):
    response = change_password(auth_client, new=(NEW_PASSWORD + " ") * 3 + "x" * 21)
    assert_error(response, 400, "VALIDATION_ERROR", field="newPassword")


def test_128_character_new_password_is_accepted(auth_client):
    password = (NEW_PASSWORD + " ") * 3 + "x" * 20
    assert len(password) == 128
    assert change_password(auth_client, new=password).status_code == 200


def test_new_password_differing_only_after_72_bytes_is_a_different_password(auth_client, app, user):
    prefix = "orchid-Vortex-31-gravel-Pelican-84-saffron-Quill-07-tundra-Marble-55-zzq"
    change_password(auth_client, new=prefix + "A")
    assert login(app.test_client(), user.email, prefix + "B").status_code == 401
    assert login(app.test_client(), user.email, prefix + "A").status_code == 200


# --- what a password change does to sessions and logins ---------------------------------------


def test_old_password_no_longer_logs_in(auth_client, app, user, assert_error):
    change_password(auth_client)
    assert_error(login(app.test_client(), user.email), 401, "INVALID_CREDENTIALS")


def test_new_password_logs_in(auth_client, app, user):
    change_password(auth_client)
    assert login(app.test_client(), user.email, NEW_PASSWORD).status_code == 200


def test_password_change_ends_every_other_session(auth_client, app, user, assert_error):
    others = [app.test_client(), app.test_client()]
    for other in others:
        login(other, user.email)
    change_password(auth_client)
    for other in others:
        assert_error(other.get("/api/account"), 401, "UNAUTHORIZED")


def test_password_change_keeps_the_session_that_made_it(auth_client):
    change_password(auth_client)
    assert auth_client.get("/api/account").status_code == 200


def test_password_change_gives_the_changer_a_new_cookie_and_kills_the_old_one(
    auth_client, app, assert_error
):
    old = auth_client.get_cookie("smartcv_session").value
    response = change_password(auth_client)
    assert response.status_code == 200
    set_cookie = response.headers["Set-Cookie"].split("; ")
    assert {"HttpOnly", "SameSite=Lax", "Secure"} <= set(set_cookie)
    new = auth_client.get_cookie("smartcv_session").value
    assert new != old
    copy = app.test_client()
    copy.set_cookie("smartcv_session", old)
    assert_error(copy.get("/api/account"), 401, "UNAUTHORIZED")
    assert auth_client.get("/api/account").status_code == 200


def test_a_refused_password_change_keeps_the_cookie(auth_client, assert_error):
    response = auth_client.put(
        "/api/account/security",
        json={
            "currentPassword": "not the password",
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
        },
    )
    assert_error(response, 400, "INVALID_PASSWORD")
    assert "Set-Cookie" not in response.headers
    assert auth_client.get("/api/account").status_code == 200


def test_password_change_leaves_other_users_signed_in(auth_client, app):
    other = app.test_client()
    other.post(
        "/api/auth/register",
        json={"email": "other@example.com", "password": NEW_PASSWORD, "name": "Other"},
    )
    change_password(auth_client)
    assert other.get("/api/account").status_code == 200


def test_failed_password_change_keeps_other_sessions(auth_client, app, user):
    other = app.test_client()
    login(other, user.email)
    change_password(auth_client, new="password1234")
    assert other.get("/api/account").status_code == 200


# --- turning two-factor authentication on -----------------------------------------------------


def test_enabling_two_factor_answers_codes_secret_and_uri(auth_client):
    response = security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    assert response.status_code == 200
    assert response.json["message"] == MESSAGE
    data = response.json["data"]
    assert data["passwordUpdated"] is False
    assert data["twoFactorEnabled"] is True
    assert set(data) == {
        "passwordUpdated",
        "twoFactorEnabled",
        "backupCodes",
        "otpauthUri",
        "secret",
    }


def test_enabling_two_factor_makes_ten_distinct_8_digit_backup_codes(two_factor):
    codes = two_factor["backupCodes"]
    assert len(codes) == len(set(codes)) == 10
    assert all(re.fullmatch(r"\d{8}", code) for code in codes)


def test_enabling_two_factor_gives_an_otpauth_uri_for_the_secret(two_factor, user):
    parsed = pyotp.parse_uri(two_factor["otpauthUri"])
    assert parsed.secret == two_factor["secret"]
    assert parsed.name == user.email
    assert parsed.issuer == "SmartCV"


def test_backup_codes_are_stored_hashed(two_factor, user):
    stored = db.session.scalars(
        sa.select(BackupCode.code_hash).where(BackupCode.user_id == user.id)
    )
    stored = set(stored)
    assert len(stored) == 10
    assert not stored & set(two_factor["backupCodes"])


def test_totp_secret_is_stored_encrypted(two_factor, user):
    encrypted = stored_user(user).totp_secret_encrypted
    assert encrypted and two_factor["secret"] not in encrypted


def test_account_shows_no_second_factor_secrets(auth_client, two_factor):
    text = auth_client.get("/api/account").get_data(as_text=True)
    assert two_factor["secret"] not in text
    assert two_factor["backupCodes"][0] not in text


def test_enabling_two_factor_twice_returns_no_codes(auth_client, two_factor):
    response = security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    assert response.status_code == 200
    assert response.json["data"] == {"passwordUpdated": False, "twoFactorEnabled": True}


def test_enabling_two_factor_twice_keeps_the_first_codes(auth_client, app, user, two_factor):
    security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    code = two_factor["backupCodes"][0]
    assert login(app.test_client(), user.email, code=code).status_code == 200


def test_enabling_two_factor_ends_other_sessions(app, auth_client, user):
    other = app.test_client()
    login(other, user.email)
    security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    assert other.get("/api/account").status_code == 401
    assert auth_client.get("/api/account").status_code == 200


def test_password_change_and_two_factor_together(auth_client):
    response = security(
        auth_client,
        currentPassword=PASSWORD,
        newPassword=NEW_PASSWORD,
        confirmPassword=NEW_PASSWORD,
        twoFactorEnabled=True,
    )
    data = response.json["data"]
    assert data["passwordUpdated"] is True
    assert data["twoFactorEnabled"] is True
    assert len(data["backupCodes"]) == 10


@pytest.mark.parametrize("value", ["yes", 1, "true", None])
def test_two_factor_flag_must_be_a_boolean(auth_client, value, assert_error):
    response = security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=value)
    assert_error(response, 400, "VALIDATION_ERROR", field="twoFactorEnabled")


# --- turning two-factor authentication off ----------------------------------------------------


def disable(client, two_factor=None):
    """Turn two-factor authentication off through the API (with a backup code when it is on)."""
    fields = {"twoFactorCode": two_factor["backupCodes"][-1]} if two_factor else {}
    return security(client, currentPassword=PASSWORD, twoFactorEnabled=False, **fields)


def test_disabling_two_factor_answers_it_is_off(auth_client, two_factor):
    response = disable(auth_client, two_factor)
    assert response.status_code == 200
    assert response.json["data"] == {"passwordUpdated": False, "twoFactorEnabled": False}


def test_disabling_two_factor_lets_login_go_without_a_code(auth_client, app, user, two_factor):
    disable(auth_client, two_factor)
    assert login(app.test_client(), user.email).status_code == 200


def test_disabling_two_factor_deletes_secret_and_codes(auth_client, user, two_factor):
    disable(auth_client, two_factor)
    stored = stored_user(user)
    assert stored.totp_secret_encrypted is None
    assert (
        db.session.scalar(
            sa.select(sa.func.count()).select_from(BackupCode).where(BackupCode.user_id == user.id)
        )
        == 0
    )


def test_old_backup_code_does_not_work_after_re_enabling(auth_client, app, user, two_factor):
    disable(auth_client, two_factor)
    security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    code = two_factor["backupCodes"][0]
    response = login(app.test_client(), user.email, code=code)
    assert response.json["code"] == "INVALID_TWO_FACTOR_CODE"


def test_re_enabling_two_factor_makes_a_new_secret(auth_client, two_factor):
    disable(auth_client, two_factor)
    again = security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True).json["data"]
    assert again["secret"] != two_factor["secret"]
    assert set(again["backupCodes"]).isdisjoint(two_factor["backupCodes"])


def test_disabling_two_factor_when_off_changes_nothing(auth_client):
    response = disable(auth_client)
    assert response.status_code == 200
    assert response.json["data"] == {"passwordUpdated": False, "twoFactorEnabled": False}


def test_security_request_that_changes_nothing_keeps_updated_at(
    auth_client, two_factor, frozen_clock
):
    before = auth_client.get("/api/account").json["data"]["updatedAt"]
    clock.freeze(frozen_clock + timedelta(hours=1))
    security(auth_client, currentPassword=PASSWORD, twoFactorEnabled=True)
    assert auth_client.get("/api/account").json["data"]["updatedAt"] == before


def test_password_change_moves_updated_at(auth_client, frozen_clock):
    clock.freeze(frozen_clock + timedelta(hours=1))
    change_password(auth_client)
    assert auth_client.get("/api/account").json["data"]["updatedAt"] == "2025-01-01T01:00:00Z"
