"""The exact requests StripeGateway sends, for what localstripe can't check.

The gateway talks to a recording HTTP server on 127.0.0.1 that answers with Stripe-format JSON
written here (API version 2025-02-24.acacia unless a test says otherwise). Covered: coupons as
`discounts`, proration previews and plan swaps with `proration_behavior`, idempotency keys on
creates, the pinned `Stripe-Version`, error mapping, and the shapes of newer API versions.
"""

from __future__ import annotations

import json
import socket
import time
from types import SimpleNamespace

import pytest

from smartcv_account.payments.base import (
    CardDetails,
    GatewayError,
    GatewayUnavailable,
    InvalidSignature,
    PaymentDeclined,
    UnknownPaymentMethod,
    sign_payload,
)
from smartcv_account.payments.stripe import STRIPE_API_VERSION, StripeGateway

from .conftest import catalogue_coupons, catalogue_plans, plan

pytestmark = pytest.mark.slow

SECRET = "whsec_request_tests"
NOW = int(time.time())
DAY = 86400
PERIOD_START = NOW - 10 * DAY
PERIOD_END = PERIOD_START + 30 * DAY
VISA = CardDetails("pm_visa", "card", "visa", "4242", 12, 2034)
WELCOME20 = next(c for c in catalogue_coupons() if c.code == "WELCOME20")
# A second monthly plan, for same-interval swaps.
PRO_MONTHLY = SimpleNamespace(
    id="plan_test_pro_monthly", name="Pro", price_cents=4999, currency="USD", interval="month"
)


@pytest.fixture
def stub(recording_server):
    """The recording server standing in for api.stripe.com."""
    return recording_server


@pytest.fixture
def gateway(stub):
    """A StripeGateway pointed at the stub."""
    instance = StripeGateway("sk_test_stub", stub.url, SECRET)
    yield instance
    instance.close()


# Stripe-format objects


def stripe_error(status_type: str, message: str, **fields) -> dict:
    """Return Stripe's error envelope."""
    return {"error": {"type": status_type, "message": message, **fields}}


def payment_method(pm_id="pm_visa", brand="visa", last4="4242") -> dict:
    """Return a card PaymentMethod."""
    card = {"brand": brand, "last4": last4, "exp_month": 12, "exp_year": 2034}
    return {"id": pm_id, "object": "payment_method", "type": "card", "card": card}


def intent(status="succeeded", **fields) -> dict:
    """Return a PaymentIntent."""
    return {
        "id": "pi_1",
        "object": "payment_intent",
        "status": status,
        "client_secret": "pi_1_secret_abc",
        "next_action": None,
        "last_payment_error": None,
        "invoice": "in_1",
        **fields,
    }


def invoice(total=2999, payment_intent=None, **fields) -> dict:
    """Return an invoice, its payment intent expanded."""
    return {
        "id": "in_1",
        "object": "invoice",
        "status": "paid" if payment_intent is None else "open",
        "subscription": "sub_1",
        "total": total,
        "amount_due": total,
        "payment_intent": payment_intent or intent(),
        **fields,
    }


def subscription(
    status="active", plan_id="plan_premium_monthly", latest_invoice=None, basil=False, **fields
) -> dict:
    """Return a subscription as retrieved with the gateway's expansions.

    `basil=True` gives the shape of API 2025-03-31 and later: periods on the item.
    """
    period = {"current_period_start": PERIOD_START, "current_period_end": PERIOD_END}
    interval = "year" if plan_id.endswith("yearly") else "month"
    item = {
        "id": "si_1",
        "object": "subscription_item",
        "plan": {"id": plan_id, "interval": interval},
    }
    customer = {
        "id": "cus_1",
        "object": "customer",
        "invoice_settings": {"default_payment_method": payment_method()},
    }
    body = {
        "id": "sub_1",
        "object": "subscription",
        "status": status,
        "customer": customer,
        "cancel_at_period_end": False,
        "trial_end": None,
        "items": {"object": "list", "data": [{**item, **(period if basil else {})}]},
        "latest_invoice": latest_invoice or invoice(),
        **({} if basil else period),
        **fields,
    }
    return body


def line(amount, start, end, proration) -> dict:
    """Return an invoice line item."""
    return {
        "object": "line_item",
        "amount": amount,
        "proration": proration,
        "period": {"start": start, "end": end},
    }


def preview(*lines) -> dict:
    """Return a preview invoice holding `lines`."""
    return {
        "object": "invoice",
        "lines": {"object": "list", "data": list(lines), "has_more": False},
        "total": sum(item["amount"] for item in lines),
    }


# Versions, keys, customers


