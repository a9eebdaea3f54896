"""StripeGateway against a real Stripe-compatible peer: localstripe on loopback.

Every flow localstripe implements runs here end to end with the real `stripe` library. What it
lacks (coupons applied to subscriptions, plan swaps with `proration_behavior`, time-based
prorations, idempotency) is covered by test_stripe_gateway_requests.py; see
/work/shared/notes/stripe-testing.md for what was measured.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager

import pytest

from smartcv_account.extensions import db
from smartcv_account.models import User
from smartcv_account.payments.base import (
    GatewayError,
    InvalidSignature,
    PaymentDeclined,
    UnknownPaymentMethod,
)
from smartcv_account.payments.stripe import StripeGateway

from ..factories import PASSWORD, UserFactory
from .conftest import (
    LOCALSTRIPE_KEY,
    WEBHOOK_SECRET,
    add_months,
    catalogue_coupons,
    catalogue_plans,
    plan,
    register_webhook,
)

pytestmark = pytest.mark.slow

VISA = "4242424242424242"
MASTERCARD = "5555555555554444"
DECLINED_AT_ATTACH = "4000000000000002"
DECLINED_AT_CHARGE = "4000000000000341"
THREE_D_SECURE = "4000002500003155"
WEBHOOK_WAIT_SECONDS = 5


def subscribe(gateway, localstripe_api, number=VISA, plan_id="plan_premium_monthly"):
    """Create a customer with the card `number` and subscribe it to `plan_id`."""
    customer_id = gateway.ensure_customer("usr_test", "user@example.com", None)
    card = gateway.attach_payment_method(customer_id, localstripe_api.card(number))
    return gateway.create_subscription(customer_id, plan(plan_id), card, None, "idem-1")


def test_ensure_customer_creates_a_customer_tagged_with_the_user(gateway, localstripe_api):
    """One Stripe customer per user, carrying our public user id."""
    customer_id = gateway.ensure_customer("usr_abc", "abc@example.com", None)

    customer = localstripe_api.call("GET", f"/v1/customers/{customer_id}")
    assert customer["metadata"] == {"user_id": "usr_abc"}
    assert customer["email"] == "abc@example.com"


def test_subscription_and_customer_name_the_user_in_metadata(catalogue, localstripe_api):
    """Reconciliation can trace a subscription with no row to its user through either."""
    gateway = catalogue
    customer_id = gateway.ensure_customer("usr_meta", "meta@example.com", None)
    card = gateway.attach_payment_method(customer_id, localstripe_api.card(VISA))
    created = gateway.create_subscription(
        customer_id, plan("plan_premium_monthly"), card, None, "idem-meta", "usr_meta"
    )

    subscription = localstripe_api.call("GET", f"/v1/subscriptions/{created.id}")
    assert subscription["metadata"] == {"user_id": "usr_meta"}
    assert gateway.customer_user_id(customer_id) == "usr_meta"


def test_ensure_customer_reuses_a_known_customer(gateway, localstripe_api):
    """A user who already has a customer id keeps it and no customer is created."""
    assert gateway.ensure_customer("usr_abc", "abc@example.com", "cus_known") == "cus_known"
    assert localstripe_api.call("GET", "/v1/customers")["data"] == []


def test_attach_payment_method_returns_the_card_and_makes_it_default(gateway, localstripe_api):
    """Attaching a card returns its public details and sets the invoice default."""
    customer_id = gateway.ensure_customer("usr_abc", "abc@example.com", None)
    payment_method_id = localstripe_api.card(VISA)

    card = gateway.attach_payment_method(customer_id, payment_method_id)

    assert (card.payment_method_id, card.type, card.brand, card.last4) == (
        payment_method_id,
        "card",
        "visa",
        "4242",
    )
    assert (card.exp_month, card.exp_year) == (12, 2034)
    customer = localstripe_api.call("GET", f"/v1/customers/{customer_id}")
    assert customer["invoice_settings"]["default_payment_method"] == payment_method_id


def test_attach_declined_card_raises_payment_declined(gateway, localstripe_api):
    """A card declined when attached is a PaymentDeclined with the provider's code."""
    customer_id = gateway.ensure_customer("usr_abc", "abc@example.com", None)

    with pytest.raises(PaymentDeclined) as caught:
        gateway.attach_payment_method(customer_id, localstripe_api.card(DECLINED_AT_ATTACH))

    assert caught.value.decline_code == "card_declined"


