"""Helpers the test modules share: sign-ups, sign-ins and a subscribed user in one call.

`register` and `login` send the request and return the response, for tests of those endpoints;
`signed_up`, `signed_in`, `subscribed` and `subscriber` are preconditions: they assert that the
step succeeded, so a test reads as its scenario.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage, User
from smartcv_account.services import billing
from smartcv_account.services.teams import plan as teams_plan

from .billing_helpers import subscribe
from .factories import PASSWORD, UserFactory

# Passwords zxcvbn rates strong: for sign-ups whose password is not the factories' PASSWORD,
# and for a password change or reset.
STRONG = "violet tugboat climbs seventeen ladders"
NEW_PASSWORD = "marigold submarine whistles at dawn"
# The bearer token of the internal API in the tests' configuration (conftest.TEST_CONFIG).
INTERNAL_TOKEN = "test-internal-token"


def register(client, email="new@example.com", password=STRONG, name="Zhang San", **request):
    """POST /api/auth/register; `address` and `headers` in `request` as in `send`."""
    body = {"email": email, "password": password, "name": name}
    return send(client, "/api/auth/register", body, **request)


def signed_up(client, email="ann@example.com", name="Ann", password=PASSWORD) -> dict:
    """Sign up over the API (the client is then signed in); return the new account."""
    response = register(client, email, password, name)
    assert response.status_code == 201, response.json
    return response.json["data"]


def login(client, email, password=PASSWORD, code=None, **request):
    """POST /api/auth/login, with a second-factor code when given; `request` as in `send`."""
    body = {"email": email, "password": password}
    if code is not None:
        body["twoFactorCode"] = code
    return send(client, "/api/auth/login", body, **request)


def send(client, path: str, body: dict, address: str | None = None, headers=None):
    """POST `body` to `path`, from client address `address` when given (rate limits count it)."""
    environ = {"REMOTE_ADDR": address} if address is not None else {}
    return client.post(path, json=body, environ_base=environ, headers=headers)


def signed_in(app: Flask, email: str, address: str = "127.0.0.1", agent: str = "pytest", **body):
    """A new client (browser) signed in as `email` from `address` with user agent `agent`."""
    client: FlaskClient = app.test_client()
    client.environ_base.update({"REMOTE_ADDR": address, "HTTP_USER_AGENT": agent})
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD, **body})
    assert response.status_code == 200, response.json
    return client


def subscribed(client, plan_id="plan_premium_monthly", payment_method="pm_card_visa", **extra):
    """Subscribe the signed-in client, asserting the 201; return the created subscription."""
    response = subscribe(client, plan_id, payment_method, **extra)
    assert response.status_code == 201, response.json
    return response.json["data"]


def subscriber(app: Flask, plan_id="plan_premium_monthly", payment_method="pm_card_visa"):
    """A new user subscribed to `plan_id`: the client signed in as them (plans seeded)."""
    client = signed_in(app, UserFactory().email)
    subscribed(client, plan_id, payment_method)
    return client


def change_password(client, new=NEW_PASSWORD, confirm=None, current=PASSWORD):
    """PUT /api/account/security with a new password (confirmed as `new` unless given)."""
    body = {
        "currentPassword": current,
        "newPassword": new,
        "confirmPassword": new if confirm is None else confirm,
    }
    return client.put("/api/account/security", json=body)


def change_email(client, new_email="ann.new@example.com", password=PASSWORD):
    """POST /api/account/email: ask to move the account to `new_email`."""
    return client.post(
        "/api/account/email", json={"newEmail": new_email, "currentPassword": password}
    )


def reset(client, token, password=NEW_PASSWORD, **extra):
    """POST a password reset with an emailed link's token."""
    body = {"token": token, "newPassword": password, "confirmPassword": password, **extra}
    return client.post("/api/auth/password-reset", json=body)


def post_usage(client, public_id, body, token=INTERNAL_TOKEN, headers=None, **request):
    """POST a usage change the way another SmartCV service would (`token` None: no bearer)."""
    sent = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post(
        f"/api/internal/users/{public_id}/usage",
        json=body,
        headers={**sent, **(headers or {})},
        **request,
    )


def stored(public_id) -> tuple[int, int, int]:
    """Read the three usage counters straight from the database, as committed."""
    db.session.rollback()  # start afresh so commits made by other connections are visible
    row = db.session.execute(
        sa.select(User.resumes_created, User.api_requests_used, User.storage_used).where(
            User.public_id == public_id
        )
    ).one()
    return tuple(row)


def put_on_plan(user, plan_id: str) -> None:
    """Put `user` on a plan as the operator's `assign-plan` does (no billing)."""
    billing.assign_plan(db.session.get(User, user.id), plan_id)


def create_api_key(client, scopes=("resumes:read",), password=PASSWORD, **fields):
    """POST /api/account/api-keys with `scopes` and the current password (`fields` added)."""
    body = {"name": "CV sync", "scopes": list(scopes), "currentPassword": password, **fields}
    return client.post("/api/account/api-keys", json=body)


def api_key(client, scopes=("resumes:read",), **fields) -> dict:
    """Make an API key as the signed-in client, asserting the 201; return the new key."""
    response = create_api_key(client, scopes, **fields)
    assert response.status_code == 201, response.json
    return response.json["data"]


def verify_key(client, key: str, token=INTERNAL_TOKEN, **body):
    """POST /api/internal/api-keys/verify as another SmartCV service (`token` None: no bearer)."""
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.post("/api/internal/api-keys/verify", json={"key": key, **body}, headers=headers)


# --- teams --------------------------------------------------------------------------------------

TEAMS_URL = "/api/teams"


def verified_user(**fields) -> User:
    """A saved user (password PASSWORD) whose email address is verified."""
    return UserFactory(email_verified_at=clock.now(), **fields)


def new_team(client, name="Acme") -> dict:
    """Create a team as the signed-in (verified) client, asserting the 201; return it."""
    response = client.post(TEAMS_URL, json={"name": name})
    assert response.status_code == 201, response.json
    return response.json["data"]


def on_enterprise(team_id: str, seats: int) -> None:
    """Put a team on ENTERPRISE with `seats` seats, as `flask assign-plan --team` does."""
    teams_plan.assign_team_plan(team_id, "plan_enterprise", seats)


def invite(client, team_id: str, email: str, role="member"):
    """POST an invitation into the team; return the response."""
    return client.post(f"{TEAMS_URL}/{team_id}/invitations", json={"email": email, "role": role})


def invitation_token(email: str) -> str:
    """The token of the newest invitation link queued to `email` (the outbox keeps it until
    the message is sent)."""
    db.session.rollback()
    token = db.session.scalar(
        sa.select(OutboxMessage.link_token)
        .where(OutboxMessage.kind == "team_invitation", OutboxMessage.to_address == email)
        .order_by(OutboxMessage.id.desc())
    )
    assert token is not None, f"no invitation queued to {email}"
    return token


def accept(client, token: str):
    """POST /api/teams/invitations/accept with `token`."""
    return client.post(f"{TEAMS_URL}/invitations/accept", json={"token": token})


def member_of(app: Flask, owner, team_id: str, role="member") -> tuple[User, FlaskClient]:
    """A new verified user invited by the `owner` client and joined: (user, their client)."""
    user = verified_user()
    assert invite(owner, team_id, user.email, role).status_code == 201
    client = signed_in(app, user.email)
    response = accept(client, invitation_token(user.email))
    assert response.status_code == 200, response.json
    return user, client