def test_every_request_sends_the_pinned_stripe_version(gateway, stub):
    """The API version is pinned on every call, whatever the library's default."""
    stub.answer("POST", "/v1/customers", {"id": "cus_1", "object": "customer"})
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())

    gateway.ensure_customer("usr_1", "a@example.com", None)
    gateway.retrieve_subscription("sub_1")

    # The retrieve also asks for the upcoming invoice (404 here): three requests.
    assert [r.headers["stripe-version"] for r in stub.requests] == [STRIPE_API_VERSION] * 3
    assert STRIPE_API_VERSION == "2025-02-24.acacia"


def test_ensure_customer_sends_metadata_and_a_key_derived_from_the_user(gateway, stub):
    """The customer carries the user id, and its create key is stable per user."""
    stub.answer("POST", "/v1/customers", {"id": "cus_1", "object": "customer"})

    gateway.ensure_customer("usr_1", "a@example.com", None)
    gateway.ensure_customer("usr_1", "a@example.com", None)
    gateway.ensure_customer("usr_2", "b@example.com", None)

    first, again, other = stub.sent("POST", "/v1/customers")
    assert first.form == {"email": "a@example.com", "metadata[user_id]": "usr_1"}
    assert first.headers["idempotency-key"] == again.headers["idempotency-key"]
    assert first.headers["idempotency-key"].startswith("smartcv-customer-usr_1-")
    assert other.headers["idempotency-key"] != first.headers["idempotency-key"]


def test_attach_sets_the_customer_default_payment_method(gateway, stub):
    """Attach, then make the card the customer's invoice default."""
    stub.answer("POST", "/v1/payment_methods/pm_visa/attach", payment_method())
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})

    card = gateway.attach_payment_method("cus_1", "pm_visa")

    assert card == VISA
    assert stub.sent("POST", "/v1/payment_methods/pm_visa/attach")[0].form == {"customer": "cus_1"}
    assert stub.sent("POST", "/v1/customers/cus_1")[0].form == {
        "invoice_settings[default_payment_method]": "pm_visa"
    }


# Subscriptions


def test_create_subscription_sends_plan_coupon_expansion_and_the_callers_key(gateway, stub):
    """A coupon goes as `discounts`; the invoice total after it comes back."""
    stub.answer("POST", "/v1/subscriptions", subscription(latest_invoice=invoice(total=2399)))

    created = gateway.create_subscription(
        "cus_1", plan("plan_premium_monthly"), VISA, WELCOME20, "sub-create-usr_1-1"
    )

    (request,) = stub.sent("POST", "/v1/subscriptions")
    assert request.form == {
        "customer": "cus_1",
        "items[0][plan]": "plan_premium_monthly",
        "discounts[0][coupon]": "WELCOME20",
        "expand[0]": "latest_invoice.payment_intent",
        "expand[1]": "customer.invoice_settings.default_payment_method",
    }
    assert request.headers["idempotency-key"] == "sub-create-usr_1-1"
    assert (created.status, created.latest_invoice_amount_cents) == ("ACTIVE", 2399)


def test_create_subscription_without_coupon_sends_no_discounts(gateway, stub):
    """No coupon, no `discounts` parameter at all."""
    stub.answer("POST", "/v1/subscriptions", subscription())

    gateway.create_subscription("cus_1", plan("plan_premium_monthly"), VISA, None, "k")

    assert not any(key.startswith("discounts") for key in stub.requests[0].form)


def test_decline_at_charge_reports_the_decline_code_and_cancels(gateway, stub):
    """The intent's decline code is raised, after the incomplete subscription is cancelled."""
    error = {"code": "card_declined", "decline_code": "insufficient_funds", "message": "No."}
    declined = intent("requires_payment_method", last_payment_error=error)
    stub.answer(
        "POST",
        "/v1/subscriptions",
        subscription("incomplete", latest_invoice=invoice(payment_intent=declined)),
    )
    stub.answer("DELETE", "/v1/subscriptions/sub_1", subscription("canceled"))

    with pytest.raises(PaymentDeclined) as caught:
        gateway.create_subscription("cus_1", plan("plan_premium_monthly"), VISA, None, "k")

    assert (caught.value.decline_code, caught.value.message) == ("insufficient_funds", "No.")
    assert len(stub.sent("DELETE", "/v1/subscriptions/sub_1")) == 1


def test_decline_still_raised_when_the_cleanup_cancel_fails(gateway, stub):
    """A failed cleanup doesn't hide the decline (Stripe expires the leftover itself)."""
    declined = intent("requires_payment_method", last_payment_error={"code": "card_declined"})
    stub.answer(
        "POST",
        "/v1/subscriptions",
        subscription("incomplete", latest_invoice=invoice(payment_intent=declined)),
    )
    stub.answer("DELETE", "/v1/subscriptions/sub_1", stripe_error("api_error", "Down"), 500)

    with pytest.raises(PaymentDeclined) as caught:
        gateway.create_subscription("cus_1", plan("plan_premium_monthly"), VISA, None, "k")

    assert caught.value.decline_code == "card_declined"


