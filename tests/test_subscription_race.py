"""Concurrent changes of one subscription through gunicorn (2 workers): one change at a time.

Each race is repeated on a fresh user. The database is a temporary SQLite file, or the
PostgreSQL database of DATABASE_URL, migrated with `flask --app wsgi db upgrade`.
"""

from __future__ import annotations

import threading
import uuid

import pytest
import requests
import sqlalchemy as sa

from .gunicorn_helpers import flask_cli, gunicorns, service_env

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
RACERS = 8
REPEATS = 3


@pytest.fixture
def service(served_database):
    """A gunicorn with 2 workers on the seeded database; yields (base URL, database engine)."""
    env = service_env(served_database)
    flask_cli(env, "seed-plans")
    engine = sa.create_engine(served_database.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with gunicorns(env, workers=2) as (instance,):
            yield instance.url, engine
    finally:
        engine.dispose()


def _subscriber(base_url: str, plan_id: str) -> requests.Session:
    """Register a fresh user and subscribe them to `plan_id` with pm_card_visa."""
    client = requests.Session()
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Race"}
    assert client.post(base_url + "/api/auth/register", json=body, timeout=10).status_code == 201
    body = {"planId": plan_id, "paymentMethodId": "pm_card_visa"}
    created = client.post(base_url + "/api/account/subscription", json=body, timeout=10)
    assert created.status_code == 201, created.text
    client.close()
    return client


def _race(base_url: str, cookies, bodies: list[dict]) -> list[requests.Response]:
    """Send the PUT bodies at once, each from its own connection with the same session."""
    answers: list[requests.Response] = []
    barrier = threading.Barrier(len(bodies))

    def put(body: dict) -> None:
        with requests.Session() as session:
            session.cookies.update(cookies)
            barrier.wait()
            url = base_url + "/api/account/subscription"
            answers.append(session.put(url, json=body, timeout=30))

    threads = [threading.Thread(target=put, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def _books(engine, cookie_user_sub: str) -> dict:
    """Return our row and the local provider's books for one subscription."""
    with engine.connect() as connection:
        ours = connection.execute(
            sa.text(
                "SELECT plan_id, cancel_at_period_end, payment_method_id, "
                "provider_subscription_id FROM subscriptions WHERE public_id = :id"
            ),
            {"id": cookie_user_sub},
        ).one()
        theirs = connection.execute(
            sa.text(
                "SELECT plan_id, cancel_at_period_end, default_payment_method_id "
                "FROM local_subscriptions WHERE id = :id"
            ),
            {"id": ours.provider_subscription_id},
        ).one()
        invoices = connection.execute(
            sa.text(
                "SELECT count(*) FROM local_invoices WHERE subscription_id = :id "
                "AND billing_reason = 'subscription_update' AND status = 'paid'"
            ),
            {"id": ours.provider_subscription_id},
        ).scalar_one()
    return {"ours": tuple(ours)[:3], "theirs": tuple(theirs), "update_invoices": invoices}


@pytest.mark.parametrize(
    ("start", "action", "target"),
    [
        ("plan_premium_monthly", "upgrade", "plan_premium_yearly"),
        ("plan_premium_yearly", "downgrade", "plan_premium_monthly"),
    ],
)
def test_identical_concurrent_plan_changes_make_one_change_and_one_invoice(
    service, start, action, target
):
    base_url, engine = service
    for _ in range(REPEATS):
        client = _subscriber(base_url, start)
        body = {"action": action, "planId": target}
        answers = _race(base_url, client.cookies, [body] * RACERS)
        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200] + [409] * (RACERS - 1), [a.text for a in answers]
        assert {a.json()["code"] for a in answers if a.status_code == 409} == {
            "INVALID_PLAN_CHANGE"
        }
        sub_id = next(a.json()["data"]["subscriptionId"] for a in answers if a.ok)
        books = _books(engine, sub_id)
        assert books["update_invoices"] == 1
        assert books["ours"] == books["theirs"]
        assert books["ours"][0] == target


def test_mixed_concurrent_changes_leave_our_row_equal_to_the_providers_books(service):
    base_url, engine = service
    bodies = [
        {"action": "cancel"},
        {"action": "upgrade", "planId": "plan_premium_yearly"},
        {"action": "cancel"},
        {"action": "update_payment_method", "paymentMethodId": "pm_card_mastercard"},
    ]
    for _ in range(REPEATS):
        client = _subscriber(base_url, "plan_premium_monthly")
        answers = _race(base_url, client.cookies, bodies)
        # Each change applies in turn: a cancel at period end leaves the plan open to change.
        assert [answer.status_code for answer in answers] == [200] * len(bodies), [
            a.text for a in answers
        ]
        sub_id = client.get(base_url + "/api/account/subscription", timeout=10).json()["data"]
        books = _books(engine, sub_id["id"])
        assert books["ours"] == books["theirs"]
        assert books["update_invoices"] == 1
