"""The service's plans and coupons created at Stripe (products, plans, coupons)."""

from __future__ import annotations

import stripe

from ..base import CouponLike, GatewayError, PlanLike
from .errors import retrieve_or_none, translate_errors
from .keys import stable_key


def sync_catalogue(
    client: stripe.StripeClient, plans: list[PlanLike], coupons: list[CouponLike]
) -> None:
    """Create what is missing of products, plans and coupons; change nothing that matches."""
    with translate_errors():
        for plan in plans:
            # Not sold through Stripe: the free plan, and contact-sales plans (no price).
            if not plan.price_cents:
                continue
            _sync_product(client, plan)
            _sync_plan(client, plan)
        for coupon in coupons:
            _sync_coupon(client, coupon)


def _sync_product(client: stripe.StripeClient, plan: PlanLike) -> None:
    """Create the plan's product, or rename it when our name changed."""
    product_id = "prod_" + plan.id
    product = retrieve_or_none(client.v1.products.retrieve, product_id)
    if product is None:
        client.v1.products.create(
            params={"id": product_id, "name": plan.name},
            options={"idempotency_key": stable_key("product", product_id, plan.name)},
        )
    elif product["name"] != plan.name:
        client.v1.products.update(product_id, params={"name": plan.name})


def _sync_plan(client: stripe.StripeClient, plan: PlanLike) -> None:
    """Create the Stripe plan with our plan's id; refuse to drift from an existing one."""
    wanted = {
        "amount": plan.price_cents,
        "currency": plan.currency.lower(),
        "interval": plan.interval,
    }
    existing = retrieve_or_none(client.v1.plans.retrieve, plan.id)
    if existing is None:
        client.v1.plans.create(
            params={
                "id": plan.id,
                "product": "prod_" + plan.id,
                "nickname": plan.name,
                **wanted,
            },
            options={"idempotency_key": stable_key("plan", plan.id, *map(str, wanted.values()))},
        )
        return
    found = {key: existing[key] for key in wanted}
    if found != wanted:
        # Stripe plans are immutable in price; silently billing the old amount would be
        # worse than stopping the seed: a new price needs a new plan id.
        raise GatewayError(f"Stripe plan {plan.id} is {found}, not {wanted}; use a new plan id")


def _sync_coupon(client: stripe.StripeClient, coupon: CouponLike) -> None:
    """Create the coupon; refuse to drift from an existing one (coupons are immutable)."""
    existing = retrieve_or_none(client.v1.coupons.retrieve, coupon.code)
    if existing is None:
        client.v1.coupons.create(
            params={
                "id": coupon.code,
                "percent_off": coupon.percent_off,
                "duration": coupon.duration,
            },
            options={
                "idempotency_key": stable_key(
                    "coupon", coupon.code, str(coupon.percent_off), coupon.duration
                )
            },
        )
        return
    if float(existing["percent_off"] or 0) != coupon.percent_off or (
        existing["duration"] != coupon.duration
    ):
        raise GatewayError(f"Stripe coupon {coupon.code} differs from ours; use a new code")