def test_three_d_secure_returns_the_secret_and_next_action(gateway, stub):
    """An intent needing action gives INCOMPLETE with the client secret and next action."""
    action = {"type": "use_stripe_sdk", "use_stripe_sdk": {"type": "three_d_secure_redirect"}}
    waiting = intent("requires_action", next_action=action)
    stub.answer(
        "POST",
        "/v1/subscriptions",
        subscription("incomplete", latest_invoice=invoice(payment_intent=waiting)),
    )

    created = gateway.create_subscription("cus_1", plan("plan_premium_monthly"), VISA, None, "k")

    assert (created.status, created.client_secret, created.next_action) == (
        "INCOMPLETE",
        "pi_1_secret_abc",
        action,
    )


@pytest.mark.parametrize(
    ("stripe_status", "ours"),
    [
        ("active", "ACTIVE"),
        ("trialing", "TRIALING"),
        ("past_due", "PAST_DUE"),
        ("incomplete", "INCOMPLETE"),
        ("canceled", "CANCELED"),
        ("incomplete_expired", "CANCELED"),
        ("unpaid", "PAST_DUE"),
    ],
)
def test_subscription_statuses_map_to_ours(gateway, stub, stripe_status, ours):
    """Stripe's statuses map onto the service's five."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(stripe_status))

    assert gateway.retrieve_subscription("sub_1").status == ours


def test_retrieve_reads_periods_from_the_item_in_newer_api_versions(gateway, stub):
    """Since API 2025-03-31 the period is on the item; it's read from there."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(basil=True))

    found = gateway.retrieve_subscription("sub_1")

    assert found.current_period_start.timestamp() == PERIOD_START
    assert found.current_period_end.timestamp() == PERIOD_END
    assert found.payment_method == VISA


def test_cancel_at_period_end_sends_the_flag(gateway, stub):
    """Scheduling and withdrawing a cancel send `cancel_at_period_end` true and false."""
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=True))
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(cancel_at_period_end=False))

    assert gateway.set_cancel_at_period_end("sub_1", True).cancel_at_period_end
    assert not gateway.set_cancel_at_period_end("sub_1", False).cancel_at_period_end

    sent = [r.form["cancel_at_period_end"] for r in stub.sent("POST", "/v1/subscriptions/sub_1")]
    assert sent == ["true", "false"]


def test_cancel_now_twice_returns_the_cancelled_subscription(gateway, stub):
    """Stripe refuses a second cancel; the gateway reads the subscription instead."""
    stub.answer(
        "DELETE",
        "/v1/subscriptions/sub_1",
        stripe_error("invalid_request_error", "Already canceled"),
        400,
    )
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription("canceled"))

    assert gateway.cancel_now("sub_1").status == "CANCELED"


def test_update_payment_method_replaces_a_subscription_level_card(gateway, stub):
    """A per-subscription card set elsewhere would win over the customer's: it's replaced."""
    stub.answer("POST", "/v1/payment_methods/pm_mc/attach", payment_method("pm_mc", "mc", "4444"))
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(default_payment_method="pm_old"))
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(default_payment_method="pm_mc"))

    updated = gateway.update_payment_method("sub_1", "cus_1", "pm_mc")

    assert updated.payment_method.last4 == "4444"
    (request,) = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert request.form["default_payment_method"] == "pm_mc"


def test_update_payment_method_without_subscription_level_card_sets_only_the_customer(
    gateway, stub
):
    """Normally the customer's default is the one place the card is chosen."""
    stub.answer("POST", "/v1/payment_methods/pm_mc/attach", payment_method("pm_mc", "mc", "4444"))
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(default_payment_method=None))

    gateway.update_payment_method("sub_1", "cus_1", "pm_mc")

    assert stub.sent("POST", "/v1/subscriptions/sub_1") == []
    assert stub.sent("POST", "/v1/customers/cus_1")[0].form == {
        "invoice_settings[default_payment_method]": "pm_mc"
    }


# Proration previews and plan changes


