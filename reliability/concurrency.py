"""Scenario 3 over real HTTP: races between gunicorn workers on one PostgreSQL database.

gunicorn with 4 workers on a scratch database; each race starts its threads at one barrier.
(a) 100 usage calls at a FREE user's resumes limit of 5; (b) 20 subscription creates by one
user; (c) one signed webhook event delivered 8 times at once; (d) logins with the old password
racing a password change. The in-process pytest versions run in CI's test suite
(tests/test_usage.py, test_subscription_concurrency.py, test_webhooks.py,
test_reliability_concurrency.py).

Run: `.venv/bin/python -m reliability.concurrency` (about 20 s).
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy.pool import NullPool

from .common import (
    INTERNAL_TOKEN,
    PASSWORD,
    gunicorns,
    query,
    scratch_database,
    service_env,
    write_result,
)

NEW_PASSWORD = "violet tugboat climbs seventeen ladders"


def register(base: str) -> tuple[str, str, dict]:
    """Register a fresh user; return (email, public id, cookie header)."""
    email = f"race-{uuid.uuid4().hex[:12]}@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Race"}
    response = requests.post(base + "/api/auth/register", json=body, timeout=30)
    response.raise_for_status()
    cookie = {"Cookie": "smartcv_session=" + response.cookies["smartcv_session"]}
    return email, response.json()["data"]["id"], cookie


def login(base: str, email: str, password: str = PASSWORD) -> requests.Response:
    """POST /api/auth/login."""
    body = {"email": email, "password": password}
    return requests.post(base + "/api/auth/login", json=body, timeout=30)


def race(count: int, call) -> Counter:
    """Run `call(i)` in `count` threads released together; count the statuses."""
    barrier = threading.Barrier(count)

    def run(index: int):
        barrier.wait(30)
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return Counter(pool.map(run, range(count)))


def usage_race(base: str, url: str) -> dict:
    """100 parallel `resumes +1` for a FREE user (limit 5)."""
    _, user_id, _ = register(base)
    statuses = race(
        100,
        lambda _: (
            requests.post(
                f"{base}/api/internal/users/{user_id}/usage",
                json={"metric": "resumes", "delta": 1},
                headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"},
                timeout=30,
            ).status_code
        ),
    )
    stored = query(url, "SELECT resumes_created FROM users WHERE public_id = :id", id=user_id)
    figures = {"requests": 100, "by_status": dict(statuses), "stored": stored[0][0]}
    figures["passed"] = statuses == {200: 5, 429: 95} and stored[0][0] == 5
    return figures


def subscription_race(base: str, url: str) -> dict:
    """20 parallel creates by one user, each from its own session."""
    email, user_id, _ = register(base)
    cookies = [
        {"Cookie": "smartcv_session=" + login(base, email).cookies["smartcv_session"]}
        for _ in range(20)
    ]
    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"}
    statuses = race(
        20,
        lambda i: (
            requests.post(
                base + "/api/account/subscription", json=body, headers=cookies[i], timeout=30
            ).status_code
        ),
    )
    subscriptions = query(
        url,
        "SELECT count(*) FROM subscriptions s JOIN users u ON u.id = s.user_id"
        " WHERE u.public_id = :id",
        id=user_id,
    )[0][0]
    charges = query(
        url,
        "SELECT count(*) FROM local_invoices i JOIN local_subscriptions s"
        " ON s.id = i.subscription_id JOIN local_customers c ON c.id = s.customer_id"
        " WHERE c.user_public_id = :id AND i.status = 'paid' AND i.amount_paid > 0",
        id=user_id,
    )[0][0]
    figures = {
        "requests": 20,
        "by_status": dict(statuses),
        "subscriptions": subscriptions,
        "charges": charges,
    }
    figures["passed"] = statuses == {201: 1, 409: 19} and subscriptions == 1 and charges == 1
    return figures


def webhook_race(base: str, url: str) -> dict:
    """One signed `invoice.paid` event delivered 8 times at once."""
    from smartcv_account import create_app
    from smartcv_account.extensions import db
    from smartcv_account.payments import get_gateway

    _, user_id, cookie = register(base)
    body = {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_authenticationRequired"}
    created = requests.post(
        base + "/api/account/subscription", json=body, headers=cookie, timeout=30
    )
    created.raise_for_status()
    intent = created.json()["data"]["clientSecret"].split("_secret_")[0]
    # The customer passes 3-D Secure at the provider, which then sends its event.
    app = create_app(
        {"SQLALCHEMY_DATABASE_URI": url, "SQLALCHEMY_ENGINE_OPTIONS": {"poolclass": NullPool}}
    )
    with app.app_context():
        gateway = get_gateway()
        event = gateway.authenticate_payment(intent)
        db.session.commit()  # the provider's books; the gateway itself never commits
        signature = gateway.signed_event(event)
    answers = race(
        8,
        lambda _: requests.post(
            base + "/api/webhooks/stripe",
            data=event,
            headers={"Content-Type": "application/json", "Stripe-Signature": signature},
            timeout=30,
        ).json()["data"]["duplicate"],
    )
    status = requests.get(base + "/api/account/subscription", headers=cookie, timeout=30)
    figures = {
        "deliveries": 8,
        "applied": answers[False],
        "duplicates": answers[True],
        "subscription_status": status.json()["data"]["status"],
    }
    figures["passed"] = answers == {False: 1, True: 7} and figures["subscription_status"] == (
        "ACTIVE"
    )
    return figures


def password_race(base: str, url: str) -> dict:
    """8 threads log in with the old password while the user changes it."""
    email, _, changer = register(base)
    done = threading.Event()
    start = threading.Barrier(9)
    cookies: list[dict] = []
    attempts = Counter()

    def keep_logging_in() -> None:
        start.wait(30)
        while True:
            finished = done.is_set()
            response = login(base, email)
            attempts[response.status_code] += 1
            if response.status_code == 200:
                cookies.append({"Cookie": "smartcv_session=" + response.cookies["smartcv_session"]})
            if finished:
                return

    threads = [threading.Thread(target=keep_logging_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.wait(30)
    change = requests.put(
        base + "/api/account/security",
        json={
            "currentPassword": PASSWORD,
            "newPassword": NEW_PASSWORD,
            "confirmPassword": NEW_PASSWORD,
        },
        headers=changer,
        timeout=30,
    )
    done.set()
    for thread in threads:
        thread.join(60)
    alive = sum(
        1
        for cookie in cookies
        if requests.get(base + "/api/account", headers=cookie, timeout=30).status_code != 401
    )
    # The changer's browser carries on under the new cookie of the answer; the old one is dead.
    renewed = {"Cookie": "smartcv_session=" + change.cookies.get("smartcv_session", "")}
    changer_ok = requests.get(base + "/api/account", headers=renewed, timeout=30).status_code
    old_cookie = requests.get(base + "/api/account", headers=changer, timeout=30).status_code
    figures = {
        "login_attempts_by_status": dict(attempts),
        "sessions_obtained_with_old_password": len(cookies),
        "of_them_alive_after_change": alive,
        "password_change_status": change.status_code,
        "changers_new_session_status": changer_ok,
        "changers_old_cookie_status": old_cookie,
    }
    figures["passed"] = (
        change.status_code == 200 and alive == 0 and changer_ok == 200 and old_cookie == 401
    )
    return figures


def main() -> int:
    """Run the four races, write reliability/results/concurrency.json, return the exit status."""
    with scratch_database("race") as url, gunicorns(service_env(url), workers=4) as (g,):
        figures = {
            "scenario": "concurrency",
            "workers": 4,
            "usage_at_limit": usage_race(g.url, url),
            "subscription_creates": subscription_race(g.url, url),
            "webhook_redelivery": webhook_race(g.url, url),
            "password_change_vs_logins": password_race(g.url, url),
        }
    figures["passed"] = all(
        value["passed"] for value in figures.values() if isinstance(value, dict)
    )
    write_result("concurrency", figures)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
