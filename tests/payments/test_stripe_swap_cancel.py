"""A 3-D Secure plan change paid later withdraws a pending cancel on Stripe, as the local
gateway's swap does: `cancel_at_period_end` is not a pending-update parameter, so Stripe keeps it
when the swap's invoice is paid, and the service withdraws it on the `invoice.paid` event."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import Subscription, User
from smartcv_account.payments.base import sign_payload

from .test_stripe_create_retry import service_on
from .test_stripe_gateway_requests import stub, subscription

pytestmark = pytest.mark.slow
__all__ = ["stub"]


def test_a_paid_3ds_swap_withdraws_a_pending_cancel(app_factory, stub):
    yearly = subscription(plan_id="plan_premium_yearly", cancel_at_period_end=True)
    stub.answer("GET", "/v1/subscriptions/sub_1", yearly)
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(plan_id="plan_premium_yearly"))
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 29999})
    with service_on(app_factory, stub, STRIPE_WEBHOOK_SECRET="whsec_swap") as client:
        user = db.session.scalar(sa.select(User))
        now = clock.now()
        row = Subscription(
            public_id="sub_swap",
            user_id=user.id,
            plan_id="plan_premium_monthly",
            status="ACTIVE",
            provider_subscription_id="sub_1",
            cancel_at_period_end=True,
            pending_plan_id="plan_premium_yearly",
            created_at=now,
            updated_at=now,
        )
        db.session.add(row)
        db.session.flush()
        user.current_subscription_id = row.id
        db.session.commit()
        invoice = {"id": "in_1", "object": "invoice", "subscription": "sub_1"}
        body = json.dumps(
            {"id": "evt_paid", "type": "invoice.paid", "data": {"object": invoice}}
        ).encode()
        response = client.post(
            "/api/webhooks/stripe",
            data=body,
            content_type="application/json",
            headers={"Stripe-Signature": sign_payload(body, "whsec_swap")},
        )
        shown = client.get("/api/account/subscription").json["data"]

    assert response.status_code == 200, response.json
    (withdraw,) = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert withdraw.form["cancel_at_period_end"] == "false"
    assert (shown["plan"]["id"], shown["cancelAtPeriodEnd"]) == ("plan_premium_yearly", False)