def answer_interval_change(stub) -> None:
    """Monthly -> yearly: a credit for the unused month and a new yearly period from now."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(
            line(-2999, NOW, PERIOD_END, proration=True),
            line(29999, NOW, NOW + 365 * DAY, proration=False),
        ),
    )


def test_preview_proration_sends_the_swap_and_behavior(gateway, stub):
    """The preview asks about the exact swap, behaviour and moment of the change."""
    answer_interval_change(stub)
    before = int(time.time())

    gateway.preview_change("sub_1", plan("plan_premium_yearly"), "always_invoice")

    (request,) = stub.sent("POST", "/v1/invoices/create_preview")
    proration_date = int(request.form.pop("subscription_details[proration_date]"))
    assert request.form == {
        "customer": "cus_1",
        "subscription": "sub_1",
        "subscription_details[items][0][id]": "si_1",
        "subscription_details[items][0][plan]": "plan_premium_yearly",
        "subscription_details[proration_behavior]": "always_invoice",
    }
    assert before <= proration_date <= time.time()


def test_preview_of_an_interval_change_bills_the_new_period_less_the_credit(gateway, stub):
    """Monthly -> yearly bills 299.99 less the unused month, as the contract says."""
    answer_interval_change(stub)

    amount = gateway.preview_change(
        "sub_1", plan("plan_premium_yearly"), "create_prorations"
    ).proration_cents

    assert amount == 29999 - 2999


def test_preview_sums_lines_marked_as_prorations(gateway, stub):
    """Lines Stripe marks as prorations (-2999 and +29999 prorated) are summed to the cent."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(
            line(-2999, NOW, PERIOD_END, proration=True),
            line(29999, NOW, PERIOD_END, proration=True),
        ),
    )

    previewed = gateway.preview_change("sub_1", PRO_MONTHLY, "always_invoice")
    assert (previewed.proration_cents, previewed.amount_due_cents) == (27000, 27000)


def test_preview_of_a_same_interval_change_ignores_the_next_regular_period(gateway, stub):
    """The next period's full price is billed then, not by the change."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(
            line(-1999, NOW, PERIOD_END, proration=True),
            line(2999, NOW, PERIOD_END, proration=True),
            line(4999, PERIOD_END, PERIOD_END + 30 * DAY, proration=False),
        ),
    )

    amount = gateway.preview_change(
        "sub_1", plan("plan_premium_yearly"), "create_prorations"
    ).proration_cents

    assert amount == 1000


def test_preview_reads_the_proration_flag_of_newer_api_versions(gateway, stub):
    """Since API 2025-03-31 the flag is under parent.subscription_item_details."""
    newer = line(-500, NOW, PERIOD_END, proration=False)
    del newer["proration"]
    newer["parent"] = {"subscription_item_details": {"proration": True}}
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription(basil=True))
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(newer, line(2999, PERIOD_END, PERIOD_END + 30 * DAY, proration=False)),
    )

    amount = gateway.preview_change(
        "sub_1", plan("plan_premium_yearly"), "create_prorations"
    ).proration_cents

    assert amount == -500


def test_preview_on_the_same_interval_bills_nothing_now_and_the_preview_next(gateway, stub):
    """`none` and `create_prorations` on the same interval bill nothing now; the preview is
    then the next invoice itself (its amount due: the new price, prorations, less credit)."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    upcoming = preview(
        line(-1999, NOW, PERIOD_END, proration=True),
        line(3333, NOW, PERIOD_END, proration=True),
        line(4999, PERIOD_END, PERIOD_END + 30 * DAY, proration=False),
    )
    stub.answer("POST", "/v1/invoices/create_preview", {**upcoming, "amount_due": 6333})

    none = gateway.preview_change("sub_1", PRO_MONTHLY, "none")
    later = gateway.preview_change("sub_1", PRO_MONTHLY, "create_prorations")

    assert (none.proration_cents, none.amount_due_cents, none.next_billing_cents) == (0, 0, 6333)
    assert (later.proration_cents, later.amount_due_cents) == (1334, 0)
    assert later.next_billing_date.timestamp() == PERIOD_END


def test_preview_of_an_interval_change_bills_next_the_new_price_at_the_new_period_end(
    gateway, stub
):
    """A new period starts now: the next invoice is at its end, for the new price less credit."""
    answer_interval_change(stub)

    previewed = gateway.preview_change("sub_1", plan("plan_premium_yearly"), "create_prorations")

    assert previewed.next_billing_date.timestamp() == NOW + 365 * DAY
    assert previewed.next_billing_cents == 29999


def test_preview_with_no_proration_across_intervals_bills_the_new_period(gateway, stub):
    """A new interval starts a period now and bills it whatever the behaviour (no credit)."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(line(29999, NOW, NOW + 365 * DAY, proration=False)),
    )
    previewed = gateway.preview_change("sub_1", plan("plan_premium_yearly"), "none")
    assert (previewed.proration_cents, previewed.amount_due_cents) == (29999, 29999)


def test_unknown_proration_behavior_is_refused(gateway):
    """Only Stripe's three behaviours are accepted."""
    with pytest.raises(ValueError):
        gateway.preview_change("sub_1", plan("plan_premium_yearly"), "sometimes")


