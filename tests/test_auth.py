"""Sign-up, sign-in, sign-out, the session cookie and the second factor at login."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

import pyotp
import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.config import load_config
from smartcv_account.extensions import db

from .factories import PASSWORD, UserFactory
from .helpers import STRONG, login, register

COOKIE = "smartcv_session"


def session_cookie(response) -> str:
    """Return the Set-Cookie header the response sets for the session cookie."""
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE + "=")]
    assert len(headers) == 1, response.headers
    return headers[0]


# --- register ---------------------------------------------------------------------------------


def test_register_answers_201_with_the_account(client):
    response = register(client)
    assert response.status_code == 201
    assert response.json["success"] is True
    assert response.json["data"]["email"] == "new@example.com"
    assert response.json["data"]["name"] == "Zhang San"


def test_register_starts_a_session(client):
    register(client)
    assert client.get("/api/account").status_code == 200


def test_register_never_returns_the_password(client):
    data = register(client).json["data"]
    assert "password" not in data
    assert STRONG not in str(data)


def test_register_trims_and_lower_cases_the_email(client):
    response = register(client, email="  Zhang.San@Example.COM ")
    assert response.json["data"]["email"] == "zhang.san@example.com"


def test_register_then_login_with_differently_cased_email(client, app):
    register(client, email=" A@X.com ")
    response = login(app.test_client(), "a@x.com", STRONG)
    assert response.status_code == 200


def test_register_trims_the_name(client):
    assert register(client, name="  Li Si  ").json["data"]["name"] == "Li Si"


def test_register_refuses_a_taken_email(client, user, assert_error):
    response = register(client, email=user.email)
    assert_error(response, 409, "EMAIL_TAKEN", field="email")


def test_register_refuses_a_taken_email_in_other_case(client, user, assert_error):
    response = register(client, email=f"  {user.email.upper()}  ")
    assert_error(response, 409, "EMAIL_TAKEN", field="email")


@pytest.mark.parametrize(
    "email", ["not-an-email", "a@", "@example.com", "a b@example.com", "", "   "]
)
def test_register_refuses_invalid_email_syntax(client, email, assert_error):
    response = register(client, email=email)
    assert_error(response, 400, "VALIDATION_ERROR", field="email")


def test_register_refuses_an_email_over_254_characters(client, assert_error):
    response = register(client, email="a" * 64 + "@" + "b" * 186 + ".com")
    assert_error(response, 400, "VALIDATION_ERROR", field="email")


@pytest.mark.parametrize("missing", ["email", "password", "name"])
def test_register_requires_each_field(client, missing, assert_error):
    body = {"email": "new@example.com", "password": STRONG, "name": "N"}
    del body[missing]
    response = client.post("/api/auth/register", json=body)
    assert_error(response, 400, "VALIDATION_ERROR", field=missing)


@pytest.mark.parametrize("name", ["", "   ", "x" * 101])
def test_register_refuses_a_name_outside_1_to_100_characters(client, name, assert_error):
    response = register(client, name=name)
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


def test_register_refuses_a_7_character_password_as_weak(client, assert_error):
    response = register(client, password="Xk9#qLm")
    assert_error(response, 422, "WEAK_PASSWORD", field="password")


def test_register_refuses_a_long_but_guessable_password_with_feedback(client, assert_error):
    body = assert_error(register(client, password="password1234"), 422, "WEAK_PASSWORD")
    assert body["details"]["field"] == "password"
    assert body["details"]["feedback"]["warning"]
    assert isinstance(body["details"]["feedback"]["suggestions"], list)


def test_register_refuses_a_password_made_of_the_email(client, assert_error):
    response = register(client, email="quintessa.marlowe@example.com", password="quintessa.marlowe")
    assert_error(response, 422, "WEAK_PASSWORD", field="password")


def test_register_refuses_a_129_character_password(client, assert_error):
    response = register(client, password=(STRONG + " ") * 3 + "x" * 9)
    assert_error(response, 400, "VALIDATION_ERROR", field="password")


def test_register_accepts_a_128_character_password(client, app):
    password = (STRONG + " ") * 3 + "x" * 8
    assert len(password) == 128
    assert register(client, password=password).status_code == 201
    assert login(app.test_client(), "new@example.com", password).status_code == 200


def test_register_refuses_non_string_fields(client, assert_error):
    response = client.post(
        "/api/auth/register", json={"email": "new@example.com", "password": STRONG, "name": 7}
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


def test_register_refuses_unknown_fields(client, assert_error):
    response = client.post(
        "/api/auth/register",
        json={"email": "n@example.com", "password": STRONG, "name": "N", "isAdmin": True},
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="isAdmin")


def test_register_refuses_a_nul_character_in_the_name(client, assert_error):
    response = register(client, name="Zhang\x00San")
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


def test_register_refuses_an_unpaired_surrogate_in_the_name(client, assert_error):
    response = client.post(
        "/api/auth/register",
        # json.dumps escapes the lone surrogate as \ud800, which json.loads accepts.
        data=json.dumps({"email": "n@example.com", "password": STRONG, "name": "a\ud800"}),
        content_type="application/json",
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="name")


# --- passwords longer than bcrypt's 72 bytes --------------------------------------------------

LONG_PREFIX = "orchid-Vortex-31-gravel-Pelican-84-saffron-Quill-07-tundra-Marble-55-zzq"


def test_password_variants_differing_only_after_72_bytes_do_not_match(client, app):
    assert len(LONG_PREFIX.encode()) == 72
    assert register(client, password=LONG_PREFIX + "A").status_code == 201
    response = login(app.test_client(), "new@example.com", LONG_PREFIX + "B")
    assert response.status_code == 401


def test_password_longer_than_72_bytes_logs_in_with_itself(client, app):
    register(client, password=LONG_PREFIX + "A")
    assert login(app.test_client(), "new@example.com", LONG_PREFIX + "A").status_code == 200


# --- login ------------------------------------------------------------------------------------


def test_login_answers_200_with_the_account(client, user):
    response = login(client, user.email)
    assert response.status_code == 200
    assert response.json["success"] is True
    assert response.json["data"]["id"] == user.public_id


def test_login_is_case_and_whitespace_insensitive_on_email(client, user):
    assert login(client, f"  {user.email.upper()} ").status_code == 200


def test_login_records_last_login_at(client, user, frozen_clock):
    response = login(client, user.email)
    assert response.json["data"]["lastLoginAt"] == "2025-01-01T00:00:00Z"


def test_login_with_wrong_password_is_invalid_credentials(client, user, assert_error):
    assert_error(login(client, user.email, "wrong password here"), 401, "INVALID_CREDENTIALS")


def test_login_with_unknown_email_is_invalid_credentials(client, assert_error):
    response = login(client, "nobody@example.com")
    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_login_answers_unknown_email_and_wrong_password_identically(client, user):
    unknown = login(client, "nobody@example.com")
    wrong = login(client, user.email, "wrong password here")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.get_data() == wrong.get_data()


def test_failed_login_sets_no_session_cookie(client, user):
    response = login(client, user.email, "wrong password here")
    assert not [h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE)]
    assert client.get("/api/account").status_code == 401


@pytest.mark.parametrize("missing", ["email", "password"])
def test_login_requires_email_and_password(client, missing, assert_error):
    body = {"email": "a@example.com", "password": PASSWORD}
    del body[missing]
    response = client.post("/api/auth/login", json=body)
    assert_error(response, 400, "VALIDATION_ERROR", field=missing)


def test_login_refuses_a_nul_character_in_the_email(client, assert_error):
    response = login(client, "a\x00@example.com")
    assert_error(response, 400, "VALIDATION_ERROR", field="email")


def test_login_refuses_an_unpaired_surrogate_in_the_password(client, user, assert_error):
    response = client.post(
        "/api/auth/login",
        data=json.dumps({"email": user.email, "password": "abc\udc80defgh"}),
        content_type="application/json",
    )
    assert_error(response, 400, "VALIDATION_ERROR", field="password")


# --- logout -----------------------------------------------------------------------------------


def test_logout_answers_success_without_data(auth_client):
    response = auth_client.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json == {"success": True}


def test_logout_needs_no_body_and_no_content_type(auth_client):
    response = auth_client.post("/api/auth/logout")
    assert response.request.headers.get("Content-Type") is None
    assert response.status_code == 200


def test_logout_ends_the_session(auth_client):
    auth_client.post("/api/auth/logout")
    assert auth_client.get("/api/account").status_code == 401


def test_logout_deletes_the_cookie(auth_client):
    auth_client.post("/api/auth/logout")
    assert auth_client.get_cookie(COOKIE) is None


def test_replayed_cookie_after_logout_is_unauthorized(auth_client, assert_error):
    stolen = auth_client.get_cookie(COOKIE).value
    auth_client.post("/api/auth/logout")
    auth_client.set_cookie(COOKIE, stolen)
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_logout_keeps_the_users_other_sessions(app, user, auth_client):
    other = app.test_client()
    login(other, user.email)
    auth_client.post("/api/auth/logout")
    assert other.get("/api/account").status_code == 200


def test_signing_in_again_ends_the_previous_session(app, user, auth_client, assert_error):
    previous = auth_client.get_cookie(COOKIE).value
    login(auth_client, user.email)
    copy = app.test_client()
    copy.set_cookie(COOKIE, previous)
    assert_error(copy.get("/api/account"), 401, "UNAUTHORIZED")
    assert auth_client.get("/api/account").status_code == 200


def test_cookie_lives_as_long_as_the_server_side_session(app, user):
    client = app.test_client()
    response = login(client, user.email)
    cookie = next(h for h in response.headers.getlist("Set-Cookie") if h.startswith(COOKIE))
    expires = parsedate_to_datetime(cookie.split("Expires=", 1)[1].split(";", 1)[0])
    lifetime = expires - datetime.now(UTC)
    days = app.config["SESSION_LIFETIME_DAYS"]
    assert timedelta(days=days) - timedelta(minutes=5) < lifetime <= timedelta(days=days)


def test_logout_without_a_session_still_succeeds(client):
    response = client.post("/api/auth/logout")
    assert response.status_code == 200
    assert response.json == {"success": True}


# --- the session cookie -----------------------------------------------------------------------


def test_session_cookie_is_httponly(client, user):
    assert "HttpOnly" in session_cookie(login(client, user.email))


def test_session_cookie_is_samesite_lax(client, user):
    assert "SameSite=Lax" in session_cookie(login(client, user.email))


def test_session_cookie_is_secure_in_the_test_configuration(client, user):
    assert "Secure" in session_cookie(login(client, user.email)).split("; ")


def test_session_cookie_is_secure_by_default(monkeypatch, tmp_path):
    monkeypatch.delenv("SESSION_COOKIE_SECURE", raising=False)
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is True


def test_session_cookie_secure_flag_is_turned_off_by_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("SESSION_COOKIE_SECURE", "0")
    assert load_config(tmp_path)["SESSION_COOKIE_SECURE"] is False


def test_session_cookie_has_no_secure_flag_when_configured_off(app_factory):
    insecure = app_factory(SESSION_COOKIE_SECURE=False)
    with insecure.app_context():
        email = UserFactory().email
    header = session_cookie(login(insecure.test_client(), email))
    assert "Secure" not in header.split("; ")
    assert "HttpOnly" in header and "SameSite=Lax" in header


def test_register_cookie_has_the_same_flags(client):
    header = session_cookie(register(client)).split("; ")
    assert {"Secure", "HttpOnly", "SameSite=Lax"} <= set(header)


def test_tampered_cookie_is_unauthorized(auth_client, assert_error):
    value = auth_client.get_cookie(COOKIE).value
    tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    auth_client.set_cookie(COOKIE, tampered)
    assert_error(auth_client.get("/api/account"), 401, "UNAUTHORIZED")


def test_cookie_with_an_unknown_session_token_is_unauthorized(client, assert_error):
    # The cookie is the token: one that names no live session is worth nothing.
    client.set_cookie(COOKIE, secrets.token_urlsafe(32))
    assert_error(client.get("/api/account"), 401, "UNAUTHORIZED")


def test_an_overlong_cookie_is_unauthorized(client, assert_error):
    client.set_cookie(COOKIE, "x" * 4000)
    assert_error(client.get("/api/account"), 401, "UNAUTHORIZED")


def test_the_cookie_holds_only_the_random_token(app, client, user):
    from smartcv_account.models import AuthSession
    from smartcv_account.principal import token_hash

    login(client, user.email)
    token = client.get_cookie(COOKIE).value
    assert len(token) == 43  # 256 random bits, base64url; no signature, no payload
    stored = db.session.scalar(
        sa.select(AuthSession.token_hash).where(AuthSession.user_id == user.id)
    )
    assert stored == token_hash(token) != token


def test_login_replaces_the_cookie_held_before_sign_in(app, client, user, assert_error):
    login(client, user.email)
    before = client.get_cookie(COOKIE).value
    login(client, user.email)
    assert client.get_cookie(COOKIE).value != before
    copy = app.test_client()
    copy.set_cookie(COOKIE, before)
    assert_error(copy.get("/api/account"), 401, "UNAUTHORIZED")


def test_no_signed_flask_session_cookie_is_ever_set(client, user):
    response = login(client, user.email)
    assert response.headers.getlist("Set-Cookie") == [session_cookie(response)]
    assert client.post("/api/auth/logout").headers["Set-Cookie"].startswith(f"{COOKIE}=;")


def test_each_login_gets_a_different_session_cookie(app, user):
    first, second = app.test_client(), app.test_client()
    login(first, user.email)
    login(second, user.email)
    assert first.get_cookie(COOKIE).value != second.get_cookie(COOKIE).value


def test_session_expires_after_its_lifetime(app, user, frozen_clock, assert_error):
    client = app.test_client()
    login(client, user.email)
    clock.freeze(frozen_clock + timedelta(days=app.config["SESSION_LIFETIME_DAYS"], seconds=1))
    assert_error(client.get("/api/account"), 401, "UNAUTHORIZED")


def test_session_is_valid_just_before_its_lifetime_ends(app, user, frozen_clock):
    client = app.test_client()
    login(client, user.email)
    clock.freeze(frozen_clock + timedelta(days=app.config["SESSION_LIFETIME_DAYS"], seconds=-1))
    assert client.get("/api/account").status_code == 200


# --- the second factor at login ---------------------------------------------------------------


def totp_at(secret: str, moment, steps: int = 0) -> str:
    """Return the TOTP code of `moment` shifted by `steps` 30-second steps."""
    return pyotp.TOTP(secret).at(moment + timedelta(seconds=30 * steps))


def test_two_factor_login_without_code_is_two_factor_required(
    client, user, two_factor, assert_error
):
    response = login(client, user.email)
    assert_error(response, 401, "TWO_FACTOR_REQUIRED", field="twoFactorCode")


def test_two_factor_login_with_wrong_password_is_invalid_credentials(
    client, user, two_factor, assert_error
):
    assert_error(login(client, user.email, "wrong password here"), 401, "INVALID_CREDENTIALS")


def test_two_factor_wrong_password_with_valid_code_is_invalid_credentials(
    client, user, two_factor, frozen_clock, assert_error
):
    code = totp_at(two_factor["secret"], frozen_clock)
    response = login(client, user.email, "wrong password here", code)
    assert_error(response, 401, "INVALID_CREDENTIALS")


def test_two_factor_login_with_wrong_code_is_invalid_two_factor_code(
    client, user, two_factor, frozen_clock, assert_error
):
    wrong = f"{(int(totp_at(two_factor['secret'], frozen_clock)) + 1) % 10**6:06d}"
    response = login(client, user.email, code=wrong)
    assert_error(response, 401, "INVALID_TWO_FACTOR_CODE", field="twoFactorCode")


@pytest.mark.parametrize("code", ["abcdef", "12345", "1234567", "123456789", "12 34 56"])
def test_two_factor_login_with_malformed_code_is_invalid_two_factor_code(
    client, user, two_factor, code, assert_error
):
    assert_error(login(client, user.email, code=code), 401, "INVALID_TWO_FACTOR_CODE")


def test_two_factor_login_with_current_code_succeeds(client, user, two_factor, frozen_clock):
    response = login(client, user.email, code=totp_at(two_factor["secret"], frozen_clock))
    assert response.status_code == 200


def test_two_factor_code_with_surrounding_spaces_is_accepted(
    client, user, two_factor, frozen_clock
):
    code = totp_at(two_factor["secret"], frozen_clock)
    assert login(client, user.email, code=f" {code} ").status_code == 200


def test_two_factor_accepts_the_previous_steps_code(client, user, two_factor, frozen_clock):
    code = totp_at(two_factor["secret"], frozen_clock, steps=-1)
    assert login(client, user.email, code=code).status_code == 200


def test_two_factor_accepts_the_next_steps_code(client, user, two_factor, frozen_clock):
    code = totp_at(two_factor["secret"], frozen_clock, steps=1)
    assert login(client, user.email, code=code).status_code == 200


@pytest.mark.parametrize("steps", [-2, 2])
def test_two_factor_refuses_a_code_two_steps_away(
    client, user, two_factor, frozen_clock, steps, assert_error
):
    code = totp_at(two_factor["secret"], frozen_clock, steps=steps)
    assert_error(login(client, user.email, code=code), 401, "INVALID_TWO_FACTOR_CODE")


def test_two_factor_code_cannot_be_replayed(app, user, two_factor, frozen_clock, assert_error):
    code = totp_at(two_factor["secret"], frozen_clock)
    assert login(app.test_client(), user.email, code=code).status_code == 200
    replay = login(app.test_client(), user.email, code=code)
    assert_error(replay, 401, "INVALID_TWO_FACTOR_CODE")


def test_two_factor_code_older_than_an_accepted_one_is_refused(
    app, user, two_factor, frozen_clock, assert_error
):
    newer = totp_at(two_factor["secret"], frozen_clock, steps=1)
    older = totp_at(two_factor["secret"], frozen_clock)
    assert login(app.test_client(), user.email, code=newer).status_code == 200
    assert_error(login(app.test_client(), user.email, code=older), 401, "INVALID_TWO_FACTOR_CODE")


def test_two_factor_next_steps_code_works_after_the_clock_moves(
    app, user, two_factor, frozen_clock
):
    login(app.test_client(), user.email, code=totp_at(two_factor["secret"], frozen_clock))
    later = frozen_clock + timedelta(seconds=30)
    clock.freeze(later)
    code = totp_at(two_factor["secret"], later)
    assert login(app.test_client(), user.email, code=code).status_code == 200


def test_backup_code_signs_in(client, user, two_factor):
    assert login(client, user.email, code=two_factor["backupCodes"][0]).status_code == 200


def test_backup_code_works_only_once(app, user, two_factor, assert_error):
    code = two_factor["backupCodes"][0]
    assert login(app.test_client(), user.email, code=code).status_code == 200
    assert_error(login(app.test_client(), user.email, code=code), 401, "INVALID_TWO_FACTOR_CODE")


def test_using_one_backup_code_leaves_the_others_usable(app, user, two_factor):
    login(app.test_client(), user.email, code=two_factor["backupCodes"][0])
    response = login(app.test_client(), user.email, code=two_factor["backupCodes"][1])
    assert response.status_code == 200


def test_unknown_backup_code_is_refused(client, user, two_factor, assert_error):
    unused = next(f"{n:08d}" for n in range(10**8) if f"{n:08d}" not in two_factor["backupCodes"])
    assert_error(login(client, user.email, code=unused), 401, "INVALID_TWO_FACTOR_CODE")


def test_two_factor_code_is_ignored_when_two_factor_is_off(client, user):
    assert login(client, user.email, code="123456").status_code == 200


def test_session_check_reads_aware_utc_times_and_booleans(app, auth_client, user):
    from smartcv_account import principal
    from smartcv_account.principal import Principal

    token = auth_client.get_cookie(COOKIE).value
    found = principal.load(token, clock.now())
    assert isinstance(found, Principal) and found.id == user.id
    assert found.created_at.tzinfo is not None and found.created_at.utcoffset() == timedelta(0)
    assert found.two_factor_enabled is False and found.email_notifications is True
    assert found.current_subscription is None
    assert principal.load(token, clock.now() + timedelta(days=365)) is None  # expired by then


def test_session_check_has_no_secret_columns():
    from smartcv_account.principal import LIVE_SESSION

    selected = {column.key for column in LIVE_SESSION.selected_columns}
    assert not selected & {"password_hash", "totp_secret_encrypted", "sub_client_secret"}


def test_a_database_failure_in_the_session_check_is_an_sqlalchemy_error(app, auth_client):
    from smartcv_account.extensions import db
    from smartcv_account.principal import SessionCheck

    check = SessionCheck(db.engine)
    check.statement.sql = "SELECT no_such_column FROM auth_sessions"
    with pytest.raises(sa.exc.DBAPIError):
        check.run({"token_hash": "x", "now": clock.now()})
