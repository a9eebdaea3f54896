"""The SQL each endpoint issues, counted with SQLAlchemy's cursor events, held to a budget.

Timing depends on the machine and is measured by the benchmark (bench/run.sh,
docs/performance.md); the number of statements does not, so it is asserted here. A budget is
an upper bound: lowering a count is welcome, raising one means updating this table on purpose.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

import bcrypt
import pytest
import sqlalchemy as sa

from smartcv_account import clock, principal
from smartcv_account.driver import DriverStatement
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage

from .billing_helpers import SUBSCRIPTION_URL, change, subscribe
from .factories import PASSWORD
from .helpers import api_key, member_of, new_team, on_enterprise, subscribed

INTERNAL = {"Authorization": "Bearer test-internal-token"}
NEW_PASSWORD = "a much longer passphrase nobody guesses 42"

# Statements per request, the session check included. Why each number is what it is:
BUDGET = {
    # The session and the user with their subscription and the best plan of their teams: one
    # joined SELECT. Plans come from the in-process snapshot (services/plans.py), so showing
    # them costs nothing per request.
    "GET /api/account": 1,
    "GET /api/account/subscription": 1,
    # A team member's account also lists their teams: one SELECT more.
    "GET /api/account (team member)": 2,
    # Session+user (the read-only principal), the UPDATE … RETURNING that locks the row with
    # the change applied, the best plan of the user's teams (a subscriber's answer reads their
    # subscription too: one SELECT more).
    "PUT /api/account": 3,
    # The conditional UPDATE … RETURNING (the limit is in its WHERE), then the COMMIT.
    "POST /api/internal/users/<id>/usage": 1,
    # The usage call's UPDATE … RETURNING, finding the user through the live key with the scope
    # (by the secret's hash) in its WHERE, committed by itself (autocommit); once a minute per
    # key one more UPDATE of the key's last use, after it. A refusal: the UPDATE, then one
    # SELECT saying why.
    "POST /api/internal/api-keys/verify": 1,
    "POST /api/internal/api-keys/verify (first use)": 2,
    "POST /api/internal/api-keys/verify (refused)": 2,
    "POST /api/internal/api-keys/verify (count=false)": 1,
    # Session+user, the user locked, the live keys counted, the guessing count's UPDATE, the
    # key's INSERT, the activity event's INSERT, the notice's outbox INSERT.
    "POST /api/account/api-keys": 7,
    # Session+user, the live keys.
    "GET /api/account/api-keys": 2,
    # Session+user, the user locked, the key, its revocation's UPDATE, the activity event.
    "DELETE /api/account/api-keys/<id>": 5,
    # Session+user, the model, the UPDATE of the hash (and credential version), the revocation
    # of every session, the bumped version read back, the new session's INSERT, the DELETE of
    # outstanding reset links, the notice's outbox INSERT, the activity event's INSERT.
    "PUT /api/account/security (password)": 9,
    # The user by email, the new session's INSERT, the last-login UPDATE, the subscription for
    # the answer (none for a free user), the best plan of the user's teams, the activity
    # event's INSERT.
    "POST /api/auth/login": 6,
    # The revocation's UPDATE … RETURNING the user (the cookie's token is revoked without
    # reading it first), the activity event's INSERT.
    "POST /api/auth/logout": 2,
    # The user's INSERT, the session's INSERT; and the verification link: the DELETE of older
    # links, the token's INSERT and the outbox's INSERT.
    "POST /api/auth/register": 5,
    # The local gateway keeps a Stripe-like ledger (customer, card, subscription, invoice) in
    # its own tables; with the stripe gateway those writes are HTTP calls instead.
    # Writes read the user, the subscription and its plan as they need them (no eager joins:
    # the hot reads use one Core row instead).
    # Each also writes its activity event (one INSERT).
    "POST /api/account/subscription": 35,
    "PUT /api/account/subscription (cancel)": 13,
    "GET /healthz": 1,
    # Session+user, the live sessions.
    "GET /api/account/sessions": 2,
    # Session+user, the target session, its revocation's UPDATE, the activity event's INSERT.
    "DELETE /api/account/sessions/<id>": 4,
    # Session+user, one UPDATE for all the others, the activity event's INSERT.
    "DELETE /api/account/sessions": 3,
    # Session+user, the page; with a cursor, the cursor event's (created_at, id) first.
    "GET /api/account/activity": 2,
    "GET /api/account/activity (cursor)": 3,
    # Session+user, the model, the event's INSERT, the current subscription, the best plan of
    # the user's teams, the backup codes count, sessions, events, subscriptions, the provider's
    # invoices, passkeys, linked identities, the API keys (plans come from the in-process
    # snapshot; the memberships only for a member).
    "GET /api/account/export": 13,
    # Session+user, the user locked, the teams the user belongs to (locked and judged only for
    # a member), the live subscription locked, the outbox's DELETE of mail to the old address
    # and the goodbye notice's INSERT, the DELETEs of sessions, events, API keys, backup codes,
    # emailed-link tokens, passkeys, linked identities and reset requests, the user's UPDATE,
    # and the two UPDATEs that take the user out of team logs and invitations they made (teams
    # left earlier included).
    "DELETE /api/account": 17,
}
# The hot path's limit, whatever the table above says.
HOT_PATH_LIMIT = 2


@pytest.fixture
def sql_and_commits(app, monkeypatch):
    """Record, in order, each statement sent and each COMMIT.

    Two routes reach the database: SQLAlchemy's execution, seen by its events, and statements
    on the driver's cursor (`driver.DriverStatement`: the session check, the verify call), seen
    by a spy. One run with `commit` ends committed (on SQLite by the driver's COMMIT, on a
    server in autocommit by the statement itself), recorded as its COMMIT.
    """
    events: list[str] | None = None
    run = DriverStatement.run

    def spy(self, connection, parameters, commit=False):
        row = run(self, connection, parameters, commit)
        if events is not None:
            events.append(" ".join(self.sql.split()))
            if commit:
                events.append("COMMIT")
        return row

    monkeypatch.setattr(DriverStatement, "run", spy)

    @contextmanager
    def recording() -> Iterator[list[str]]:
        nonlocal events
        events = []

        def statement(conn, cursor, sql, parameters, context, executemany) -> None:
            events.append(" ".join(sql.split()))

        def commit(conn) -> None:
            events.append("COMMIT")

        # The app's engine, and on a server the pool without pre-ping (the usage UPDATE).
        engines = {db.engine, principal.unpinged_engine()}
        for engine in engines:
            sa.event.listen(engine, "before_cursor_execute", statement)
            sa.event.listen(engine, "commit", commit)
        try:
            yield events
        finally:
            for engine in engines:
                sa.event.remove(engine, "before_cursor_execute", statement)
                sa.event.remove(engine, "commit", commit)
            events = None

    return recording


@pytest.fixture
def count_queries(sql_and_commits):
    """Count the SQL statements sent to the database inside a `with` block."""

    @contextmanager
    def counting() -> Iterator[list[str]]:
        statements: list[str] = []
        with sql_and_commits() as events:
            yield statements
        statements.extend(event for event in events if event != "COMMIT")

    return counting


def issued(count_queries, call, status: int = 200) -> tuple[int, list[str]]:
    """Run `call` (one request, answered `status`); return its statements."""
    with count_queries() as statements:
        response = call()
    assert response.status_code == status, response.json
    return len(statements), statements


def within(label: str, count: int, statements: list[str]) -> None:
    """Assert that an endpoint stayed within its budget, showing its SQL when it did not."""
    assert count <= BUDGET[label], f"{label}: {count} statements\n" + "\n".join(statements)


# --- the hot path -------------------------------------------------------------------------------


@pytest.mark.parametrize("tier", ["free", "premium"])
def test_get_account_is_one_query_session_check_included(request, count_queries, plans, tier):
    client = request.getfixturevalue("premium_client" if tier == "premium" else "auth_client")
    client.get("/api/account")  # the plan snapshot is filled once per process and TTL
    count, statements = issued(count_queries, lambda: client.get("/api/account"))
    within("GET /api/account", count, statements)
    assert count == 1 and statements[0].startswith("SELECT"), statements
    assert count <= HOT_PATH_LIMIT


@pytest.mark.parametrize("tier", ["free", "premium"])
def test_get_subscription_is_one_query(request, count_queries, plans, tier):
    client = request.getfixturevalue("premium_client" if tier == "premium" else "auth_client")
    client.get(SUBSCRIPTION_URL)
    count, statements = issued(count_queries, lambda: client.get(SUBSCRIPTION_URL))
    within("GET /api/account/subscription", count, statements)


def test_a_team_members_account_is_two_queries(app, owner, count_queries):
    team_id = new_team(owner)["id"]
    on_enterprise(team_id, 2)
    _, member = member_of(app, owner, team_id)
    member.get("/api/account")
    count, statements = issued(count_queries, lambda: member.get("/api/account"))
    within("GET /api/account (team member)", count, statements)
    assert count <= HOT_PATH_LIMIT


def test_plans_are_read_once_for_many_requests(auth_client, count_queries, plans):
    with count_queries() as statements:
        for _ in range(5):
            assert auth_client.get(SUBSCRIPTION_URL).status_code == 200
            assert auth_client.get("/api/account").status_code == 200
    plan_reads = [s for s in statements if "FROM plans" in s]
    assert len(plan_reads) <= 1, statements


def test_a_plan_written_in_this_process_is_shown_at_once(auth_client, plans):
    from smartcv_account.models import Plan

    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["plan"]["name"] == "Free Plan"
    db.session.get(Plan, "plan_free").name = "Free Forever"
    db.session.commit()
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["plan"]["name"] == "Free Forever"


def test_no_cookie_costs_no_query(client, count_queries):
    with count_queries() as statements:
        response = client.get("/api/account")
    assert response.status_code == 401
    assert statements == []


# --- every other endpoint -----------------------------------------------------------------------


def test_put_account(auth_client, count_queries, plans):
    count, statements = issued(
        count_queries, lambda: auth_client.put("/api/account", json={"name": "Ann"})
    )
    within("PUT /api/account", count, statements)


@pytest.mark.parametrize("tier", ["free", "premium"])
def test_internal_usage(request, client, user, count_queries, plans, tier):
    if tier == "premium":
        request.getfixturevalue("premium_client")
    url = f"/api/internal/users/{user.public_id}/usage"
    body = {"metric": "storage", "delta": 1}
    client.post(url, json=body, headers=INTERNAL)  # fills the plan snapshot
    count, statements = issued(count_queries, lambda: client.post(url, json=body, headers=INTERNAL))
    within("POST /api/internal/users/<id>/usage", count, statements)


def test_password_change(auth_client, count_queries, plans):
    body = {
        "currentPassword": PASSWORD,
        "newPassword": NEW_PASSWORD,
        "confirmPassword": NEW_PASSWORD,
    }
    count, statements = issued(
        count_queries, lambda: auth_client.put("/api/account/security", json=body)
    )
    within("PUT /api/account/security (password)", count, statements)


def test_login(app, user, count_queries, plans):
    client = app.test_client()
    body = {"email": user.email, "password": PASSWORD}
    count, statements = issued(count_queries, lambda: client.post("/api/auth/login", json=body))
    within("POST /api/auth/login", count, statements)


def test_logout(auth_client, count_queries):
    count, statements = issued(count_queries, lambda: auth_client.post("/api/auth/logout"))
    within("POST /api/auth/logout", count, statements)


def test_register(client, count_queries, plans):
    body = {"email": "new.user@example.com", "password": PASSWORD, "name": "New User"}
    count, statements = issued(
        count_queries, lambda: client.post("/api/auth/register", json=body), status=201
    )
    within("POST /api/auth/register", count, statements)


def test_create_subscription(auth_client, count_queries, plans):
    count, statements = issued(count_queries, lambda: subscribe(auth_client), status=201)
    within("POST /api/account/subscription", count, statements)


def test_cancel_subscription(premium_client, count_queries):
    count, statements = issued(count_queries, lambda: change(premium_client, "cancel"))
    within("PUT /api/account/subscription (cancel)", count, statements)


def test_health(client, count_queries):
    count, statements = issued(count_queries, lambda: client.get("/healthz"))
    within("GET /healthz", count, statements)


# --- sessions, activity, export and deletion ---------------------------------------------------


def test_list_sessions(auth_client, count_queries):
    count, statements = issued(count_queries, lambda: auth_client.get("/api/account/sessions"))
    within("GET /api/account/sessions", count, statements)


def test_revoke_one_session(app, user, auth_client, count_queries):
    other = app.test_client()
    other.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    target = next(
        s["id"] for s in auth_client.get("/api/account/sessions").json["data"] if not s["current"]
    )
    count, statements = issued(
        count_queries, lambda: auth_client.delete(f"/api/account/sessions/{target}")
    )
    within("DELETE /api/account/sessions/<id>", count, statements)


def test_revoke_other_sessions(auth_client, count_queries):
    count, statements = issued(count_queries, lambda: auth_client.delete("/api/account/sessions"))
    within("DELETE /api/account/sessions", count, statements)


def test_activity_pages(app, user, auth_client, count_queries):
    app.test_client().post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    url = "/api/account/activity?limit=1"
    count, statements = issued(count_queries, lambda: auth_client.get(url))
    within("GET /api/account/activity", count, statements)
    cursor = auth_client.get(url).json["data"]["nextCursor"]
    count, statements = issued(count_queries, lambda: auth_client.get(f"{url}&before={cursor}"))
    within("GET /api/account/activity (cursor)", count, statements)


def test_export(premium_client, count_queries):
    premium_client.get(SUBSCRIPTION_URL)  # the plan snapshot is filled once per process and TTL
    count, statements = issued(count_queries, lambda: premium_client.get("/api/account/export"))
    within("GET /api/account/export", count, statements)


def test_delete_account(auth_client, count_queries):
    count, statements = issued(
        count_queries,
        lambda: auth_client.delete("/api/account", json={"currentPassword": PASSWORD}),
    )
    within("DELETE /api/account", count, statements)


# --- bcrypt stays on the paths that need it -----------------------------------------------------


@pytest.fixture
def bcrypt_calls(monkeypatch) -> list[str]:
    """Record every bcrypt hash or check made from now on."""
    calls: list[str] = []
    for name in ("hashpw", "checkpw"):
        real = getattr(bcrypt, name)

        def spy(*args, _real=real, _name=name):
            calls.append(_name)
            return _real(*args)

        monkeypatch.setattr(bcrypt, name, spy)
    return calls


def test_hot_path_never_runs_bcrypt(premium_client, client, user, bcrypt_calls):
    url = f"/api/internal/users/{user.public_id}/usage"
    premium_client.get("/api/account")
    premium_client.get(SUBSCRIPTION_URL)
    premium_client.put("/api/account", json={"preferences": {"theme": "dark"}})
    client.post(url, json={"metric": "storage", "delta": 1}, headers=INTERNAL)
    assert bcrypt_calls == []


# --- nothing is read after the commit -----------------------------------------------------------


def test_usage_write_is_one_update_returning_then_the_commit(client, user, plans, sql_and_commits):
    url = f"/api/internal/users/{user.public_id}/usage"
    with sql_and_commits() as events:
        response = client.post(url, json={"metric": "storage", "delta": 1}, headers=INTERNAL)
    assert response.status_code == 200
    assert [event.split()[0] for event in events] == ["UPDATE", "COMMIT"]
    assert "RETURNING" in events[0]


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("put", "/api/account", {"name": "Ann"}),
        ("put", "/api/account/security", {"currentPassword": PASSWORD, "twoFactorEnabled": True}),
        (
            "put",
            "/api/account/security",
            {
                "currentPassword": PASSWORD,
                "newPassword": NEW_PASSWORD,
                "confirmPassword": NEW_PASSWORD,
            },
        ),
        ("post", "/api/auth/logout", None),
    ],
)
def test_a_write_answers_from_what_it_read_before_its_commit(
    auth_client, plans, sql_and_commits, method, url, body
):
    with sql_and_commits() as events:
        response = auth_client.open(url, method=method, json=body)
    assert response.status_code == 200, response.json
    assert events[-1] == "COMMIT", events


@pytest.mark.parametrize(("action", "status"), [("create", 201), ("cancel", 200)])
def test_a_subscription_write_answers_from_what_it_read_before_its_commit(
    auth_client, plans, sql_and_commits, action, status
):
    if action == "cancel":
        subscribed(auth_client)
    with sql_and_commits() as events:
        response = subscribe(auth_client) if action == "create" else change(auth_client, "cancel")
    assert response.status_code == status, response.json
    assert events[-1] == "COMMIT", events


@pytest.mark.parametrize(
    ("path", "status"), [("/api/auth/login", 200), ("/api/auth/register", 201)]
)
def test_sign_in_answers_from_what_it_read_before_its_commit(
    app, user, plans, sql_and_commits, path, status
):
    body = {"email": user.email, "password": PASSWORD}
    if path.endswith("register"):
        body = {"email": "fresh@example.com", "password": PASSWORD, "name": "Fresh"}
    with sql_and_commits() as events:
        response = app.test_client().post(path, json=body)
    assert response.status_code == status, response.json
    assert events[-1] == "COMMIT", events


def _queued_token(kind: str) -> str:
    """The token of the newest queued link of `kind` (the mail worker has not sent it)."""
    db.session.rollback()
    return db.session.scalar(
        sa.select(OutboxMessage.link_token)
        .where(OutboxMessage.kind == kind)
        .order_by(OutboxMessage.id.desc())
    )


@pytest.mark.parametrize(
    ("kind", "url"),
    [
        ("verify_email", "/api/auth/verify-email"),
        ("email_change_confirm", "/api/account/email/confirm"),
    ],
)
def test_a_link_answers_from_what_it_read_before_its_commit(
    auth_client, plans, sql_and_commits, kind, url
):
    if kind == "verify_email":
        assert auth_client.post("/api/auth/verify-email/request").status_code == 202
    else:
        body = {"newEmail": "moved@example.com", "currentPassword": PASSWORD}
        assert auth_client.post("/api/account/email", json=body).status_code == 202
    token = _queued_token(kind)
    with sql_and_commits() as events:
        response = auth_client.post(url, json={"token": token})
    assert response.status_code == 200, response.json
    assert events[-1] == "COMMIT", events


# --- API keys -------------------------------------------------------------------------------------


def _verify(client, secret: str, **body):
    return client.post(
        "/api/internal/api-keys/verify", json={"key": secret, **body}, headers=INTERNAL
    )


@pytest.fixture
def secret(key_owner_client, plans) -> str:
    """The secret of a fresh key of `key_owner` with the scope resumes:read."""
    return api_key(key_owner_client)["secret"]


def test_verify_is_one_update_returning_then_the_commit(client, secret, sql_and_commits):
    assert _verify(client, secret).status_code == 200  # the key's first use is recorded
    with sql_and_commits() as events:
        response = _verify(client, secret, scope="resumes:read")
    assert response.status_code == 200, response.json
    assert [event.split()[0] for event in events] == ["UPDATE", "COMMIT"], events
    assert "RETURNING" in events[0] and "api_keys" in events[0]
    within("POST /api/internal/api-keys/verify", len(events) - 1, events)
    assert len(events) - 1 <= HOT_PATH_LIMIT


def test_verify_writes_last_use_once_a_minute(client, secret, sql_and_commits, frozen_clock):
    for moment, expected in [
        # The count is committed first; the last use is bookkeeping written after it.
        (frozen_clock, ["UPDATE", "COMMIT", "UPDATE", "COMMIT"]),
        (frozen_clock + timedelta(seconds=59), ["UPDATE", "COMMIT"]),
        (frozen_clock + timedelta(seconds=60), ["UPDATE", "COMMIT", "UPDATE", "COMMIT"]),
    ]:
        clock.freeze(moment)
        with sql_and_commits() as events:
            assert _verify(client, secret).status_code == 200
        assert [event.split()[0] for event in events] == expected, events
    statements = [event for event in events if event != "COMMIT"]
    within("POST /api/internal/api-keys/verify (first use)", len(statements), statements)


@pytest.mark.parametrize(
    ("body", "status"),
    [({"scope": "ai:use"}, 403), ({"key": "scv_" + "A" * 49}, 401)],
)
def test_a_refused_verify_is_the_update_and_one_select(
    client, secret, sql_and_commits, body, status
):
    with sql_and_commits() as events:
        response = _verify(client, secret, **body)
    assert response.status_code == status, response.json
    if status == 401:  # a malformed key costs no statement
        assert events == []
        return
    # The UPDATE matched no row: what it commits is nothing.
    assert [event.split()[0] for event in events] == ["UPDATE", "COMMIT", "SELECT"], events
    statements = [event for event in events if event != "COMMIT"]
    within("POST /api/internal/api-keys/verify (refused)", len(statements), statements)


def test_verify_without_counting_is_one_select(client, secret, sql_and_commits):
    _verify(client, secret)
    with sql_and_commits() as events:
        assert _verify(client, secret, count=False).status_code == 200
    statements = [event for event in events if event != "COMMIT"]
    assert [event.split()[0] for event in statements] == ["SELECT"], events
    within("POST /api/internal/api-keys/verify (count=false)", len(statements), statements)


# psycopg converts a statement's text to PostgreSQL's form on every execution unless the text
# is at most 4 KiB (its conversion cache's limit, psycopg/_queries.py); above it each call of
# the hot paths would parse several KiB of SQL again.
PSYCOPG_CACHED_TEXT = 4096


def test_the_hot_statements_stay_within_psycopgs_statement_cache(app):
    from sqlalchemy.dialects.postgresql import psycopg

    from smartcv_account.principal import LIVE_SESSION
    from smartcv_account.services import key_check, usage

    dialect = psycopg.dialect()
    statements = {
        "session check": LIVE_SESSION,
        "verify": key_check._counting(),
        **{
            f"usage {metric} {'limited' if limited else 'freeing'}": usage._update(metric, limited)
            for metric in usage.METRICS
            for limited in (True, False)
        },
    }
    for name, statement in statements.items():
        text = DriverStatement(statement, dialect).sql
        assert len(text) <= PSYCOPG_CACHED_TEXT, f"{name}: {len(text)} characters"


def test_create_api_key(key_owner_client, count_queries):
    body = {"name": "CV sync", "scopes": ["ai:use"], "currentPassword": PASSWORD}
    count, statements = issued(
        count_queries, lambda: key_owner_client.post("/api/account/api-keys", json=body), 201
    )
    within("POST /api/account/api-keys", count, statements)


def test_list_api_keys(key_owner_client, secret, count_queries):
    count, statements = issued(count_queries, lambda: key_owner_client.get("/api/account/api-keys"))
    within("GET /api/account/api-keys", count, statements)


def test_revoke_api_key(key_owner_client, count_queries):
    key_id = api_key(key_owner_client)["id"]
    count, statements = issued(
        count_queries, lambda: key_owner_client.delete(f"/api/account/api-keys/{key_id}")
    )
    within("DELETE /api/account/api-keys/<id>", count, statements)


def test_verify_never_runs_bcrypt(client, secret, bcrypt_calls):
    assert _verify(client, secret).status_code == 200
    assert bcrypt_calls == []
