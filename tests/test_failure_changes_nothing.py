"""A failure answer means nothing changed: the answer is built before the change is committed,
so a database failure while building it (a connection lost) leaves no change behind."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from smartcv_account.api import account as account_api
from smartcv_account.api import internal as internal_api
from smartcv_account.api import subscription as subscription_api
from smartcv_account.extensions import db
from smartcv_account.models import Subscription, User

from .billing_helpers import SUBSCRIPTION_URL
from .helpers import post_usage, stored


class FailingDump:
    """A schema whose dump fails as a lost database connection does."""

    def dump(self, *_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))


def _fail(*_args, **_kwargs):
    FailingDump().dump()


@pytest.mark.parametrize("key", [None, "with-a-key"], ids=["plain", "idempotent"])
def test_usage(client, user, monkeypatch, assert_error, key):
    monkeypatch.setattr(internal_api.usage_schema, "dump", _fail)
    headers = {"Idempotency-Key": key} if key else {}
    response = client.post(
        f"/api/internal/users/{user.public_id}/usage",
        json={"metric": "resumes", "delta": 1},
        headers={"Authorization": "Bearer test-internal-token", **headers},
    )
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    assert stored(user.public_id)[0] == 0
    monkeypatch.undo()
    assert post_usage(client, user.public_id, {"metric": "resumes", "delta": 1}).status_code == 200


@pytest.mark.parametrize("key", [None, "with-a-key"], ids=["plain", "idempotent"])
def test_subscription_create(auth_client, plans, monkeypatch, assert_error, key):
    monkeypatch.setattr(subscription_api.subscription_created_schema, "dump", _fail)
    headers = {"Idempotency-Key": key} if key else {}
    response = auth_client.post(
        SUBSCRIPTION_URL,
        json={"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"},
        headers=headers,
    )
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    db.session.rollback()
    live = sa.select(sa.func.count()).where(Subscription.status == "ACTIVE")
    assert db.session.scalar(live) == 0


def test_subscription_change(premium_client, monkeypatch, assert_error):
    monkeypatch.setattr(subscription_api.subscription_changed_schema, "dump", _fail)
    response = premium_client.put(SUBSCRIPTION_URL, json={"action": "cancel"})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    db.session.rollback()
    assert db.session.scalar(sa.select(Subscription.cancel_at_period_end)) is False


def test_account_update(auth_client, user, monkeypatch, assert_error):
    before = user.name
    monkeypatch.setattr(account_api.account_schema, "dump", _fail)
    response = auth_client.put("/api/account", json={"name": "Changed"})
    assert_error(response, 503, "SERVICE_UNAVAILABLE")
    db.session.rollback()
    assert db.session.scalar(sa.select(User.name).where(User.id == user.id)) == before
