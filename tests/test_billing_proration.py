"""Proration and invoices, to the cent and the second, with the clock pinned.

Amounts are what Stripe bills: unused time on the old price is credited and, on the same
interval, the new price is charged for the time left; a new interval starts a new period now
and charges the new price in full. Each line rounds half up to the cent.
"""

from datetime import UTC, datetime

import pytest

from smartcv_account import clock

from .billing_helpers import add_monthly_plan, at, change, paid_invoices, subscribe

JAN_1 = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture
def monthly(auth_client, plans, frozen_clock):
    """A user who subscribed to Premium Monthly on 2025-01-01T00:00:00Z."""
    assert subscribe(auth_client).status_code == 201
    return auth_client


def test_first_invoice_charges_the_plan_price(monthly):
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]


def test_coupon_takes_twenty_percent_off_the_first_invoice_only(auth_client, plans, frozen_clock):
    assert subscribe(auth_client, couponCode="WELCOME20").status_code == 201
    at(2025, 2, 1)
    auth_client.get("/api/account/subscription")
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2399, 2999]


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        ((2025, 1, 1), 270.0),  # 29999 - 2999: nothing of the month used
        ((2025, 1, 16, 12), 284.99),  # half the month left: credit 1499.5 -> 1500
        ((2025, 1, 31), 299.02),  # one day of 31 left: credit 2999/31 = 96.74 -> 97
    ],
)
def test_monthly_to_yearly_bills_the_year_less_unused_month(monthly, moment, expected):
    at(*moment)
    response = change(monthly, "upgrade", planId="plan_premium_yearly")
    assert response.status_code == 200, response.json
    assert response.json["data"]["prorationAmount"] == expected


def test_new_interval_starts_a_new_period_now(monthly):
    at(2025, 1, 16, 12)
    change(monthly, "upgrade", planId="plan_premium_yearly")
    view = monthly.get("/api/account/subscription").json["data"]
    assert (view["currentPeriodStart"], view["currentPeriodEnd"]) == (
        "2025-01-16T12:00:00Z",
        "2026-01-16T12:00:00Z",
    )


def test_same_interval_keeps_the_period_and_bills_the_difference_for_time_left(monthly):
    add_monthly_plan()
    at(2025, 1, 11)  # 21 of 31 days left
    response = change(monthly, "upgrade", planId="plan_test_pro_monthly")
    # charge 4999 * 21/31 = 3386.42 -> 3386; credit 2999 * 21/31 = 2031.58 -> 2032
    assert response.json["data"]["prorationAmount"] == 13.54
    view = monthly.get("/api/account/subscription").json["data"]
    assert view["currentPeriodEnd"] == "2025-02-01T00:00:00Z"


def test_downgrade_yearly_to_monthly_is_a_credit(auth_client, plans, frozen_clock):
    subscribe(auth_client, plan_id="plan_premium_yearly")
    at(2025, 7, 2)  # 183 of 365 days left
    response = change(auth_client, "downgrade", planId="plan_premium_monthly")
    # credit 29999 * 183/365 = 15040.55 -> 15041; new month 2999
    assert response.json["data"]["prorationAmount"] == -120.42


def test_downgrade_credit_pays_the_following_renewals(auth_client, plans, frozen_clock):
    subscribe(auth_client, plan_id="plan_premium_yearly")
    at(2025, 7, 2)
    change(auth_client, "downgrade", planId="plan_premium_monthly")
    at(2025, 9, 2)  # two renewals, both covered by the 120.42 credit
    auth_client.get("/api/account/subscription")
    assert [invoice.amount_paid for invoice in paid_invoices()] == [29999]


def test_proration_none_across_intervals_bills_the_new_period_now_without_credit(monthly):
    at(2025, 1, 16, 12)
    response = change(monthly, "upgrade", planId="plan_premium_yearly", prorationBehavior="none")
    data = response.json["data"]
    assert (data["prorationAmount"], data["amountDueNow"]) == (299.99, 299.99)
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 29999]
    view = monthly.get("/api/account/subscription").json["data"]
    assert (view["plan"]["id"], view["currentPeriodEnd"]) == (
        "plan_premium_yearly",
        "2026-01-16T12:00:00Z",
    )


def test_proration_none_on_the_same_interval_bills_nothing_and_the_new_price_next(monthly):
    add_monthly_plan()
    at(2025, 1, 11)
    response = change(monthly, "upgrade", planId="plan_test_pro_monthly", prorationBehavior="none")
    assert (response.json["data"]["prorationAmount"], response.json["data"]["amountDueNow"]) == (
        0,
        0,
    )
    at(2025, 2, 1)
    monthly.get("/api/account/subscription")
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 4999]


def test_create_prorations_on_the_same_interval_leaves_the_proration_for_the_next_invoice(
    monthly,
):
    add_monthly_plan()
    at(2025, 1, 11)
    response = change(monthly, "upgrade", planId="plan_test_pro_monthly")
    assert (response.json["data"]["prorationAmount"], response.json["data"]["amountDueNow"]) == (
        13.54,
        0,
    )
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999]
    view = monthly.get("/api/account/subscription").json["data"]
    assert view["nextBilling"]["amount"] == 63.53  # 49.99 + 13.54
    at(2025, 2, 1)
    monthly.get("/api/account/subscription")
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 6353]


def test_interval_change_reports_what_it_charged_now(monthly):
    response = change(monthly, "upgrade", planId="plan_premium_yearly")
    assert (response.json["data"]["prorationAmount"], response.json["data"]["amountDueNow"]) == (
        270,
        270,
    )


def test_always_invoice_charges_the_proration_now(monthly):
    add_monthly_plan()
    at(2025, 1, 11)
    response = change(
        monthly, "upgrade", planId="plan_test_pro_monthly", prorationBehavior="always_invoice"
    )
    assert response.json["data"]["amountDueNow"] == 13.54
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 1354]


def test_renewal_charges_the_next_period_on_time(monthly):
    at(2025, 2, 1)
    view = monthly.get("/api/account/subscription").json["data"]
    assert (view["currentPeriodStart"], view["currentPeriodEnd"]) == (
        "2025-02-01T00:00:00Z",
        "2025-03-01T00:00:00Z",
    )
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 2999]


def test_month_end_anchor_clamps_like_stripe(auth_client, plans):
    clock.freeze(datetime(2025, 1, 31, 9, 30, tzinfo=UTC))
    subscribe(auth_client)
    at(2025, 2, 28, 9, 30)
    view = auth_client.get("/api/account/subscription").json["data"]
    assert (view["currentPeriodStart"], view["currentPeriodEnd"]) == (
        "2025-02-28T09:30:00Z",
        "2025-03-31T09:30:00Z",
    )