def test_attach_unknown_payment_method_raises(gateway):
    """A payment method id the provider doesn't know is UnknownPaymentMethod."""
    customer_id = gateway.ensure_customer("usr_abc", "abc@example.com", None)

    with pytest.raises(UnknownPaymentMethod):
        gateway.attach_payment_method(customer_id, "pm_does_not_exist")


@pytest.mark.parametrize(
    ("plan_id", "months", "amount"),
    [("plan_premium_monthly", 1, 2999), ("plan_premium_yearly", 12, 29999)],
)
def test_create_subscription_is_active_for_exactly_one_period(
    catalogue, localstripe_api, plan_id, months, amount
):
    """A paid first invoice makes the subscription ACTIVE for one calendar period."""
    before = int(time.time())

    subscription = subscribe(catalogue, localstripe_api, plan_id=plan_id)

    start = subscription.current_period_start
    assert subscription.status == "ACTIVE"
    assert subscription.plan_id == plan_id
    assert before - 1 <= start.timestamp() <= time.time() + 1
    assert subscription.current_period_end == add_months(start, months)
    assert subscription.latest_invoice_amount_cents == amount
    assert subscription.payment_method.last4 == "4242"
    assert not subscription.requires_action and subscription.client_secret.startswith("pi_")


def test_decline_at_charge_raises_and_leaves_no_live_subscription(catalogue, localstripe_api):
    """A card that attaches but is declined when charged leaves nothing half-made."""
    with pytest.raises(PaymentDeclined) as caught:
        subscribe(catalogue, localstripe_api, number=DECLINED_AT_CHARGE)

    assert caught.value.decline_code == "card_declined"
    everything = localstripe_api.call("GET", "/v1/subscriptions?status=all")["data"]
    # Ended either way: localstripe expires it once its first invoice is voided.
    assert [s["status"] in ("canceled", "incomplete_expired") for s in everything] == [True]
    (invoice,) = localstripe_api.call("GET", "/v1/invoices")["data"]
    assert invoice["status"] == "void"


def test_three_d_secure_is_incomplete_until_authenticated(catalogue, localstripe_api):
    """A card needing 3-D Secure gives INCOMPLETE with a client secret, ACTIVE once done."""
    subscription = subscribe(catalogue, localstripe_api, number=THREE_D_SECURE)

    assert subscription.status == "INCOMPLETE"
    assert subscription.requires_action
    assert subscription.next_action["type"] == "use_stripe_sdk"
    intent_id = subscription.client_secret.split("_secret_")[0]
    localstripe_api.call(
        "POST",
        f"/v1/payment_intents/{intent_id}/_authenticate",
        {"client_secret": subscription.client_secret, "success": "true"},
    )
    after = catalogue.retrieve_subscription(subscription.id)
    assert after.status == "ACTIVE"
    assert not after.requires_action and after.next_action is None


def test_cancel_at_period_end_can_be_set_and_withdrawn(catalogue, localstripe_api):
    """Scheduling and withdrawing a cancel round-trips through the provider."""
    subscription = subscribe(catalogue, localstripe_api)

    assert catalogue.set_cancel_at_period_end(subscription.id, True).cancel_at_period_end
    assert catalogue.retrieve_subscription(subscription.id).cancel_at_period_end
    withdrawn = catalogue.set_cancel_at_period_end(subscription.id, False)
    assert not withdrawn.cancel_at_period_end
    assert withdrawn.status == "ACTIVE"


def test_cancel_now_ends_the_subscription(catalogue, localstripe_api):
    """Cancelling now gives CANCELED, and the provider agrees."""
    subscription = subscribe(catalogue, localstripe_api)

    assert catalogue.cancel_now(subscription.id).status == "CANCELED"
    assert catalogue.advance(subscription.id).status == "CANCELED"


def test_update_payment_method_switches_the_billed_card(catalogue, localstripe_api):
    """A new card becomes the one the subscription bills."""
    subscription = subscribe(catalogue, localstripe_api)
    new_card = localstripe_api.card(MASTERCARD)

    updated = catalogue.update_payment_method(subscription.id, subscription.customer_id, new_card)

    assert (updated.payment_method.payment_method_id, updated.payment_method.last4) == (
        new_card,
        "4444",
    )
    assert catalogue.retrieve_subscription(subscription.id).payment_method.last4 == "4444"


