"""The subscription endpoints through HTTP: shapes, actions and every error code."""

import re
from datetime import UTC, datetime

import pytest

from smartcv_account import clock
from smartcv_account.catalogue import PREMIUM_FEATURES
from smartcv_account.services import renewals

from .billing_helpers import SUBSCRIPTION_URL, change, paid_invoices, subscribe
from .helpers import subscribed

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def test_free_user_sees_the_free_plan_with_real_usage(auth_client, plans):
    data = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (data["id"], data["type"], data["status"]) == (None, "FREE", "ACTIVE")
    assert data["plan"]["id"] == "plan_free"
    assert (data["paymentMethod"], data["nextBilling"]) == (None, None)
    assert data["usage"]["resumesLimit"] == 5
    assert ISO.match(data["usage"]["resetDate"])


def test_subscription_has_the_documents_shape(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    data = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert data["id"].startswith("sub_")
    assert (data["type"], data["status"], data["cancelAtPeriodEnd"], data["trialEnd"]) == (
        "PREMIUM",
        "ACTIVE",
        False,
        None,
    )
    assert data["plan"] == {
        "id": "plan_premium_monthly",
        "name": "Premium Monthly Plan",
        "price": 29.99,
        "currency": "USD",
        "interval": "month",
        "features": PREMIUM_FEATURES,
    }
    assert data["paymentMethod"] == {
        "type": "card",
        "last4": "4242",
        "brand": "visa",
        "expiryMonth": 12,
        "expiryYear": 2028,
    }
    assert data["nextBilling"] == {
        "date": "2025-02-01T00:00:00Z",
        "amount": 29.99,
        "currency": "USD",
    }
    assert data["usage"]["resumesLimit"] == -1
    assert data["usage"]["apiRequestsLimit"] == 1000


def test_create_returns_the_documents_fields(auth_client, plans):
    data = subscribe(auth_client).json["data"]
    assert data["subscriptionId"].startswith("sub_")
    assert (data["status"], data["requiresAction"], data["nextAction"]) == ("ACTIVE", False, None)
    assert data["clientSecret"].startswith("pi_")


def test_account_reflects_the_paid_plan(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["subscriptionStatus"]) == ("PREMIUM", "ACTIVE")
    assert account["subscriptionExpiresAt"] == "2025-02-01T00:00:00Z"
    assert (account["resumesLimit"], account["apiRequestsLimit"]) == (-1, 1000)


@pytest.mark.parametrize(
    ("card", "brand", "last4"),
    [("pm_card_mastercard", "mastercard", "4444"), ("pm_card_amex", "amex", "8431")],
)
def test_other_test_cards_succeed(auth_client, plans, card, brand, last4):
    assert subscribe(auth_client, payment_method=card).status_code == 201
    method = auth_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]
    assert (method["brand"], method["last4"]) == (brand, last4)


@pytest.mark.parametrize(
    ("card", "decline_code"),
    [
        ("pm_card_chargeDeclined", "generic_decline"),
        ("pm_card_chargeDeclinedInsufficientFunds", "insufficient_funds"),
        ("pm_card_chargeCustomerFail", "card_declined"),
    ],
)
def test_declined_card_is_payment_failed_and_changes_nothing(
    auth_client, plans, card, decline_code
):
    response = subscribe(auth_client, payment_method=card)
    assert response.status_code == 402
    assert response.json["code"] == "PAYMENT_FAILED"
    assert response.json["details"]["declineCode"] == decline_code
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"
    assert subscribe(auth_client).status_code == 201  # the slot was not taken


def test_unknown_payment_method_is_a_validation_error(auth_client, plans):
    response = subscribe(auth_client, payment_method="pm_does_not_exist")
    assert response.status_code == 400
    assert (response.json["code"], response.json["details"]["field"]) == (
        "VALIDATION_ERROR",
        "paymentMethodId",
    )


@pytest.mark.parametrize("plan_id", ["plan_nope", "plan_free", "plan_enterprise"])
def test_plan_that_cannot_be_bought_is_plan_not_found(auth_client, plans, plan_id):
    response = subscribe(auth_client, plan_id=plan_id)
    assert (response.status_code, response.json["code"]) == (404, "PLAN_NOT_FOUND")


def test_unknown_coupon_is_invalid_coupon(auth_client, plans):
    response = subscribe(auth_client, couponCode="NOPE")
    assert (response.status_code, response.json["code"]) == (400, "INVALID_COUPON")
    assert response.json["details"]["field"] == "couponCode"


def test_second_create_is_subscription_already_exists(premium_client):
    response = subscribe(premium_client, plan_id="plan_premium_yearly")
    assert (response.status_code, response.json["code"]) == (409, "SUBSCRIPTION_ALREADY_EXISTS")
    assert len(paid_invoices()) == 1


@pytest.mark.parametrize(
    "body",
    [
        {"planId": "plan_premium_monthly"},
        {"paymentMethodId": "pm_card_visa"},
        {"planId": 5, "paymentMethodId": "pm_card_visa"},
        {"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa", "status": "ACTIVE"},
    ],
)
def test_create_rejects_malformed_bodies(auth_client, plans, body):
    response = auth_client.post(SUBSCRIPTION_URL, json=body)
    assert (response.status_code, response.json["code"]) == (400, "VALIDATION_ERROR")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"


def test_subscription_endpoints_need_a_session(client, plans):
    for method in (client.get, client.post, client.put):
        response = method(SUBSCRIPTION_URL, json={})
        assert (response.status_code, response.json["code"]) == (401, "UNAUTHORIZED")


