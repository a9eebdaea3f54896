"""Seats and team plans under concurrency: two gunicorn workers, requests released together.

- The last seat: concurrent invitations for it give one invitation and SEAT_LIMIT_REACHED for
  the rest; concurrent acceptances of one link give one member.
- A removal racing a usage call: the call is counted under the team's plan only if it came
  first; once the removal has answered, the member has their own plan's limits.

Runs on DATABASE_URL's PostgreSQL database when set, else on a SQLite file.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from functools import partial

import pytest
import requests
import sqlalchemy as sa

from .factories import PASSWORD
from .gunicorn_helpers import (
    COOKIE,
    Account,
    flask_cli,
    gunicorns,
    request,
    service_env,
    sign_up,
    together,
)

pytestmark = pytest.mark.slow

INTERNAL = {"Authorization": "Bearer multi-instance-internal-token", "Connection": "close"}
ROUNDS = 6
MAX_ROUNDS = 30


@pytest.fixture(scope="module")
def service(migrated_url):
    """Two gunicorn workers on a migrated database with the plans seeded; (url, engine)."""
    env = service_env(migrated_url)
    flask_cli(env, "seed-plans")
    engine = sa.create_engine(migrated_url.replace("postgresql://", "postgresql+psycopg://"))
    with gunicorns(env, workers=2) as (instance,):
        yield instance.url, engine
    forget_rows(engine)
    engine.dispose()


def forget_rows(engine: sa.Engine) -> None:
    """Empty DATABASE_URL's PostgreSQL tables, which the suite shares, of what the rounds made
    (a SQLite file is the module's own)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.begin() as connection:
        names = connection.scalars(
            sa.text(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ).all()
        connection.execute(sa.text(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE"))


def verified(base: str, engine: sa.Engine, prefix: str) -> Account:
    """A user signed up over HTTP whose address is then marked verified in the database."""
    account = sign_up(base, prefix)
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE users SET email_verified_at = :now WHERE public_id = :id"),
            {"now": datetime.now(UTC).replace(tzinfo=None), "id": account.id},
        )
    return account


def enterprise_team(base: str, engine: sa.Engine, owner: Account, seats: int) -> str:
    """A team of `owner` on ENTERPRISE with `seats` seats (as `assign-plan --team` leaves it)."""
    created = request(base, "POST", "/api/teams", owner.cookie, {"name": "Race"})
    assert created.status_code == 201, created.text
    team_id = created.json()["data"]["id"]
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "UPDATE teams SET plan_id = 'plan_enterprise', seats = :seats WHERE public_id = :id"
            ),
            {"seats": seats, "id": team_id},
        )
    return team_id


def invite(base: str, owner: Account, team_id: str, email: str) -> requests.Response:
    """POST one invitation."""
    body = {"email": email, "role": "member"}
    return request(base, "POST", f"/api/teams/{team_id}/invitations", owner.cookie, body)


def token_for(engine: sa.Engine, email: str) -> str:
    """The token of the invitation link queued to `email` (kept until the message is sent)."""
    with engine.connect() as connection:
        return connection.scalar(
            sa.text(
                "SELECT link_token FROM mail_outbox WHERE kind = 'team_invitation'"
                " AND to_address = :email"
            ),
            {"email": email},
        )


def accept(base: str, cookie: str, token: str) -> requests.Response:
    """POST /api/teams/invitations/accept."""
    return request(base, "POST", "/api/teams/invitations/accept", cookie, {"token": token})


def seats_taken(engine: sa.Engine, team_id: str) -> tuple[int, int, int]:
    """(members, pending invitations, seats) of a team, read from the database."""
    with engine.connect() as connection:
        return connection.execute(
            sa.text(
                "SELECT (SELECT count(*) FROM team_members WHERE team_id = t.id),"
                " (SELECT count(*) FROM team_invitations WHERE team_id = t.id"
                "  AND accepted_at IS NULL AND revoked_at IS NULL), t.seats"
                " FROM teams t WHERE t.public_id = :id"
            ),
            {"id": team_id},
        ).one()


def second_session(base: str, account: Account) -> str:
    """Sign in again as `account`: the cookie of a second session."""
    response = requests.post(
        base + "/api/auth/login", json={"email": account.email, "password": PASSWORD}, timeout=30
    )
    assert response.status_code == 200, response.text
    return response.cookies[COOKIE]


def test_concurrent_invitations_for_the_last_seat_give_one_invitation(service):
    base, engine = service
    for _ in range(ROUNDS):
        owner = verified(base, engine, "owner")
        team_id = enterprise_team(base, engine, owner, seats=4)
        # Three people who may invite (each write locks its own user row first, so only the
        # team's row orders them), and one seat left for them to race for.
        inviters = [owner, *(joined(base, engine, owner, team_id, "admin") for _ in range(2))]
        assert seats_taken(engine, team_id) == (3, 0, 4)
        answers = together(
            *(
                partial(invite, base, inviter, team_id, f"guest-{inviter.id[-12:]}@example.com")
                for inviter in inviters
            )
        )
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [201, 409, 409], [a.text for a in answers]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {"SEAT_LIMIT_REACHED"}
        assert seats_taken(engine, team_id) == (3, 1, 4)


def joined(base: str, engine: sa.Engine, owner: Account, team_id: str, role: str) -> Account:
    """A new verified user invited by `owner` with `role` who has accepted."""
    guest = verified(base, engine, "guest")
    body = {"email": guest.email, "role": role}
    created = request(base, "POST", f"/api/teams/{team_id}/invitations", owner.cookie, body)
    assert created.status_code == 201, created.text
    assert accept(base, guest.cookie, token_for(engine, guest.email)).status_code == 200
    return guest


def test_concurrent_acceptances_of_one_link_give_one_member(service):
    base, engine = service
    for _ in range(ROUNDS):
        owner = verified(base, engine, "owner")
        team_id = enterprise_team(base, engine, owner, seats=2)
        guest = verified(base, engine, "guest")
        assert invite(base, owner, team_id, guest.email).status_code == 201
        token = token_for(engine, guest.email)
        cookies = (guest.cookie, second_session(base, guest))
        answers = together(*(partial(accept, base, cookie, token) for cookie in cookies))
        assert sorted(a.status_code for a in answers) == [200, 400], [a.text for a in answers]
        assert [a.json()["code"] for a in answers if a.status_code == 400] == ["INVALID_TOKEN"]
        assert seats_taken(engine, team_id) == (2, 0, 2)


def test_concurrent_acceptances_filling_the_seats_each_give_a_member(service):
    base, engine = service
    for _ in range(ROUNDS):
        owner = verified(base, engine, "owner")
        team_id = enterprise_team(base, engine, owner, seats=3)
        guests = [verified(base, engine, "guest") for _ in range(2)]
        for guest in guests:
            assert invite(base, owner, team_id, guest.email).status_code == 201
        answers = together(
            *(partial(accept, base, g.cookie, token_for(engine, g.email)) for g in guests)
        )
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        assert seats_taken(engine, team_id) == (3, 0, 3)


def usage(base: str, user_id: str, delta: int = 1) -> requests.Response:
    """One resume recorded for `user_id` by another SmartCV service."""
    return requests.post(
        f"{base}/api/internal/users/{user_id}/usage",
        json={"metric": "resumes", "delta": delta},
        headers=INTERNAL,
        timeout=30,
    )


def later(seconds: float, call):
    """Wait `seconds`, then make the call; return its answer."""
    time.sleep(seconds)
    return call()


def resumes(engine: sa.Engine, user_id: str) -> int:
    """The user's resume counter as committed."""
    with engine.connect() as connection:
        return connection.scalar(
            sa.text("SELECT resumes_created FROM users WHERE public_id = :id"), {"id": user_id}
        )


def test_a_removal_racing_a_usage_call_never_lets_the_team_plan_outlive_the_removal(service):
    base, engine = service
    seen = set()
    for round_number in range(MAX_ROUNDS):
        owner = verified(base, engine, "owner")
        team_id = enterprise_team(base, engine, owner, seats=2)
        member = verified(base, engine, "member")
        assert invite(base, owner, team_id, member.email).status_code == 201
        assert accept(base, member.cookie, token_for(engine, member.email)).status_code == 200
        # At the free plan's limit: one more resume fits only under the team's plan.
        assert usage(base, member.id, 5).status_code == 200
        # Sweep the call across the removal's window, from 20 ms before it to 16 ms after.
        offset = ((round_number % 10) - 5) * 0.004
        path = f"/api/teams/{team_id}/members/{member.id}"
        removal, counted = together(
            partial(later, max(-offset, 0), partial(request, base, "DELETE", path, owner.cookie)),
            partial(later, max(offset, 0), partial(usage, base, member.id)),
        )
        assert removal.status_code == 200, removal.text
        assert counted.status_code in (200, 429), counted.text
        seen.add(counted.status_code)
        # What was counted is exactly what the answer said; after the removal, nothing more.
        assert resumes(engine, member.id) == (6 if counted.status_code == 200 else 5)
        after = usage(base, member.id)
        assert after.status_code == 429 and after.json()["details"]["limit"] == 5
        account = request(base, "GET", "/api/account", member.cookie).json()["data"]
        assert (account["subscriptionType"], account["teams"]) == ("FREE", [])
        if seen == {200, 429}:
            break
    assert seen == {200, 429}, f"the usage call never landed on both sides: {seen}"
