"""The user's subscription: read, create and change it."""

from flask import Blueprint
from flask_login import login_required

from ..openapi import endpoint
from ..schemas.subscription import (
    dump_subscription,
    subscription_changed_schema,
    subscription_create_schema,
    subscription_created_schema,
    subscription_schema,
    subscription_update_schema,
)
from ..services import billing
from ..session_cookie import signed_in
from . import ok

bp = Blueprint("subscription", __name__)


@bp.get("")
@login_required
@endpoint(subscription_schema)
def get_subscription():
    """Return the subscription, its plan, usage, card and next bill."""
    view = billing.subscription_view(signed_in())
    return ok(dump_subscription(view))


@bp.post("")
@login_required
@endpoint(
    subscription_created_schema,
    body=subscription_create_schema,
    status=201,
    errors=("PLAN_NOT_FOUND", "PAYMENT_FAILED", "INVALID_COUPON", "SUBSCRIPTION_ALREADY_EXISTS"),
)
def create_subscription(fields):
    """Subscribe to a plan and pay the first invoice."""
    subscription = billing.create_subscription(
        signed_in(),
        fields["plan_id"],
        fields["payment_method_id"],
        fields.get("coupon_code"),
    )
    return ok(subscription_created_schema.dump(subscription), 201)


@bp.put("")
@login_required
@endpoint(
    subscription_changed_schema,
    body=subscription_update_schema,
    errors=("SUBSCRIPTION_NOT_FOUND", "PLAN_NOT_FOUND", "INVALID_PLAN_CHANGE", "PAYMENT_FAILED"),
)
def update_subscription(fields):
    """Upgrade, downgrade, cancel, reactivate or change the card."""
    result = billing.change_subscription(signed_in(), **fields)
    return ok(subscription_changed_schema.dump(result))
