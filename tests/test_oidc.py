"""Social sign-in (OpenID Connect) against a real provider on loopback (tests/oidc_provider.py).

Each test drives the flow a browser follows: the service's start redirects to the provider,
the provider's authorization endpoint sends the browser back to the callback with a code,
the callback exchanges it (client secret, PKCE verifier) and verifies the ID token against the
provider's JWKS, then redirects to the front end.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import parse_qs, quote, urlsplit

import pyotp
import pytest
import requests
import sqlalchemy as sa
from flask.testing import FlaskClient

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import LinkedIdentity, OutboxMessage, User
from smartcv_account.services.second_factor import enable_two_factor
from smartcv_account.services.social_sign_in import PENDING_COOKIE, PENDING_COOKIE_PATH

from .factories import UserFactory
from .helpers import login
from .lifecycle_helpers import event_types, events
from .oidc_provider import CLIENT_ID, CLIENT_SECRET, FAULTS, Provider, running_provider
from .signin_helpers import passwordless_user, session_client

BASE = "https://app.example"


@pytest.fixture
def provider() -> Iterator[Provider]:
    with running_provider() as running:
        yield running


def provider_config(provider: Provider, **overrides) -> dict:
    return {
        "APP_BASE_URL": BASE,
        "OIDC_PROVIDERS": "idp",
        "OIDC_IDP_ISSUER": provider.issuer,
        "OIDC_IDP_CLIENT_ID": CLIENT_ID,
        "OIDC_IDP_CLIENT_SECRET": CLIENT_SECRET,
        "OIDC_IDP_DISPLAY_NAME": "Test Identity",
        **overrides,
    }


@pytest.fixture
def app(app_factory, provider):
    application = app_factory(**provider_config(provider))
    with application.app_context():
        yield application
        db.session.remove()


def start(client: FlaskClient, query: str = "returnTo=/dashboard"):
    response = client.get(f"/api/auth/oidc/idp/start?{query}")
    assert response.status_code == 302, response.get_json()
    return response


def at_provider(location: str) -> str:
    """Follow the redirect to the provider; return where it sends the browser back."""
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def callback(client: FlaskClient, back: str):
    parts = urlsplit(back)
    return client.get(f"{parts.path}?{parts.query}")


def sign_in_with_provider(client: FlaskClient, query: str = "returnTo=/dashboard"):
    """The whole round trip; the callback's answer."""
    return callback(client, at_provider(start(client, query).headers["Location"]))


def landed(response) -> tuple[str, dict[str, list[str]]]:
    """Where the callback sent the browser: the path on the front end and its query."""
    assert response.status_code == 302, response.get_json()
    location = response.headers["Location"]
    assert location.startswith(BASE + "/"), location
    parts = urlsplit(location[len(BASE) :])
    return parts.path, parse_qs(parts.query)


def failed_with(response) -> str:
    path, query = landed(response)
    assert path == "/signin", (path, query)
    return query["error"][0]


def test_providers_are_listed(client):
    response = client.get("/api/auth/providers")
    assert response.status_code == 200
    assert response.json["data"] == [{"name": "idp", "displayName": "Test Identity"}]


def test_an_unknown_provider_is_not_found(client, assert_error):
    assert_error(client.get("/api/auth/oidc/nope/start"), 404, "NOT_FOUND")


def test_start_redirects_with_state_nonce_and_pkce_bound_to_the_browser(client, provider):
    response = start(client)
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == provider.issuer + "/authorize"
    query = parse_qs(location.query)
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert len(query["state"][0]) >= 32 and len(query["nonce"][0]) >= 32
    assert query["redirect_uri"] == ["http://localhost/api/auth/oidc/idp/callback"]
    assert "openid" in query["scope"][0].split()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("smartcv_oidc=")
    for attribute in ("HttpOnly", "SameSite=Lax", "Secure", "Path=/api/auth/oidc/"):
        assert attribute in cookie
    # The secrets are signed into the cookie, not readable by the provider or a page.
    assert query["state"][0] not in cookie


