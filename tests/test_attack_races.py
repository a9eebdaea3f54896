"""Races an attacker plays, over HTTP on two gunicorn workers, released from a barrier.

- A deletion racing the same user's requests: each round signs a new user up, then releases
  `DELETE /api/account` and one racing request of that user together. Whatever the order,
  nothing the user sent survives the deletion: a racing write either completed first (and the
  deletion undid it) or was refused. Rounds repeat until a racing request was refused after
  waiting for the deletion (the window hit), and every round's database is checked directly.
- A password-only login racing the switch-on of two-factor authentication keeps no session.
- Two confirmations racing for one address: one 200, one 409 `EMAIL_TAKEN`, never a 500.
"""

from __future__ import annotations

import uuid
from functools import partial

import pytest
import requests
import sqlalchemy as sa

from .factories import PASSWORD
from .gunicorn_helpers import (
    COOKIE,
    flask_cli,
    gunicorns,
    request,
    service_env,
    sign_up,
    together,
)

pytestmark = pytest.mark.slow

NEW_PASSWORD = "a different horse, battery and staple"
LIVE = ("ACTIVE", "TRIALING", "PAST_DUE", "INCOMPLETE")
LOCAL_LIVE = ("active", "trialing", "past_due", "incomplete")
# The refusal of a request that passed the session check, then waited for the deletion.
WAITED = "ended while the request waited"
MAX_ROUNDS = 30

RACERS = {
    "profile": ("PUT", "/api/account", {"name": "Written after"}),
    "subscribe": (
        "POST",
        "/api/account/subscription",
        {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"},
    ),
    "password": (
        "PUT",
        "/api/account/security",
        {"currentPassword": PASSWORD, "newPassword": NEW_PASSWORD, "confirmPassword": NEW_PASSWORD},
    ),
    "email": (
        "POST",
        "/api/account/email",
        {"newEmail": "moved-{n}@example.com", "currentPassword": PASSWORD},
    ),
    "upgrade": (
        "PUT",
        "/api/account/subscription",
        {"action": "upgrade", "planId": "plan_premium_yearly"},
    ),
}
# The status each racing request answers when it completes before the deletion.
COMPLETED = {"profile": 200, "subscribe": 201, "password": 200, "email": 202, "upgrade": 200}


@pytest.fixture(scope="module")
def service(migrated_url):
    """Two gunicorn workers on a migrated database with the plans seeded; (url, engine)."""
    # A slower hash widens the deletion's window: it holds the account while it checks.
    env = service_env(migrated_url, BCRYPT_ROUNDS="8")
    flask_cli(env, "seed-plans")
    engine = sa.create_engine(migrated_url.replace("postgresql://", "postgresql+psycopg://"))
    with gunicorns(env, workers=2) as (instance,):
        yield instance.url, engine
    engine.dispose()


def race(base: str, cookie: str, racer: tuple) -> list[requests.Response]:
    """Release the deletion and the racing request together; return both answers."""
    method, path, body = racer
    deletion = {"currentPassword": PASSWORD}
    return together(
        lambda: request(base, "DELETE", "/api/account", cookie, deletion),
        lambda: request(base, method, path, cookie, body),
    )


def check_erased(engine: sa.Engine, user_id: int) -> None:
    """Nothing of the user survives: no session, no live subscription here or at the provider,
    no pending link, no name, no address."""
    with engine.connect() as connection:
        user = connection.execute(
            sa.text(
                "SELECT name, email, deleted_at, billing_customer_id FROM users WHERE id = :id"
            ),
            {"id": user_id},
        ).one()
        assert user.deleted_at is not None and user.name == ""
        assert user.email.startswith("deleted:")
        for table in ("auth_sessions", "email_tokens"):
            count = connection.scalar(
                sa.text(f"SELECT count(*) FROM {table} WHERE user_id = :id"), {"id": user_id}
            )
            assert count == 0, table
        live = connection.scalar(
            sa.text(
                "SELECT count(*) FROM subscriptions WHERE user_id = :id AND status IN :live"
            ).bindparams(sa.bindparam("live", expanding=True)),
            {"id": user_id, "live": list(LIVE)},
        )
        assert live == 0
        if user.billing_customer_id is not None:
            provider_live = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM local_subscriptions"
                    " WHERE customer_id = :customer AND status IN :live"
                ).bindparams(sa.bindparam("live", expanding=True)),
                {"customer": user.billing_customer_id, "live": list(LOCAL_LIVE)},
            )
            assert provider_live == 0