def test_preview_proration_monthly_to_yearly_bills_the_difference(catalogue, localstripe_api):
    """The preview of monthly -> yearly is the year less the unused month (localstripe's
    credit is the whole month: it does not prorate by time)."""
    subscription = subscribe(catalogue, localstripe_api)

    previewed = catalogue.preview_change(
        subscription.id, plan("plan_premium_yearly"), "always_invoice"
    )

    assert (previewed.proration_cents, previewed.amount_due_cents) == (27000, 27000)


def test_cancel_now_of_an_incomplete_subscription_voids_its_open_invoice(
    catalogue, localstripe_api
):
    """The first invoice of an abandoned incomplete subscription can no longer be paid."""
    subscription = subscribe(catalogue, localstripe_api, number=THREE_D_SECURE)

    assert catalogue.cancel_now(subscription.id, "cancel-key").status == "CANCELED"

    found = localstripe_api.call("GET", f"/v1/invoices/{subscription.latest_invoice_id}")
    assert found["status"] == "void"


def test_sync_catalogue_creates_the_sold_plans(catalogue, localstripe_api):
    """Each paid self-serve plan becomes a product and a plan with our id; the coupon too."""
    monthly = localstripe_api.call("GET", "/v1/plans/plan_premium_monthly")
    yearly = localstripe_api.call("GET", "/v1/plans/plan_premium_yearly")
    coupon = localstripe_api.call("GET", "/v1/coupons/WELCOME20")

    assert (monthly["amount"], monthly["currency"], monthly["interval"]) == (2999, "usd", "month")
    assert (yearly["amount"], yearly["currency"], yearly["interval"]) == (29999, "usd", "year")
    assert monthly["product"] == "prod_plan_premium_monthly"
    assert (coupon["percent_off"], coupon["duration"]) == (20, "once")
    plan_ids = {p["id"] for p in localstripe_api.call("GET", "/v1/plans")["data"]}
    assert plan_ids == {"plan_premium_monthly", "plan_premium_yearly"}


def test_sync_catalogue_twice_changes_nothing(catalogue, localstripe_api):
    """A second sync neither fails nor writes anything."""
    paths = ["/v1/plans", "/v1/products", "/v1/coupons"]
    before = [localstripe_api.call("GET", path)["data"] for path in paths]

    catalogue.sync_catalogue(catalogue_plans(), catalogue_coupons())

    assert [localstripe_api.call("GET", path)["data"] for path in paths] == before


def test_sync_catalogue_refuses_a_plan_whose_price_drifted(catalogue):
    """A changed price for an existing plan id stops the sync (Stripe plans are immutable)."""
    changed = plan("plan_premium_monthly")
    changed.price_cents = 3999

    with pytest.raises(GatewayError, match="plan_premium_monthly"):
        catalogue.sync_catalogue([changed], [])


# Signed webhooks, delivered by localstripe to a server in this test


@pytest.fixture
def webhook_sink(localstripe, recording_server):
    """A server receiving localstripe's signed webhooks; muted again afterwards."""
    recording_server.answer("POST", "/hook", {})
    register_webhook(localstripe, recording_server.url + "/hook", WEBHOOK_SECRET)
    yield recording_server
    # localstripe has no way to delete a webhook and keeps it across resets: aim it at a type
    # never sent, so later tests' events don't reach whatever takes this port next.
    register_webhook(localstripe, "http://127.0.0.1:9/", WEBHOOK_SECRET, ["smartcv.never"])


def wait_for_event(sink, event_type: str, object_id: str):
    """Return the first delivered request for `event_type` about `object_id`, waiting a little."""
    deadline = time.monotonic() + WEBHOOK_WAIT_SECONDS
    while time.monotonic() < deadline:
        for request in list(sink.requests):
            event = _json(request.body)
            if event["type"] == event_type and event["data"]["object"]["id"] == object_id:
                return request
        time.sleep(0.05)
    raise AssertionError(f"no {event_type} for {object_id} within {WEBHOOK_WAIT_SECONDS} s")


def _json(body: bytes):
    """Decode a JSON body."""
    return json.loads(body)


def test_webhook_delivered_by_localstripe_is_verified_and_parsed(
    catalogue, localstripe_api, webhook_sink
):
    """A real delivery's body and Stripe-Signature pass parse_event, naming the subscription."""
    subscription = subscribe(catalogue, localstripe_api)

    delivered = wait_for_event(webhook_sink, "customer.subscription.created", subscription.id)
    event = catalogue.parse_event(delivered.body, delivered.headers["stripe-signature"])

    assert event.type == "customer.subscription.created"
    assert event.subscription_id == subscription.id
    assert event.id == _json(delivered.body)["id"]
    assert event.payload["data"]["object"]["customer"] == subscription.customer_id