def test_change_plan_swaps_the_item_with_behavior_date_and_key(gateway, stub):
    """The swap names the item, the plan, the behaviour, the previewed second and the key."""
    answer_interval_change(stub)
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(plan_id="plan_premium_yearly"))

    change = gateway.change_plan(
        "sub_1", plan("plan_premium_yearly"), "always_invoice", "change-usr_1-1"
    )

    previewed = stub.sent("POST", "/v1/invoices/create_preview")[0]
    (request,) = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert request.form == {
        "items[0][id]": "si_1",
        # Stripe's pending-update allow-list names items.price, not items.plan.
        "items[0][price]": "plan_premium_yearly",
        "proration_behavior": "always_invoice",
        "proration_date": previewed.form["subscription_details[proration_date]"],
        "payment_behavior": "pending_if_incomplete",
        "expand[0]": "latest_invoice.payment_intent",
        "expand[1]": "customer.invoice_settings.default_payment_method",
    }
    assert request.headers["idempotency-key"] == "change-usr_1-1"
    assert (change.subscription.plan_id, change.proration_cents) == ("plan_premium_yearly", 27000)


def test_change_plan_without_proration_on_the_same_interval_reports_zero(gateway, stub):
    """`none` on the same interval swaps and reports zero created and billed."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer(
        "POST",
        "/v1/invoices/create_preview",
        preview(line(4999, PERIOD_END, PERIOD_END + 30 * DAY, proration=False)),
    )
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(plan_id=PRO_MONTHLY.id))

    change = gateway.change_plan("sub_1", PRO_MONTHLY, "none", "k")

    assert (change.proration_cents, change.amount_due_cents) == (0, 0)
    (request,) = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert request.form["proration_behavior"] == "none"
    assert request.form["payment_behavior"] == "pending_if_incomplete"


def pending(plan_id="plan_premium_yearly") -> dict:
    """Return a subscription's `pending_update` for a swap to `plan_id`."""
    return {
        "expires_at": NOW + 23 * 3600,
        "subscription_items": [{"id": "si_1", "plan": {"id": plan_id, "interval": "year"}}],
    }


def test_declined_swap_voids_its_invoice_and_changes_nothing(gateway, stub):
    """pending_if_incomplete + decline: the update stays pending; voiding its invoice drops it."""
    answer_interval_change(stub)
    failed = intent(
        "requires_payment_method",
        last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds"},
    )
    stub.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        subscription(
            latest_invoice=invoice(27000, failed, billing_reason="subscription_update"),
            pending_update=pending(),
        ),
    )
    stub.answer("POST", "/v1/invoices/in_1/void", invoice(27000, status="void"))

    with pytest.raises(PaymentDeclined) as raised:
        gateway.change_plan("sub_1", plan("plan_premium_yearly"), "create_prorations", "k")

    assert raised.value.decline_code == "insufficient_funds"
    assert len(stub.sent("POST", "/v1/invoices/in_1/void")) == 1


def test_swap_needing_authentication_is_pending_with_the_next_action(gateway, stub):
    """pending_if_incomplete + 3-D Secure: the plan is unchanged, the update and action shown."""
    answer_interval_change(stub)
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    stub.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        subscription(
            latest_invoice=invoice(27000, waiting, billing_reason="subscription_update"),
            pending_update=pending(),
            cancel_at_period_end=True,
        ),
    )

    change = gateway.change_plan("sub_1", plan("plan_premium_yearly"), "create_prorations", "k")

    provider = change.subscription
    assert (provider.plan_id, provider.pending_plan_id) == (
        "plan_premium_monthly",
        "plan_premium_yearly",
    )
    assert provider.pending_expires_at.timestamp() == NOW + 23 * 3600
    assert (provider.next_action, provider.client_secret) == (
        {"type": "use_stripe_sdk"},
        "pi_1_secret_abc",
    )
    assert len(stub.sent("POST", "/v1/subscriptions/sub_1")) == 1  # the cancel is left alone
    assert stub.sent("POST", "/v1/invoices/in_1/void") == []


