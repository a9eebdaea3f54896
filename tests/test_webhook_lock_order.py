"""A webhook delivery locks the subscription's user before the subscription, as every write does.

An account deletion locks the user's row and then cancels the user's subscription; a delivery
that locked the subscription first and then needed the user would deadlock with it on
PostgreSQL. Row locks are PostgreSQL's: on SQLite one writer at a time holds the whole database.
"""

import threading
import time

import pytest
import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.models import Subscription, User
from smartcv_account.payments import get_gateway

from .billing_helpers import authenticate, deliver, subscribe


@pytest.fixture
def postgres(app):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's: set DATABASE_URL to a PostgreSQL URL")


def test_a_delivery_waits_for_the_users_lock_before_locking_the_subscription(
    app, auth_client, plans, postgres
):
    created = subscribe(auth_client, payment_method="pm_card_authenticationRequired").json["data"]
    gateway = get_gateway()
    body = authenticate(gateway, created["clientSecret"].split("_secret_")[0])
    signature = gateway.signed_event(body)
    account_id = auth_client.get("/api/account").json["data"]["id"]
    user_id = db.session.scalar(sa.select(User.id).where(User.public_id == account_id))
    subscription_id = db.session.scalar(
        sa.select(Subscription.id).where(Subscription.user_id == user_id)
    )
    db.session.commit()
    answers = []

    def post():
        with app.app_context():
            answers.append(deliver(app.test_client(), body, signature).status_code)

    holder = db.engine.connect()
    try:
        # What a deletion holds first: the user's row.
        holder.execute(
            sa.update(User)
            .where(User.id == user_id)
            .values(credential_version=User.credential_version)
        )
        delivery = threading.Thread(target=post)
        delivery.start()
        time.sleep(1.0)
        assert delivery.is_alive(), "the delivery went ahead while another held the user's lock"
        with db.engine.connect() as probe:
            # The subscription is free for the deletion to take next: nobody holds it.
            probe.execute(
                sa.select(Subscription.id)
                .where(Subscription.id == subscription_id)
                .with_for_update(nowait=True)
            )
            probe.rollback()
    finally:
        holder.rollback()
        holder.close()
    delivery.join(timeout=30)
    assert answers == [200]
    status = db.session.scalar(
        sa.select(Subscription.status).where(Subscription.id == subscription_id)
    )
    assert status == "ACTIVE"