def test_a_new_identity_with_a_verified_email_makes_an_account_without_password(
    client, provider, assert_error
):
    response = sign_in_with_provider(client)

    assert landed(response) == ("/dashboard", {})
    account = client.get("/api/account")
    assert account.status_code == 200
    assert account.json["data"]["email"] == "ada@example.com"
    assert account.json["data"]["emailVerified"] is True
    user = db.session.scalar(sa.select(User).where(User.email == "ada@example.com"))
    assert user.password_hash is None
    [identity] = client.get("/api/account/identities").json["data"]
    assert identity["provider"] == "idp" and identity["email"] == "ada@example.com"
    assert identity["id"].startswith("idn_")
    assert "identity_linked" in event_types(client)
    [signed_in] = [e for e in events(client) if e["type"] == "login_succeeded"]
    assert signed_in["details"] == {"method": "oidc:idp"}
    # The code went with the PKCE verifier and the client's secret (the provider checked both).
    assert provider.token_requests[0]["code_verifier"]
    # No password to guess: a password login is refused like an unknown email.
    assert_error(login(client, "ada@example.com", "anything at all"), 401, "INVALID_CREDENTIALS")


def test_a_linked_identity_signs_its_user_in_again(app, client):
    landed(sign_in_with_provider(client))
    again = app.test_client()
    assert landed(sign_in_with_provider(again, "returnTo=/cv/42?tab=1")) == (
        "/cv/42",
        {"tab": ["1"]},
    )
    assert again.get("/api/account").json["data"]["email"] == "ada@example.com"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(User)) == 1


def test_an_email_of_an_existing_account_is_never_linked_silently(client, provider):
    owner = UserFactory(email="ada@example.com")

    assert failed_with(sign_in_with_provider(client)) == "account_exists"

    assert client.get("/api/account").status_code == 401
    assert db.session.scalar(sa.select(LinkedIdentity)) is None
    assert db.session.get(User, owner.id).password_hash is not None


def test_an_email_the_provider_did_not_verify_makes_no_account(client, provider):
    provider.person = {**provider.person, "email_verified": False}
    assert failed_with(sign_in_with_provider(client)) == "email_not_verified"
    assert db.session.scalar(sa.select(User)) is None


def test_a_tampered_state_is_refused(client):
    back = at_provider(start(client).headers["Location"])
    tampered = back.replace("state=", "state=x")
    assert failed_with(callback(client, tampered)) == "state"
    assert client.get("/api/account").status_code == 401


def test_a_callback_in_another_browser_is_refused(app, client):
    back = at_provider(start(client).headers["Location"])
    other = app.test_client()  # no state cookie: the attacker sends the victim his callback
    assert failed_with(callback(other, back)) == "state"
    assert db.session.scalar(sa.select(User)) is None


def test_a_state_older_than_ten_minutes_is_refused(client):
    back = at_provider(start(client).headers["Location"])
    clock.freeze(clock.now() + timedelta(minutes=11))
    assert failed_with(callback(client, back)) == "state"


@pytest.mark.parametrize("fault", FAULTS)
def test_each_kind_of_bad_id_token_is_refused(client, provider, fault):
    provider.fault = fault
    assert failed_with(sign_in_with_provider(client)) == "id_token"
    assert client.get("/api/account").status_code == 401
    assert db.session.scalar(sa.select(User)) is None


def test_the_provider_refusing_is_a_failure(client, provider):
    back = at_provider(start(client).headers["Location"])
    parts = urlsplit(back)
    state = parse_qs(parts.query)["state"][0]
    refused = client.get(f"{parts.path}?error=access_denied&state={state}")
    assert failed_with(refused) == "denied"


@pytest.mark.parametrize(
    "return_to",
    [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example",
        "javascript:alert(1)",
        "evil.example",
        "/\r\nLocation: https://evil.example",
    ],
)
def test_return_to_off_the_front_end_is_ignored(client, return_to):
    response = sign_in_with_provider(client, "returnTo=" + quote(return_to, safe=""))
    path, _ = landed(response)
    assert response.headers["Location"] == BASE + "/"
    assert path == "/"


def test_the_sign_in_redirects_stay_open_to_cross_site_navigations(client):
    navigation = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    started = client.get("/api/auth/oidc/idp/start", headers=navigation)
    assert started.status_code == 302
    back = at_provider(started.headers["Location"])
    parts = urlsplit(back)
    done = client.get(f"{parts.path}?{parts.query}", headers=navigation)
    assert landed(done)[0] == "/"
    # Account data is still refused to such a navigation.
    assert client.get("/api/account", headers=navigation).status_code == 403


# --- two-factor accounts: the callback starts no session -------------------------------------