def test_applied_swap_clears_a_pending_cancel_in_a_second_call(gateway, stub):
    """cancel_at_period_end is not a pending-update parameter: it is cleared once applied."""
    answer_interval_change(stub)
    stub.answer(
        "POST",
        "/v1/subscriptions/sub_1",
        subscription(plan_id="plan_premium_yearly", cancel_at_period_end=True),
    )
    stub.answer("POST", "/v1/subscriptions/sub_1", subscription(plan_id="plan_premium_yearly"))

    gateway.change_plan("sub_1", plan("plan_premium_yearly"), "create_prorations", "k")

    swap, keep = stub.sent("POST", "/v1/subscriptions/sub_1")
    assert "cancel_at_period_end" not in swap.form
    assert keep.form["cancel_at_period_end"] == "false"
    assert keep.headers["idempotency-key"] == "k:keep"


def test_pay_open_invoice_pays_it_with_the_callers_key(gateway, stub):
    """invoices.pay on the open invoice, keyed by the caller; the subscription is re-read."""
    waiting = intent("requires_payment_method")
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription("past_due", latest_invoice=invoice(2999, waiting)),
    )
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription("active"))
    stub.answer("POST", "/v1/invoices/in_1/pay", invoice(2999))

    paid = gateway.pay_open_invoice("sub_1", "sub_x:pay::v3")

    (request,) = stub.sent("POST", "/v1/invoices/in_1/pay")
    assert request.headers["idempotency-key"] == "sub_x:pay::v3"
    assert request.form == {"off_session": "false"}
    assert paid.status == "ACTIVE"


def test_pay_open_invoice_declined_is_payment_declined(gateway, stub):
    """A card error from invoices.pay is a decline with its code."""
    waiting = intent("requires_payment_method")
    stub.answer(
        "GET",
        "/v1/subscriptions/sub_1",
        subscription("past_due", latest_invoice=invoice(2999, waiting)),
    )
    stub.answer(
        "POST",
        "/v1/invoices/in_1/pay",
        stripe_error(
            "card_error", "Declined", code="card_declined", decline_code="generic_decline"
        ),
        status=402,
    )

    with pytest.raises(PaymentDeclined) as raised:
        gateway.pay_open_invoice("sub_1", "k")

    assert raised.value.decline_code == "generic_decline"


def test_cancel_now_of_an_incomplete_subscription_voids_its_open_invoice(gateway, stub):
    """Canceling leaves the first invoice open at Stripe; it is voided so nothing pays it later."""
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    stub.answer(
        "DELETE",
        "/v1/subscriptions/sub_1",
        subscription("canceled", latest_invoice=invoice(2999, waiting)),
    )
    stub.answer("POST", "/v1/invoices/in_1/void", invoice(2999, status="void"))

    gateway.cancel_now("sub_1", "sub_x:cancel_now::v2")

    (canceled,) = stub.sent("DELETE", "/v1/subscriptions/sub_1")
    assert canceled.headers["idempotency-key"] == "sub_x:cancel_now::v2"
    assert len(stub.sent("POST", "/v1/invoices/in_1/void")) == 1


def test_every_write_to_stripe_carries_an_idempotency_key(gateway, stub):
    """A retried request never attaches, updates, voids or cancels twice."""
    stub.answer("POST", "/v1/payment_methods/pm_visa/attach", payment_method())
    stub.answer("POST", "/v1/customers/cus_1", {"id": "cus_1", "object": "customer"})
    waiting = intent("requires_action", next_action={"type": "use_stripe_sdk"})
    stub.answer(
        "DELETE",
        "/v1/subscriptions/sub_1",
        subscription("canceled", latest_invoice=invoice(2999, waiting)),
    )
    stub.answer("POST", "/v1/invoices/in_1/void", invoice(2999, status="void"))

    gateway.attach_payment_method("cus_1", "pm_visa")
    gateway.cancel_now("sub_1", "sub_x:cancel_now::v2")
    gateway.forget_customer("cus_1", "deleted_1")

    writes = [r for r in stub.requests if r.method in ("POST", "DELETE")]
    assert len(writes) == 5
    # Derived from the intent (the library's own random key would not survive a retry of ours).
    keys = {r.path: r.headers.get("idempotency-key", "") for r in writes}
    assert all(key.startswith(("smartcv-", "sub_x:")) for key in keys.values()), keys


def test_next_invoice_amount_comes_from_the_upcoming_invoice_preview(gateway, stub):
    """The upcoming invoice (credit balance, discounts, pending prorations) is Stripe's preview."""
    stub.answer("GET", "/v1/subscriptions/sub_1", subscription())
    stub.answer("POST", "/v1/invoices/create_preview", {"object": "invoice", "amount_due": 1958})

    found = gateway.retrieve_subscription("sub_1")

    (request,) = stub.sent("POST", "/v1/invoices/create_preview")
    assert request.form == {"customer": "cus_1", "subscription": "sub_1"}
    assert found.next_invoice_amount_cents == 1958


