"""The user's subscription: read, create and change it."""

from flask import Blueprint, request
from flask_login import current_user, login_required

from ..idempotency import idempotent, session_caller
from ..schemas.base import load_body
from ..schemas.subscription import (
    dump_subscription,
    preview_query_schema,
    preview_schema,
    subscription_changed_schema,
    subscription_create_schema,
    subscription_created_schema,
    subscription_update_schema,
)
from ..services import billing
from . import ok

bp = Blueprint("subscription", __name__)


@bp.get("")
@login_required
def get_subscription():
    """Return the subscription, its plan, usage, card and next bill."""
    view = billing.subscription_view(current_user._get_current_object())
    return ok(dump_subscription(view))


@bp.post("")
@login_required
@idempotent(session_caller)
def create_subscription():
    """Subscribe to a plan and pay the first invoice."""
    fields = load_body(subscription_create_schema)
    subscription = billing.create_subscription(
        current_user._get_current_object(),
        fields["plan_id"],
        fields["payment_method_id"],
        fields.get("coupon_code"),
    )
    return ok(subscription_created_schema.dump(subscription), 201)


@bp.put("")
@login_required
@idempotent(session_caller)
def update_subscription():
    """Upgrade, downgrade, cancel, reactivate or change the card."""
    fields = load_body(subscription_update_schema)
    result = billing.change_subscription(current_user._get_current_object(), **fields)
    return ok(subscription_changed_schema.dump(result))


@bp.get("/preview")
@login_required
def preview_change():
    """Show what an upgrade or downgrade would bill now and next, to the cent."""
    fields = preview_query_schema.load(request.args.to_dict())
    preview = billing.preview_change(current_user._get_current_object(), **fields)
    return ok(preview_schema.dump(preview))