@pytest.fixture
def two_factor_identity(app, client):
    """An account with a linked identity and two-factor on; returns its TOTP secret."""
    landed(sign_in_with_provider(client))
    user = db.session.scalar(sa.select(User).where(User.email == "ada@example.com"))
    user.password_hash = None
    secret = enable_two_factor(user)["secret"]
    db.session.commit()
    return secret


def test_a_two_factor_account_needs_the_code_after_the_provider(app, two_factor_identity):
    browser = app.test_client()
    path, query = landed(sign_in_with_provider(browser))
    assert (path, query["twoFactor"], query["returnTo"]) == (
        "/signin",
        ["required"],
        ["/dashboard"],
    )
    assert browser.get("/api/account").status_code == 401  # no session yet

    code = pyotp.TOTP(two_factor_identity).now()
    done = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": code})

    assert done.status_code == 200, done.json
    assert done.json["data"]["email"] == "ada@example.com"
    assert browser.get("/api/account").status_code == 200
    signed = [e for e in events(browser) if e["type"] == "login_succeeded"]
    assert signed[0]["details"] == {"method": "oidc:idp"}


def test_a_copy_of_the_second_factor_step_cannot_sign_in_again(
    app, two_factor_identity, assert_error
):
    """The step's cookie names a one-use challenge: once it finished a sign-in, a copy of it
    with a later, valid code starts no second session."""
    browser = app.test_client()
    landed(sign_in_with_provider(browser))
    cookie = browser.get_cookie(PENDING_COOKIE, path=PENDING_COOKIE_PATH)
    assert cookie is not None
    clock.freeze(clock.now())
    code = pyotp.TOTP(two_factor_identity).at(clock.now())
    done = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": code})
    assert done.status_code == 200, done.json

    signed_in = event_types(browser).count("login_succeeded")

    clock.freeze(clock.now() + timedelta(seconds=30))  # the next code: not a replay of one
    copy = app.test_client()
    copy.set_cookie(PENDING_COOKIE, cookie.value, path=PENDING_COOKIE_PATH)
    later = pyotp.TOTP(two_factor_identity).at(clock.now())
    again = copy.post("/api/auth/login/second-factor", json={"twoFactorCode": later})
    assert_error(again, 401, "UNAUTHORIZED")
    assert copy.get("/api/account").status_code == 401
    assert event_types(browser).count("login_succeeded") == signed_in


def test_a_wrong_code_leaves_the_second_factor_step_waiting(app, two_factor_identity, assert_error):
    browser = app.test_client()
    landed(sign_in_with_provider(browser))
    wrong = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": "000000"})
    assert_error(wrong, 401, "INVALID_TWO_FACTOR_CODE")
    code = pyotp.TOTP(two_factor_identity).now()
    done = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": code})
    assert done.status_code == 200, done.json


def test_the_second_factor_step_expires_after_five_minutes(app, two_factor_identity, assert_error):
    browser = app.test_client()
    landed(sign_in_with_provider(browser))
    clock.freeze(clock.now() + timedelta(minutes=5, seconds=1))
    code = pyotp.TOTP(two_factor_identity).at(clock.now())
    late = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": code})
    assert_error(late, 401, "UNAUTHORIZED")


def test_the_second_factor_step_needs_the_first(client, assert_error):
    answer = client.post("/api/auth/login/second-factor", json={"twoFactorCode": "123456"})
    assert_error(answer, 401, "UNAUTHORIZED")


def test_wrong_codes_count_in_the_accounts_guessing_budget(app_factory, provider, assert_error):
    app = app_factory(**provider_config(provider), RATELIMIT_ENABLED=True)
    with app.app_context():
        browser = app.test_client()
        landed(sign_in_with_provider(browser))
        user = db.session.scalar(sa.select(User).where(User.email == "ada@example.com"))
        secret = enable_two_factor(user)["secret"]
        user.password_hash = None
        db.session.commit()
        browser = app.test_client()
        landed(sign_in_with_provider(browser))
        for _ in range(10):
            wrong = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": "000000"})
            assert_error(wrong, 401, "INVALID_TWO_FACTOR_CODE")
        right = pyotp.TOTP(secret).now()
        refused = browser.post("/api/auth/login/second-factor", json={"twoFactorCode": right})
        assert_error(refused, 429, "RATE_LIMITED")
        db.session.expire_all()
        assert db.session.get(User, user.id).secret_attempts == 10
        db.session.remove()


# --- linking from the settings, and unlinking ----------------------------------------------------