def test_list_invoices_reads_stripes_amounts(gateway, stub):
    """Invoices keep Stripe's meanings of total, amount due, paid, remaining and discount."""
    listed = {
        "object": "list",
        "data": [
            {
                "id": "in_2",
                "number": "ABC-0002",
                "status": "open",
                "total": 2399,
                "amount_due": 2399,
                "amount_paid": 0,
                "amount_remaining": 2399,
                "total_discount_amounts": [{"amount": 600, "discount": "di_1"}],
                "currency": "usd",
                "created": NOW,
                "period_start": NOW,
                "period_end": NOW,
                "hosted_invoice_url": "https://invoice.stripe.com/i/x",
                "lines": {"data": [{"plan": {"id": "plan_premium_monthly"}}]},
            },
            {"id": "in_d", "status": "draft", "created": NOW},
        ],
    }
    stub.answer("GET", "/v1/invoices", listed)

    (found,) = gateway.list_invoices("cus_1")

    assert stub.sent("GET", "/v1/invoices")[0].query == {
        "customer": "cus_1",
        "limit": "100",
        "expand[0]": "data.charge",  # each charge's amount_refunded
    }
    assert (found.total, found.amount_remaining, found.discount, found.currency) == (
        2399,
        2399,
        600,
        "USD",
    )
    assert (found.plan_id, found.hosted_invoice_url) == (
        "plan_premium_monthly",
        "https://invoice.stripe.com/i/x",
    )


# Catalogue


def test_sync_catalogue_creates_missing_objects_with_idempotency_keys(gateway, stub):
    """Missing products, plans and coupon are created, each with a stable key."""
    for path in ("/v1/products", "/v1/plans", "/v1/coupons"):
        stub.answer("POST", path, {"id": "created"})

    gateway.sync_catalogue(catalogue_plans(), catalogue_coupons())

    products = stub.sent("POST", "/v1/products")
    plans = stub.sent("POST", "/v1/plans")
    (coupon,) = stub.sent("POST", "/v1/coupons")
    assert [p.form["id"] for p in products] == [
        "prod_plan_premium_monthly",
        "prod_plan_premium_yearly",
    ]
    assert plans[1].form == {
        "id": "plan_premium_yearly",
        "product": "prod_plan_premium_yearly",
        "nickname": "Premium Yearly Plan",
        "amount": "29999",
        "currency": "usd",
        "interval": "year",
    }
    assert coupon.form == {"id": "WELCOME20", "percent_off": "20", "duration": "once"}
    keys = [r.headers["idempotency-key"] for r in [*products, *plans, coupon]]
    assert all(key.startswith("smartcv-") for key in keys) and len(set(keys)) == 5


def test_sync_catalogue_leaves_matching_objects_alone(gateway, stub):
    """Objects that already match cause reads only."""
    for plan_like in catalogue_plans()[1:3]:
        stub.answer("GET", f"/v1/products/prod_{plan_like.id}", {"id": "x", "name": plan_like.name})
        stub.answer(
            "GET",
            f"/v1/plans/{plan_like.id}",
            {
                "id": plan_like.id,
                "amount": plan_like.price_cents,
                "currency": "usd",
                "interval": plan_like.interval,
            },
        )
    stub.answer("GET", "/v1/coupons/WELCOME20", {"percent_off": 20.0, "duration": "once"})

    gateway.sync_catalogue(catalogue_plans(), catalogue_coupons())

    assert {r.method for r in stub.requests} == {"GET"}


# Webhooks


def signed(event: dict, secret: str = SECRET, timestamp: int | None = None):
    """Return (body, Stripe-Signature) for an event."""
    body = json.dumps(event).encode()
    return body, sign_payload(body, secret, timestamp)


def event(event_type: str, obj: dict) -> dict:
    """Return a Stripe event around `obj`."""
    return {"id": "evt_1", "object": "event", "type": event_type, "data": {"object": obj}}


def test_parse_event_of_an_invoice_names_its_subscription(gateway):
    """invoice.* events carry the subscription id (acacia shape)."""
    body, signature = signed(event("invoice.paid", {"id": "in_1", "subscription": "sub_9"}))

    parsed = gateway.parse_event(body, signature)

    assert (parsed.id, parsed.type, parsed.subscription_id) == ("evt_1", "invoice.paid", "sub_9")
    assert parsed.payload == json.loads(body)


def test_parse_event_of_a_newer_invoice_reads_its_parent(gateway):
    """Since API 2025-03-31 an invoice names its subscription under parent."""
    parent = {"type": "subscription_details", "subscription_details": {"subscription": "sub_9"}}
    body, signature = signed(event("invoice.paid", {"id": "in_1", "parent": parent}))

    assert gateway.parse_event(body, signature).subscription_id == "sub_9"


