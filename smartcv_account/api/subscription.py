"""The user's subscription: read, create and change it."""

from flask import Blueprint
from flask_login import login_required

from ..idempotency import IDEMPOTENCY_ERRORS, idempotent, session_caller
from ..openapi import Link, endpoint
from ..schemas.previews import preview_query_schema, preview_schema
from ..schemas.subscription import (
    subscription_changed_schema,
    subscription_create_schema,
    subscription_created_schema,
    subscription_schema,
    subscription_update_schema,
)
from ..services import billing
from ..session_cookie import signed_in

bp = Blueprint("subscription", __name__)


@bp.get("")
@login_required
@endpoint(
    subscription_schema,
    links=(
        Link(
            "update_subscription",
            "Change the subscription as read (its plan is the one named).",
            body={"planId": "$response.body#/data/plan/id"},
        ),
        Link(
            "preview_change",
            "Preview a move from the plan read.",
            parameters={"query.planId": "$response.body#/data/plan/id"},
        ),
    ),
)
def get_subscription():
    """Return the subscription, its plan, usage, card and next bill.

    Needs a session. Changes nothing. The current subscription (the free plan when there is
    none), its period, plan, usage against the limits, card on file, next bill and any change
    waiting for payment authentication.
    """
    return billing.subscription_view(signed_in())


@bp.post("")
@login_required
@idempotent(session_caller)
@endpoint(
    subscription_created_schema,
    body=subscription_create_schema,
    status=201,
    errors=(
        "PLAN_NOT_FOUND",
        "PAYMENT_FAILED",
        "INVALID_COUPON",
        "SUBSCRIPTION_ALREADY_EXISTS",
        "TRIAL_NOT_AVAILABLE",
        *IDEMPOTENCY_ERRORS,
    ),
    links=(Link("get_subscription", "Read the subscription just created."),),
)
def create_subscription(fields):
    """Subscribe to a plan and pay the first invoice, or start its trial.

    Needs a session and no live subscription. Charges the first invoice (less a valid coupon) to
    `paymentMethodId`. When the card needs 3-D Secure the answer has `requiresAction` and a
    `clientSecret` for Stripe.js, and the subscription stays INCOMPLETE until it is
    authenticated. A declined card is PAYMENT_FAILED with its `declineCode` and changes nothing.
    With `trial: true` the plan's trial starts (TRIALING, nothing charged; one per user, ever),
    and a card, if given, is checked and kept for the first invoice at the trial's end.
    Honours `Idempotency-Key`.
    """
    return billing.create_subscription(
        signed_in(),
        fields["plan_id"],
        fields.get("payment_method_id"),
        fields.get("coupon_code"),
        trial=fields["trial"],
    )


@bp.put("")
@login_required
@idempotent(session_caller)
@endpoint(
    subscription_changed_schema,
    body=subscription_update_schema,
    errors=(
        "SUBSCRIPTION_NOT_FOUND",
        "PLAN_NOT_FOUND",
        "INVALID_PLAN_CHANGE",
        "PAYMENT_FAILED",
        *IDEMPOTENCY_ERRORS,
    ),
)
def update_subscription(fields):
    """Upgrade, downgrade, cancel, reactivate or change the card.

    Needs a session and a subscription. `upgrade` and `downgrade` move to `planId`, billed as
    `prorationBehavior` says; `cancel` ends it at the period's end; `reactivate` undoes that
    cancel; `update_payment_method` changes the card (and pays an open invoice of a PAST_DUE or
    INCOMPLETE subscription). Returns what was billed and when it takes effect. Honours
    `Idempotency-Key`.
    """
    return billing.change_subscription(signed_in(), **fields)


@bp.get("/preview")
@login_required
@endpoint(
    preview_schema,
    query=preview_query_schema,
    errors=(
        "SUBSCRIPTION_NOT_FOUND",
        "PLAN_NOT_FOUND",
        "INVALID_PLAN_CHANGE",
        "INVALID_COUPON",
        "SUBSCRIPTION_ALREADY_EXISTS",
        "TRIAL_NOT_AVAILABLE",
    ),
)
def preview_change(fields):
    """Show what an upgrade, a downgrade or a create would bill now and next, to the cent.

    Needs a session (and, for a change, a subscription). Changes nothing and charges nothing:
    computes what `upgrade` or `downgrade` to `planId` would charge now and on the next
    invoice, or what `create` (with `trial` and `couponCode`) would.
    """
    if fields["action"] == "create":
        return billing.preview_create(
            signed_in(), fields["plan_id"], fields.get("trial", False), fields.get("coupon_code")
        )
    return billing.preview_change(signed_in(), **fields)
