"""Races the other suites leave open: out-of-order provider events, and logins racing a
password change.

The rest of the concurrency scenarios already have their own tests, named in
docs/reliability.md: 100 parallel usage calls at a limit (test_usage.py), 20 parallel creates
(test_subscription_concurrency.py), one event delivered 8 times at once (test_webhooks.py).
"""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Subscription
from smartcv_account.payments import get_gateway
from smartcv_account.services import credentials

from .billing_helpers import SUBSCRIPTION_URL, deliver
from .helpers import NEW_PASSWORD, change_password, login

# --- out-of-order subscription events -------------------------------------------------------


@pytest.mark.parametrize("final_cancel", [False, True], ids=["reactivated", "canceled"])
def test_out_of_order_events_end_in_the_provider_state(app, premium_client, final_cancel):
    provider_id = db.session.scalar(sa.select(Subscription.provider_subscription_id))
    gateway = get_gateway()
    # The customer changes their mind twice at the provider (Stripe's portal, say); each change
    # emits an event whose payload is a snapshot of that moment.
    events = []
    for cancel in (not final_cancel, final_cancel):
        gateway.set_cancel_at_period_end(provider_id, cancel)
        db.session.commit()  # the provider's books; the gateway only flushes
        snapshot = {"object": "subscription", "id": provider_id, "cancel_at_period_end": cancel}
        events.append(gateway.event_body("customer.subscription.updated", snapshot))
    older, newer = events

    for body in (newer, older):  # the network delivers the newer event first
        response = deliver(premium_client, body, gateway.signed_event(body))
        assert response.status_code == 200, response.json

    view = premium_client.get(SUBSCRIPTION_URL).json["data"]
    assert view["cancelAtPeriodEnd"] is final_cancel
    assert gateway.retrieve_subscription(provider_id).cancel_at_period_end is final_cancel


# --- a password change racing logins ---------------------------------------------------------


def test_a_password_change_waits_for_a_login_that_checked_the_old_password_and_ends_it(
    app, user, auth_client, monkeypatch
):
    """The worst interleaving, forced: a login checks the old password, a change starts."""
    checked, release = threading.Event(), threading.Event()
    real_check = credentials.check_password

    def check_then_stall(password: str, password_hash: str) -> bool:
        """Hold the racing login between its password check and its session insert."""
        matched = real_check(password, password_hash)
        if threading.current_thread().name == "racing-login":
            checked.set()
            release.wait(30)
        return matched

    monkeypatch.setattr(credentials, "check_password", check_then_stall)
    email = user.email
    db.session.rollback()  # hold no transaction open while the requests race
    racer = app.test_client()
    answers = {}
    racing = threading.Thread(
        target=lambda: answers.setdefault("login", login(racer, email)), name="racing-login"
    )
    changing = threading.Thread(
        target=lambda: answers.setdefault("change", change_password(auth_client)), name="change"
    )
    racing.start()
    try:
        assert checked.wait(30)
        changing.start()
        changing.join(0.3)
        assert changing.is_alive()  # the login holds the account's lock: the change waits
    finally:
        release.set()
        racing.join(30)
        changing.join(30)

    assert answers["login"].status_code == 200  # it saw the old password, so it was let in
    assert answers["change"].status_code == 200
    assert racer.get("/api/account").status_code == 401  # ...and the change ended its session
    assert auth_client.get("/api/account").status_code == 200  # the changer's session stays


def test_logins_racing_a_password_change_leave_only_the_changers_session(app, user, auth_client):
    email = user.email
    db.session.rollback()
    done, first_in = threading.Event(), threading.Event()
    start = threading.Barrier(9)
    sessions: list = []
    lock = threading.Lock()

    def keep_logging_in() -> None:
        """Log in with the old password until the change is over, keeping every session."""
        start.wait(30)
        while True:
            finished = done.is_set()
            client = app.test_client()
            if login(client, email).status_code == 200:
                with lock:
                    sessions.append(client)
                first_in.set()
            if finished:
                return

    threads = [threading.Thread(target=keep_logging_in) for _ in range(8)]
    for thread in threads:
        thread.start()
    start.wait(30)
    # Logins and the change take the account's lock in turn: the change starts once one login
    # got in, while the others keep racing it.
    assert first_in.wait(30)
    try:
        assert change_password(auth_client).status_code == 200
    finally:
        done.set()
        for thread in threads:
            thread.join(60)

    alive = [client for client in sessions if client.get("/api/account").status_code != 401]
    assert alive == []
    assert auth_client.get("/api/account").status_code == 200
    assert login(app.test_client(), email, NEW_PASSWORD).status_code == 200