def test_parse_event_of_a_payment_intent_asks_for_its_invoice(gateway, stub):
    """A payment intent's subscription is found through its invoice."""
    stub.answer("GET", "/v1/invoices/in_7", {"id": "in_7", "subscription": "sub_9"})
    body, signature = signed(event("payment_intent.succeeded", {"id": "pi_1", "invoice": "in_7"}))

    assert gateway.parse_event(body, signature).subscription_id == "sub_9"


def test_parse_event_of_a_subscription_is_the_object(gateway):
    """customer.subscription.* events are about their object."""
    body, signature = signed(event("customer.subscription.updated", {"id": "sub_9"}))

    assert gateway.parse_event(body, signature).subscription_id == "sub_9"


@pytest.mark.parametrize(
    "tamper",
    ["missing", "wrong_secret", "changed_byte", "stale", "garbage"],
)
def test_parse_event_rejects_bad_signatures(gateway, tamper):
    """Missing, wrong, stale or malformed signatures and changed bodies are refused."""
    body, signature = signed(event("customer.subscription.updated", {"id": "sub_9"}))
    if tamper == "missing":
        signature = None
    elif tamper == "wrong_secret":
        signature = signed(json.loads(body), "whsec_other")[1]
    elif tamper == "changed_byte":
        body = body.replace(b"sub_9", b"sub_8")
    elif tamper == "stale":
        body, signature = signed(json.loads(body), timestamp=int(time.time()) - 3600)
    else:
        signature = "nonsense"

    with pytest.raises(InvalidSignature):
        gateway.parse_event(body, signature)


# Errors


def test_card_error_is_payment_declined_with_the_decline_code(gateway, stub):
    """A 402 card error becomes PaymentDeclined carrying Stripe's decline code."""
    stub.answer(
        "POST",
        "/v1/payment_methods/pm_x/attach",
        stripe_error(
            "card_error",
            "Insufficient funds.",
            code="card_declined",
            decline_code="insufficient_funds",
        ),
        402,
    )

    with pytest.raises(PaymentDeclined) as caught:
        gateway.attach_payment_method("cus_1", "pm_x")

    assert caught.value.decline_code == "insufficient_funds"


def test_missing_payment_method_is_unknown(gateway, stub):
    """Stripe's resource_missing on attach becomes UnknownPaymentMethod."""
    stub.answer(
        "POST",
        "/v1/payment_methods/pm_x/attach",
        stripe_error(
            "invalid_request_error",
            "No such PaymentMethod",
            code="resource_missing",
            param="payment_method",
        ),
        400,
    )

    with pytest.raises(UnknownPaymentMethod):
        gateway.attach_payment_method("cus_1", "pm_x")


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_and_rate_limits_are_unavailable(gateway, stub, status):
    """5xx and 429 mean Stripe can't serve us now."""
    stub.answer("GET", "/v1/subscriptions/sub_1", stripe_error("api_error", "Oops"), status)

    with pytest.raises(GatewayUnavailable):
        gateway.retrieve_subscription("sub_1")


def test_other_refusals_are_gateway_errors(gateway, stub):
    """A 400 that isn't about a payment method is a plain GatewayError."""
    stub.answer(
        "GET", "/v1/subscriptions/sub_1", stripe_error("invalid_request_error", "Nope"), 400
    )

    with pytest.raises(GatewayError) as caught:
        gateway.retrieve_subscription("sub_1")

    assert type(caught.value) is GatewayError


def test_unreachable_server_is_unavailable():
    """Nothing listening means GatewayUnavailable, without retries or waits."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = StripeGateway("sk_test_stub", f"http://127.0.0.1:{port}", SECRET)
    try:
        with pytest.raises(GatewayUnavailable):
            gateway.retrieve_subscription("sub_1")
    finally:
        gateway.close()


def test_create_subscription_carries_the_user_in_metadata(gateway, stub):
    """The subscription, like its customer, names the user in `metadata.user_id`."""
    stub.answer("POST", "/v1/subscriptions", subscription())

    gateway.create_subscription(
        "cus_1", plan("plan_premium_monthly"), VISA, None, "k", user_public_id="usr_1"
    )

    assert stub.sent("POST", "/v1/subscriptions")[0].form["metadata[user_id]"] == "usr_1"


def test_customer_user_id_reads_the_customers_metadata(gateway, stub):
    """Reconciliation finds the user of a customer from `metadata.user_id`."""
    customer = {"id": "cus_1", "object": "customer", "metadata": {"user_id": "usr_9"}}
    stub.answer("GET", "/v1/customers/cus_1", customer)

    assert gateway.customer_user_id("cus_1") == "usr_9"