def test_change_without_subscription_is_subscription_not_found(auth_client, plans):
    response = change(auth_client, "cancel")
    assert (response.status_code, response.json["code"]) == (404, "SUBSCRIPTION_NOT_FOUND")


@pytest.mark.parametrize(
    ("start", "action", "target"),
    [
        ("plan_premium_monthly", "upgrade", "plan_premium_monthly"),
        ("plan_premium_yearly", "upgrade", "plan_premium_monthly"),
        ("plan_premium_monthly", "downgrade", "plan_premium_yearly"),
        ("plan_premium_monthly", "downgrade", "plan_free"),
    ],
)
def test_wrong_direction_is_invalid_plan_change(auth_client, plans, start, action, target):
    subscribe(auth_client, plan_id=start)
    response = change(auth_client, action, planId=target)
    assert (response.status_code, response.json["code"]) == (409, "INVALID_PLAN_CHANGE")
    assert len(paid_invoices()) == 1


def test_upgrade_to_unknown_plan_is_plan_not_found(premium_client):
    response = change(premium_client, "upgrade", planId="plan_gold")
    assert (response.status_code, response.json["code"]) == (404, "PLAN_NOT_FOUND")


def test_upgrade_needs_a_plan_id(premium_client):
    response = change(premium_client, "upgrade")
    assert response.json["details"]["field"] == "planId"


def test_unknown_action_is_a_validation_error(auth_client, plans):
    response = change(auth_client, "pause")
    assert (response.status_code, response.json["details"]["field"]) == (400, "action")


def test_unknown_proration_behavior_is_a_validation_error(premium_client):
    response = change(
        premium_client, "upgrade", planId="plan_premium_yearly", prorationBehavior="x"
    )
    assert response.json["details"]["field"] == "prorationBehavior"


def test_upgrade_applies_at_once(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    data = change(auth_client, "upgrade", planId="plan_premium_yearly").json["data"]
    assert (data["status"], data["effectiveDate"]) == ("ACTIVE", "2025-01-01T00:00:00Z")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["plan"]["id"] == "plan_premium_yearly"


def test_declined_upgrade_changes_nothing(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    response = change(auth_client, "upgrade", planId="plan_premium_yearly")
    assert (response.status_code, response.json["code"]) == (402, "PAYMENT_FAILED")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["plan"]["id"] == "plan_premium_monthly"


def test_cancel_keeps_access_to_period_end(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    data = change(auth_client, "cancel").json["data"]
    assert data["effectiveDate"] == "2025-02-01T00:00:00Z"
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["status"], view["cancelAtPeriodEnd"], view["nextBilling"]) == (
        "ACTIVE",
        True,
        None,
    )
    assert auth_client.get("/api/account").json["data"]["resumesLimit"] == -1


def test_cancel_takes_effect_at_period_end(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "cancel")
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    view = auth_client.get(SUBSCRIPTION_URL).json["data"]
    assert (view["type"], view["id"]) == ("FREE", None)
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionType"], account["subscriptionStatus"]) == ("FREE", "CANCELED")
    assert account["resumesLimit"] == 5
    assert len(paid_invoices()) == 1


def test_reactivate_undoes_a_pending_cancel(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "cancel")
    assert change(auth_client, "reactivate").status_code == 200
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    renewals.run_due_work()
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "ACTIVE"
    assert len(paid_invoices()) == 2


def test_reactivate_without_pending_cancel_is_invalid_plan_change(premium_client):
    response = change(premium_client, "reactivate")
    assert (response.status_code, response.json["code"]) == (409, "INVALID_PLAN_CHANGE")


def test_plan_change_clears_a_pending_cancel(premium_client):
    change(premium_client, "cancel")
    change(premium_client, "upgrade", planId="plan_premium_yearly")
    assert premium_client.get(SUBSCRIPTION_URL).json["data"]["cancelAtPeriodEnd"] is False


def test_update_payment_method_swaps_the_card(premium_client):
    response = change(premium_client, "update_payment_method", paymentMethodId="pm_card_mastercard")
    assert response.status_code == 200
    method = premium_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]
    assert (method["brand"], method["last4"]) == ("mastercard", "4444")


def test_update_payment_method_with_declining_card_keeps_the_old_one(premium_client):
    response = change(
        premium_client, "update_payment_method", paymentMethodId="pm_card_chargeDeclined"
    )
    assert response.status_code == 402
    assert premium_client.get(SUBSCRIPTION_URL).json["data"]["paymentMethod"]["last4"] == "4242"


def test_failed_renewal_is_past_due_with_free_limits(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    renewals.run_due_work()
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "PAST_DUE"
    account = auth_client.get("/api/account").json["data"]
    assert (account["subscriptionStatus"], account["resumesLimit"]) == ("PAST_DUE", 5)


def test_new_card_settles_a_past_due_subscription(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    renewals.run_due_work()
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_visa")
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["status"] == "ACTIVE"
    assert [invoice.amount_paid for invoice in paid_invoices()] == [2999, 2999]


def test_unpaid_for_a_whole_period_ends_the_subscription(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "update_payment_method", paymentMethodId="pm_card_chargeCustomerFail")
    clock.freeze(datetime(2025, 3, 1, tzinfo=UTC))
    renewals.run_due_work()
    assert auth_client.get(SUBSCRIPTION_URL).json["data"]["type"] == "FREE"
    assert auth_client.get("/api/account").json["data"]["subscriptionStatus"] == "CANCELED"


def test_after_cancel_a_new_subscription_can_start(auth_client, plans, frozen_clock):
    subscribed(auth_client)
    change(auth_client, "cancel")
    clock.freeze(datetime(2025, 2, 1, tzinfo=UTC))
    assert subscribe(auth_client, plan_id="plan_premium_yearly").status_code == 201