def internal_id(engine: sa.Engine, public_id: str) -> int:
    """The user's row id (the public id changes with the deletion)."""
    with engine.connect() as connection:
        return connection.scalar(
            sa.text("SELECT id FROM users WHERE public_id = :public_id"), {"public_id": public_id}
        )


@pytest.mark.parametrize("kind", sorted(RACERS))
def test_nothing_a_racing_request_sends_survives_the_deletion(service, kind):
    base, engine = service
    outcomes: list[str] = []
    for _round_number in range(MAX_ROUNDS):
        account = sign_up(base, "race")
        cookie = account.cookie
        user_id = internal_id(engine, account.id)
        if kind == "upgrade":
            subscribed = request(
                base, "POST", "/api/account/subscription", cookie, RACERS["subscribe"][2]
            )
            assert subscribed.status_code == 201, subscribed.text
        method, path, body = RACERS[kind]
        if kind == "email":
            body = {**body, "newEmail": body["newEmail"].format(n=uuid.uuid4().hex[:8])}

        deleted, racer = race(base, cookie, (method, path, body))

        if kind == "password" and deleted.status_code == 401:
            # The password change committed first: the old cookie cannot delete any more.
            assert racer.status_code == 200, racer.text
            outcomes.append("racer first, deletion refused")
            continue
        assert deleted.status_code == 200, deleted.text
        check_erased(engine, user_id)
        for answer in (deleted, racer):
            new_cookie = answer.cookies.get(COOKIE)
            if new_cookie:
                assert request(base, "GET", "/api/account", new_cookie).status_code == 401
        assert request(base, "GET", "/api/account", cookie).status_code == 401
        if racer.status_code == 401:
            outcomes.append("waited" if WAITED in racer.json()["error"] else "after")
        else:
            assert racer.status_code == COMPLETED[kind], racer.text
            outcomes.append("racer first")
        if "waited" in outcomes:
            break
    assert "waited" in outcomes, f"the window was never hit in {MAX_ROUNDS} rounds: {outcomes}"


def test_a_password_only_login_racing_the_switch_on_of_two_factor_keeps_no_session(service):
    base, _engine = service
    let_in = 0
    for _ in range(12):
        account = sign_up(base, "race")
        cookie = account.cookie
        switch = {"currentPassword": PASSWORD, "twoFactorEnabled": True}
        login = {"email": account.email, "password": PASSWORD}

        switched, logged_in = together(
            partial(request, base, "PUT", "/api/account/security", cookie, switch),
            partial(requests.post, base + "/api/auth/login", json=login, timeout=30),
        )

        assert switched.status_code == 200, switched.text
        if logged_in.status_code == 200:
            let_in += 1  # it checked the password before the switch: its session must be dead
            racer_cookie = logged_in.cookies[COOKIE]
            assert request(base, "GET", "/api/account", racer_cookie).status_code == 401
        else:
            assert logged_in.status_code == 401, logged_in.text
            assert logged_in.json()["code"] == "TWO_FACTOR_REQUIRED"
        assert request(base, "GET", "/api/account", cookie).status_code == 200
    assert let_in > 0, "no login ever raced ahead of the switch"


def test_two_confirmations_racing_for_one_address_give_one_200_and_one_409(service):
    base, engine = service
    for _ in range(6):
        address = f"wanted-{uuid.uuid4().hex[:10]}@example.com"
        tokens = []
        for _account in range(2):
            body = {"newEmail": address, "currentPassword": PASSWORD}
            asked = request(base, "POST", "/api/account/email", sign_up(base, "race").cookie, body)
            assert asked.status_code == 202, asked.text
            tokens.append(confirmation_token(engine, address))

        answers = together(
            *(
                partial(
                    requests.post,
                    base + "/api/account/email/confirm",
                    json={"token": token},
                    timeout=30,
                )
                for token in tokens
            )
        )

        assert sorted(a.status_code for a in answers) == [200, 409], [a.text for a in answers]
        assert [a.json()["code"] for a in answers if a.status_code == 409] == ["EMAIL_TAKEN"]


def confirmation_token(engine: sa.Engine, address: str) -> str:
    """The token of the newest confirmation link queued to `address` (the worker is not
    running, so the message is still waiting with its token)."""
    with engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT link_token FROM mail_outbox WHERE to_address = :address"
                " AND kind = 'email_change_confirm' ORDER BY id DESC"
            ),
            {"address": address},
        )
