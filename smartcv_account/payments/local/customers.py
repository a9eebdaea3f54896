"""Customers at the local provider and the cards attached to them."""

from __future__ import annotations

import secrets

import sqlalchemy as sa

from ... import clock
from ...extensions import db
from ..base import (
    CardDetails,
    ChangePreview,
    CouponLike,
    PaymentDeclined,
    PlanLike,
    SavedCard,
    UnknownPaymentMethod,
)
from ..previews import create_preview
from .cards import TEST_CARDS
from .models import LocalCustomer, LocalPaymentMethod, LocalSubscription, new_id


def ensure_customer(user_public_id: str, email: str, customer_id: str | None) -> str:
    """Return the user's local customer, creating it on first use."""
    if customer_id and db.session.get(LocalCustomer, customer_id) is not None:
        return customer_id
    existing = db.session.scalar(
        sa.select(LocalCustomer).where(LocalCustomer.user_public_id == user_public_id)
    )
    if existing is not None:
        return existing.id
    customer = LocalCustomer(
        id=new_id("cus"),
        user_public_id=user_public_id,
        email=email,
        balance_cents=0,
        created_at=clock.now(),
    )
    db.session.add(customer)
    db.session.flush()
    return customer.id


def customer_user_id(customer_id: str) -> str | None:
    """Return the user a local customer was made for."""
    customer = db.session.get(LocalCustomer, customer_id)
    return customer.user_public_id if customer is not None else None


def forget_customer(customer_id: str, user_public_id: str) -> None:
    """Blank the customer's email and re-tag it; its invoices stay (no commit)."""
    customer = db.session.get(LocalCustomer, customer_id)
    if customer is not None:
        customer.email = ""
        customer.user_public_id = user_public_id
        db.session.flush()


def attach_payment_method(
    customer_id: str, payment_method_id: str, make_default: bool = True
) -> CardDetails:
    """Attach one of Stripe's test payment methods; declining cards fail here as in Stripe."""
    card = TEST_CARDS.get(payment_method_id)
    if card is None:
        attached = db.session.get(LocalPaymentMethod, payment_method_id)
        if attached is None or attached.customer_id != customer_id:
            raise UnknownPaymentMethod(payment_method_id)
        method = attached
    else:
        if card.behaviour == "decline_on_attach":
            raise PaymentDeclined(card.decline_code or "generic_decline")
        method = LocalPaymentMethod(
            id=new_id("pm"),
            customer_id=customer_id,
            brand=card.brand,
            last4=card.last4,
            exp_month=12,
            exp_year=clock.now().year + 3,
            behaviour=card.behaviour,
            decline_code=card.decline_code,
            created_at=clock.now(),
        )
        db.session.add(method)
    if make_default:
        db.session.get(LocalCustomer, customer_id).default_payment_method_id = method.id
    db.session.flush()
    return card_details(method)


def list_cards(customer_id: str) -> tuple[list[CardDetails], str | None]:
    """Return the customer's cards, oldest first, and the default one's id."""
    methods = db.session.scalars(
        sa.select(LocalPaymentMethod)
        .where(LocalPaymentMethod.customer_id == customer_id)
        .order_by(LocalPaymentMethod.created_at, LocalPaymentMethod.id)
    )
    customer = db.session.get(LocalCustomer, customer_id)
    default = customer.default_payment_method_id if customer is not None else None
    return [card_details(method) for method in methods], default


def save_card(customer_id: str, payment_method_id: str) -> SavedCard:
    """Save a card as a confirmed SetupIntent does; one needing 3-D Secure waits for it."""
    card = attach_payment_method(customer_id, payment_method_id, make_default=False)
    test_card = TEST_CARDS.get(payment_method_id)
    if test_card is not None and test_card.behaviour == "authenticate":
        secret = f"{new_id('seti')}_secret_{secrets.token_hex(8)}"
        return SavedCard(card, secret, {"type": "use_stripe_sdk"})
    return SavedCard(card)


def set_default_card(customer_id: str, card_id: str) -> None:
    """Make the card the customer's default and the one their subscriptions charge."""
    db.session.get(LocalCustomer, customer_id).default_payment_method_id = card_id
    db.session.execute(
        sa.update(LocalSubscription)
        .where(LocalSubscription.customer_id == customer_id)
        .values(default_payment_method_id=card_id)
    )
    db.session.flush()


def remove_card(customer_id: str, card_id: str) -> None:
    """Detach a card: it is gone from the customer (a detached card is never used again)."""
    customer = db.session.get(LocalCustomer, customer_id)
    if customer.default_payment_method_id == card_id:
        customer.default_payment_method_id = None
    db.session.execute(
        sa.update(LocalSubscription)
        .where(LocalSubscription.default_payment_method_id == card_id)
        .values(default_payment_method_id=None)
    )
    db.session.execute(
        sa.delete(LocalPaymentMethod).where(
            LocalPaymentMethod.id == card_id, LocalPaymentMethod.customer_id == customer_id
        )
    )
    db.session.flush()


def card_details(method: LocalPaymentMethod) -> CardDetails:
    """Show a stored card as CardDetails."""
    return CardDetails(
        payment_method_id=method.id,
        type="card",
        brand=method.brand,
        last4=method.last4,
        exp_month=method.exp_month,
        exp_year=method.exp_year,
    )


def preview_create(
    customer_id: str | None, plan: PlanLike, coupon: CouponLike | None, trial_days: int
) -> ChangePreview:
    """Return what a create now would bill, the customer's credit balance applied."""
    customer = db.session.get(LocalCustomer, customer_id) if customer_id else None
    balance = customer.balance_cents if customer is not None else 0
    return create_preview(plan, coupon, trial_days, balance, clock.now())
