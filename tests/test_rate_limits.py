"""Rate limits on login and register: per email, per client address, and stored in Redis."""

from __future__ import annotations

import pytest

from .factories import PASSWORD, UserFactory
from .helpers import login, register

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def limited_app(app_factory):
    """An app with rate limits on and a fresh in-memory counter store."""
    return app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI="memory://")


@pytest.fixture
def member(limited_app) -> str:
    """The email of a saved user of `limited_app` whose password is PASSWORD."""
    with limited_app.app_context():
        return UserFactory().email


def fail_logins(client, email, times, **kwargs):
    """Send `times` logins with a wrong password; return the last response."""
    response = None
    for _ in range(times):
        response = login(client, email, "wrong password here", **kwargs)
    return response


# --- failed logins per email ------------------------------------------------------------------


def test_ten_failed_logins_are_each_answered(limited_app, member):
    response = fail_logins(limited_app.test_client(), member, 10)
    assert response.json["code"] == "INVALID_CREDENTIALS"


def test_eleventh_failed_login_for_an_email_is_rate_limited(limited_app, member, assert_error):
    client = limited_app.test_client()
    fail_logins(client, member, 10)
    response = login(client, member, "wrong password here")
    assert_error(response, 429, "RATE_LIMITED")


def test_rate_limited_answer_carries_retry_after_in_seconds(limited_app, member):
    client = limited_app.test_client()
    fail_logins(client, member, 11)
    response = login(client, member, "wrong password here")
    retry_after = response.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 0 < int(retry_after) <= 15 * 60


def test_rate_limited_answer_says_how_long_to_wait_in_its_body(limited_app, member):
    client = limited_app.test_client()
    fail_logins(client, member, 11)
    response = login(client, member, "wrong password here")
    seconds = response.json["details"]["retryAfter"]
    # Flask-Limiter rewrites the header a moment later: a second boundary may fall between.
    assert 0 <= seconds - int(response.headers["Retry-After"]) <= 1
    assert f"try again in {seconds} second" in response.json["error"]


def test_rate_limited_email_refuses_even_the_right_password(limited_app, member, assert_error):
    client = limited_app.test_client()
    fail_logins(client, member, 10)
    assert_error(login(client, member), 429, "RATE_LIMITED")


def test_failures_from_many_addresses_count_for_one_email(limited_app, member, assert_error):
    client = limited_app.test_client()
    for n in range(10):
        login(client, member, "wrong password here", address=f"10.0.1.{n}")
    response = login(client, member, "wrong password here", address="10.0.2.1")
    assert_error(response, 429, "RATE_LIMITED")


def test_email_case_and_spaces_do_not_escape_the_limit(limited_app, member, assert_error):
    client = limited_app.test_client()
    for n in range(10):
        variant = f"  {member.upper()} " if n % 2 else member
        login(client, variant, "wrong password here")
    assert_error(login(client, member), 429, "RATE_LIMITED")


def test_unknown_email_failures_are_limited_too(limited_app, assert_error):
    client = limited_app.test_client()
    fail_logins(client, "nobody@example.com", 10)
    response = login(client, "nobody@example.com", "wrong password here")
    assert_error(response, 429, "RATE_LIMITED")


def test_failures_for_one_email_leave_another_email_alone(limited_app, member):
    client = limited_app.test_client()
    fail_logins(client, "nobody@example.com", 11)
    assert login(client, member).status_code == 200


def test_successful_logins_do_not_count_as_failures(limited_app, member):
    client = limited_app.test_client()
    for _ in range(12):
        assert login(client, member).status_code == 200
    assert fail_logins(client, member, 10).json["code"] == "INVALID_CREDENTIALS"


def test_two_factor_prompt_does_not_count_as_a_failure(limited_app, member):
    client = limited_app.test_client()
    login(client, member)
    client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    for _ in range(12):
        assert login(client, member).json["code"] == "TWO_FACTOR_REQUIRED"
    assert login(client, member, "wrong password here").json["code"] == "INVALID_CREDENTIALS"


def test_wrong_two_factor_codes_count_as_failures(limited_app, member, assert_error):
    client = limited_app.test_client()
    login(client, member)
    client.put(
        "/api/account/security", json={"currentPassword": PASSWORD, "twoFactorEnabled": True}
    )
    for _ in range(10):
        login(client, member, code="00000000")
    assert_error(login(client, member, code="00000000"), 429, "RATE_LIMITED")


def test_rate_limits_are_off_when_disabled(client, user):
    response = fail_logins(client, user.email, 15)
    assert response.json["code"] == "INVALID_CREDENTIALS"


# --- per client address -----------------------------------------------------------------------


def test_logins_per_address_are_limited(app_factory, assert_error):
    limited = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ADDRESS="3 per minute")
    client = limited.test_client()
    for n in range(3):
        login(client, f"someone{n}@example.com", "wrong password here")
    response = login(client, "someone9@example.com", "wrong password here")
    assert_error(response, 429, "RATE_LIMITED")
    assert response.headers["Retry-After"].isdigit()