def test_a_signed_in_account_links_an_identity_and_unlinks_it(app, user, provider):
    provider.person = {"sub": "x-9", "email": user.email, "email_verified": True}
    browser = app.test_client()
    assert login(browser, user.email).status_code == 200

    response = sign_in_with_provider(browser, "link=true&returnTo=/settings/security")

    assert landed(response) == ("/settings/security", {})
    [identity] = browser.get("/api/account/identities").json["data"]
    assert "identity_linked" in event_types(browser)
    notices = db.session.scalars(
        sa.select(OutboxMessage.kind).where(OutboxMessage.to_address == user.email)
    ).all()
    assert "notice_identity_linked" in notices
    # The identity now signs this account in.
    other = app.test_client()
    landed(sign_in_with_provider(other))
    assert other.get("/api/account").json["data"]["id"] == user.public_id

    assert browser.delete(f"/api/account/identities/{identity['id']}").status_code == 200
    assert browser.get("/api/account/identities").json["data"] == []
    assert "identity_unlinked" in event_types(browser)


def test_linking_needs_a_session(client, assert_error):
    assert_error(client.get("/api/auth/oidc/idp/start?link=true"), 401, "UNAUTHORIZED")


def test_an_identity_linked_to_another_account_is_not_moved(app, user, provider):
    landed(sign_in_with_provider(app.test_client()))  # ada@example.com's own account
    browser = app.test_client()
    assert login(browser, user.email).status_code == 200
    assert failed_with(sign_in_with_provider(browser, "link=true")) == "identity_in_use"
    assert browser.get("/api/account/identities").json["data"] == []


def test_the_last_way_in_of_an_account_without_password_stays(app, assert_error):
    user = passwordless_user(identities=2)
    client = session_client(app, user)
    first, second = client.get("/api/account/identities").json["data"]
    assert client.delete(f"/api/account/identities/{first['id']}").status_code == 200
    assert_error(
        client.delete(f"/api/account/identities/{second['id']}"), 409, "LAST_SIGN_IN_METHOD"
    )
    assert len(client.get("/api/account/identities").json["data"]) == 1


def test_unlinking_an_unknown_identity_is_not_found(auth_client, assert_error):
    answer = auth_client.delete("/api/account/identities/idn_nope")
    assert_error(answer, 404, "NOT_FOUND")


# --- accounts without a password confirm with a recent sign-in ----------------------------------


def test_deletion_without_password_needs_a_recent_sign_in(app, frozen_clock, assert_error):
    client = session_client(app, passwordless_user())
    clock.freeze(frozen_clock + timedelta(minutes=9, seconds=59))
    assert client.delete("/api/account", json={}).status_code == 200


def test_a_stale_sign_in_cannot_change_security_settings(app, frozen_clock, assert_error):
    user = passwordless_user()
    client = session_client(app, user)
    clock.freeze(frozen_clock + timedelta(minutes=10))
    answer = client.put("/api/account/security", json={"twoFactorEnabled": True})
    assert_error(answer, 401, "REAUTHENTICATION_REQUIRED")
    fresh = session_client(app, user)
    assert fresh.put("/api/account/security", json={"twoFactorEnabled": True}).status_code == 200


def test_an_account_without_password_sets_one_after_a_recent_sign_in(app):
    user = passwordless_user()
    client = session_client(app, user)
    chosen = "violet tugboat climbs seventeen ladders"
    body = {"newPassword": chosen, "confirmPassword": chosen}
    answer = client.put("/api/account/security", json=body)
    assert answer.status_code == 200, answer.json
    assert login(app.test_client(), user.email, chosen).status_code == 200


def test_an_account_with_a_password_still_needs_it(auth_client, assert_error):
    answer = auth_client.delete("/api/account", json={})
    assert_error(answer, 400, "VALIDATION_ERROR", "currentPassword")
    assert auth_client.get("/api/account").status_code == 200


def test_deletion_erases_the_linked_identities(app, client):
    landed(sign_in_with_provider(client))
    assert client.delete("/api/account", json={}).status_code == 200
    assert db.session.scalar(sa.select(LinkedIdentity)) is None


def test_identities_are_in_the_export(app, client):
    landed(sign_in_with_provider(client))
    exported = client.get("/api/account/export").json["data"]
    assert [i["provider"] for i in exported["identities"]] == ["idp"]
    assert "subject" not in exported["identities"][0]
