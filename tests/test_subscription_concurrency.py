"""Concurrent creates for one user: one subscription, one charge, the rest 409."""

import threading

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Subscription
from smartcv_account.payments.local.models import LocalSubscription

from .billing_helpers import paid_invoices, subscribe
from .factories import PASSWORD


def test_twenty_concurrent_creates_make_one_subscription_and_one_charge(app, user, plans):
    clients = []
    for _ in range(20):
        client = app.test_client()
        client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
        clients.append(client)
    statuses: list[int] = []
    barrier = threading.Barrier(len(clients))

    def create(client):
        with app.app_context():
            barrier.wait()
            statuses.append(subscribe(client).status_code)
            db.session.remove()

    threads = [threading.Thread(target=create, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(statuses) == [201] + [409] * 19
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LocalSubscription)) == 1
    assert len(paid_invoices()) == 1
