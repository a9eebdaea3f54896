"""The billing audit's smaller defects, each with a test that failed before its fix: WELCOME20 on
a second paid subscription, an uncollectible invoice's amount remaining, the renewal reminder's
amount (the Stripe one, a pending cancel kept after a 3-D Secure plan change was paid, is in
tests/payments/test_stripe_swap_cancel.py)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import OutboxMessage, Subscription
from smartcv_account.services import notices

from .billing_helpers import at, change, subscribe


def test_welcome20_is_for_a_first_paid_subscription_only(auth_client, plans, frozen_clock):
    assert subscribe(auth_client).status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    at(2025, 2, 2)
    again = subscribe(auth_client, couponCode="WELCOME20")
    assert again.status_code == 400, again.json
    assert again.json["details"] == {"field": "couponCode", "reason": "already_redeemed"}


def test_an_uncollectible_invoice_keeps_what_is_owed(auth_client, plans, frozen_clock):
    assert subscribe(auth_client).status_code == 201
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    for day in (1, 2, 4, 6):
        at(2025, 2, day)
    invoices = auth_client.get("/api/account/invoices").json["data"]
    assert (invoices[0]["status"], invoices[0]["amountRemaining"]) == ("uncollectible", 29.99)


def test_the_renewal_reminder_quotes_the_next_invoice_not_the_list_price(
    auth_client, plans, frozen_clock
):
    assert subscribe(auth_client, "plan_premium_yearly").status_code == 201
    row = db.session.scalar(sa.select(Subscription))
    row.next_invoice_amount_cents = 27000  # the provider's next invoice (a credit applied)
    db.session.commit()
    clock.freeze(row.current_period_end - timedelta(days=6))
    assert notices.remind_yearly_renewals() == 1
    reminder = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "notice_renewal_upcoming")
    )
    assert "270.00 USD" in reminder.text_body