def test_webhook_invoice_and_payment_intent_events_name_the_subscription(
    catalogue, localstripe_api, webhook_sink
):
    """Invoice events carry the subscription; payment intent events are traced via the invoice."""
    subscription = subscribe(catalogue, localstripe_api, number=THREE_D_SECURE)
    intent_id = subscription.client_secret.split("_secret_")[0]
    localstripe_api.call(
        "POST",
        f"/v1/payment_intents/{intent_id}/_authenticate",
        {"client_secret": subscription.client_secret, "success": "true"},
    )

    paid = wait_for_event(webhook_sink, "invoice.payment_succeeded", subscription.latest_invoice_id)
    succeeded = wait_for_event(webhook_sink, "payment_intent.succeeded", intent_id)

    for delivered in (paid, succeeded):
        event = catalogue.parse_event(delivered.body, delivered.headers["stripe-signature"])
        assert event.subscription_id == subscription.id


def test_webhook_with_a_changed_byte_or_wrong_secret_is_rejected(
    catalogue, localstripe_api, localstripe, webhook_sink
):
    """The delivered signature no longer matches a tampered body or another secret."""
    subscription = subscribe(catalogue, localstripe_api)
    delivered = wait_for_event(webhook_sink, "customer.subscription.created", subscription.id)
    signature = delivered.headers["stripe-signature"]
    tampered = delivered.body.replace(b'"active"', b'"activf"', 1)
    other = StripeGateway(LOCALSTRIPE_KEY, localstripe, "whsec_someone_else")

    try:
        with pytest.raises(InvalidSignature):
            catalogue.parse_event(tampered, signature)
        with pytest.raises(InvalidSignature):
            other.parse_event(delivered.body, signature)
        with pytest.raises(InvalidSignature):
            catalogue.parse_event(delivered.body, None)
    finally:
        other.close()
    assert tampered != delivered.body


# The whole service on the Stripe gateway


@contextmanager
def signed_in_on_stripe(app_factory, localstripe):
    """The whole service on the Stripe gateway, its plans seeded, a user signed in."""
    app = app_factory(
        BILLING_PROVIDER="stripe",
        STRIPE_SECRET_KEY=LOCALSTRIPE_KEY,
        STRIPE_API_BASE=localstripe,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    with app.app_context():
        try:
            assert app.test_cli_runner().invoke(args=["seed-plans"]).exit_code == 0
            user = UserFactory()
            client = app.test_client()
            login = {"email": user.email, "password": PASSWORD}
            assert client.post("/api/auth/login", json=login).status_code == 200
            yield client, user
        finally:
            app.extensions["smartcv_gateway"].close()


def test_a_declined_first_attempt_keeps_the_stripe_customer_for_the_retry(
    app_factory, localstripe, localstripe_api
):
    """The service keeps billing_customer_id after a decline, so the retry makes no second one."""
    with signed_in_on_stripe(app_factory, localstripe) as (client, user):
        card = localstripe_api.card(DECLINED_AT_CHARGE)
        body = {"planId": "plan_premium_monthly", "paymentMethodId": card}
        declined = client.post("/api/account/subscription", json=body)
        db.session.expire_all()
        kept = db.session.get(User, user.id).billing_customer_id
        body["paymentMethodId"] = localstripe_api.card(VISA)
        retried = client.post("/api/account/subscription", json=body)

    assert (declined.status_code, retried.status_code) == (402, 201)
    customers = localstripe_api.call("GET", "/v1/customers")["data"]
    assert [c["id"] for c in customers] == [kept]


def test_the_service_subscribes_through_the_stripe_gateway(
    app_factory, localstripe, localstripe_api
):
    """With BILLING_PROVIDER=stripe, seed-plans and a subscribe go through localstripe."""
    with signed_in_on_stripe(app_factory, localstripe) as (client, user):
        body = {"planId": "plan_premium_yearly", "paymentMethodId": localstripe_api.card(VISA)}
        created = client.post("/api/account/subscription", json=body)
        shown = client.get("/api/account/subscription").json["data"]

    assert (created.status_code, created.json["data"]["status"]) == (201, "ACTIVE")
    assert (shown["plan"]["id"], shown["paymentMethod"]["last4"]) == ("plan_premium_yearly", "4242")
    customers = localstripe_api.call("GET", "/v1/customers")["data"]
    assert [c["metadata"]["user_id"] for c in customers] == [user.public_id]