def test_address_limit_leaves_other_addresses_alone(app_factory):
    limited = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_LOGIN_PER_ADDRESS="3 per minute")
    client = limited.test_client()
    for n in range(4):
        login(client, f"someone{n}@example.com", "wrong password here")
    response = login(client, "other@example.com", "wrong password here", address="10.9.9.9")
    assert response.json["code"] == "INVALID_CREDENTIALS"


def test_registrations_per_address_are_limited(limited_app, assert_error):
    client = limited_app.test_client()
    for n in range(10):
        assert register(client, f"new{n}@example.com").status_code == 201
    assert_error(register(client, "new10@example.com"), 429, "RATE_LIMITED")


def test_registrations_per_email_are_limited(limited_app, assert_error):
    client = limited_app.test_client()
    for n in range(5):
        register(client, "same@example.com", address=f"10.0.3.{n}")
    response = register(client, "SAME@example.com", address="10.0.3.9")
    assert_error(response, 429, "RATE_LIMITED")


# --- shared counters in Redis -----------------------------------------------------------------


@pytest.fixture
def redis_db():
    """Database 15 of the local Redis, emptied before and after; skip when unreachable."""
    redis = pytest.importorskip("redis")
    connection = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        connection.ping()
    except redis.RedisError as error:
        reason = f"Redis at {REDIS_URL} is unreachable ({error}); the shared-storage test needs it"
        print(reason)
        pytest.skip(reason)
    connection.flushdb()
    yield connection
    connection.flushdb()
    connection.close()


def test_failed_logins_are_counted_in_redis(app_factory, redis_db, assert_error):
    limited = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
    client = limited.test_client()
    fail_logins(client, "victim@example.com", 10)
    assert redis_db.keys("*")
    response = login(client, "victim@example.com", "wrong password here")
    assert_error(response, 429, "RATE_LIMITED")


def test_redis_counters_are_shared_by_another_instance(app_factory, redis_db, assert_error):
    first = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
    fail_logins(first.test_client(), "victim@example.com", 10)
    # A second app (another worker or instance) starts with no memory of its own.
    second = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
    response = login(second.test_client(), "victim@example.com", "wrong password here")
    assert_error(response, 429, "RATE_LIMITED")


def test_redis_keys_do_not_hold_email_addresses(app_factory, redis_db):
    limited = app_factory(RATELIMIT_ENABLED=True, RATELIMIT_STORAGE_URI=REDIS_URL)
    fail_logins(limited.test_client(), "victim@example.com", 3)
    keys = [key.decode() for key in redis_db.keys("*")]
    assert keys
    assert not [key for key in keys if "victim" in key]


# --- guessing the current password with a stolen session ---------------------------------------


def test_current_password_guesses_are_limited_per_user(limited_app, member, assert_error):
    client = limited_app.test_client()
    login(client, member)
    for _ in range(10):
        response = client.put("/api/account/security", json={"currentPassword": "not it at all"})
        assert response.json["code"] == "INVALID_PASSWORD"
    response = client.put("/api/account/security", json={"currentPassword": PASSWORD})
    assert_error(response, 429, "RATE_LIMITED")
    assert 0 < int(response.headers["Retry-After"]) <= 900


def test_successful_security_changes_do_not_count_as_guesses(limited_app, member):
    client = limited_app.test_client()
    login(client, member)
    for _ in range(12):
        response = client.put("/api/account/security", json={"currentPassword": PASSWORD})
        assert response.status_code == 200


def test_retry_after_is_the_time_left_in_the_breached_window(limited_app, member):
    limited_app.config["RATELIMIT_LOGIN_PER_ADDRESS"] = "2 per minute"
    client = limited_app.test_client()
    for _ in range(2):
        login(client, member)
    response = login(client, member)
    assert response.status_code == 429
    assert 0 < int(response.headers["Retry-After"]) <= 60


# --- client addresses behind a proxy ------------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(limited_app, member):
    limited_app.config["RATELIMIT_LOGIN_PER_ADDRESS"] = "2 per minute"
    client = limited_app.test_client()
    for index in range(2):
        login(client, member, address="10.0.0.9", headers={"X-Forwarded-For": f"1.1.1.{index}"})
    assert login(client, member, address="10.0.0.9").status_code == 429


def test_trusted_proxy_passes_the_client_address_to_the_limits(app_factory):
    proxied = app_factory(
        RATELIMIT_ENABLED=True,
        RATELIMIT_STORAGE_URI="memory://",
        RATELIMIT_LOGIN_PER_ADDRESS="2 per minute",
        TRUSTED_PROXIES=1,
    )
    with proxied.app_context():
        email = UserFactory().email
    client = proxied.test_client()
    for _ in range(2):
        login(client, email, address="10.0.0.9", headers={"X-Forwarded-For": "1.1.1.1"})
    other = login(client, email, address="10.0.0.9", headers={"X-Forwarded-For": "2.2.2.2"})
    assert other.status_code == 200
