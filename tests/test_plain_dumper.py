"""`plain_dumper` dumps exactly what marshmallow's `schema.dump` would, in every state."""

from __future__ import annotations

from datetime import timedelta

import pytest
from marshmallow import fields

from smartcv_account import clock
from smartcv_account.extensions import db
from smartcv_account.models import User
from smartcv_account.schemas.account import account_schema, dump_account
from smartcv_account.schemas.base import BaseSchema, plain_dumper
from smartcv_account.schemas.subscription import dump_subscription, subscription_schema
from smartcv_account.services import accounts, billing

from .billing_helpers import change, subscribe


def assert_same_dumps(user: User) -> None:
    """Both views of `user` dump the same through marshmallow and through plain_dumper."""
    db.session.expire_all()
    user = db.session.get(User, user.id)
    account = accounts.account_view(user)
    assert dump_account(account) == account_schema.dump(account)
    assert list(dump_account(account)) == list(account_schema.dump(account))  # key order too
    subscription = billing.subscription_view(user)
    assert dump_subscription(subscription) == subscription_schema.dump(subscription)


def test_a_new_free_account(app, user, plans):
    assert_same_dumps(user)


def test_an_account_with_every_optional_field_set(app, user, plans):
    user.avatar = "https://example.com/a.png"
    user.email_verified_at = clock.now() - timedelta(days=2)
    user.last_login_at = clock.now()
    user.theme = "dark"
    db.session.commit()
    assert_same_dumps(user)


@pytest.mark.parametrize("card", ["pm_card_visa", "pm_card_amex", "pm_card_authenticationRequired"])
def test_a_paid_account(auth_client, user, plans, card):
    assert subscribe(auth_client, payment_method=card).status_code == 201
    assert_same_dumps(user)


def test_a_yearly_plan_cancelled_at_period_end(auth_client, user, plans):
    assert subscribe(auth_client, plan_id="plan_premium_yearly").status_code == 201
    assert change(auth_client, "cancel").status_code == 200
    assert_same_dumps(user)


@pytest.mark.parametrize("days", [32, 70])  # past due, then ended
def test_a_renewal_that_failed(auth_client, user, plans, frozen_clock, days):
    assert subscribe(auth_client).status_code == 201
    body = {"paymentMethodId": "pm_card_chargeCustomerFail"}
    assert change(auth_client, "update_payment_method", **body).status_code == 200
    clock.freeze(frozen_clock + timedelta(days=days))
    assert auth_client.get("/api/account").status_code == 200  # the renewal is attempted
    assert_same_dumps(user)


def test_the_endpoints_answer_what_marshmallow_would(auth_client, user, plans):
    assert subscribe(auth_client).status_code == 201
    user = db.session.get(User, user.id)
    assert auth_client.get("/api/account").json["data"] == account_schema.dump(
        accounts.account_view(user)
    )
    assert auth_client.get("/api/account/subscription").json["data"] == (
        subscription_schema.dump(billing.subscription_view(user))
    )


def test_a_missing_attribute_is_left_out_as_marshmallow_does():
    class Thing(BaseSchema):
        name = fields.String()
        size = fields.Integer(data_key="sizeInBytes")

    assert plain_dumper(Thing())({"name": "x"}) == Thing().dump({"name": "x"}) == {"name": "x"}


@pytest.mark.parametrize(
    "field",
    [
        fields.String(dump_default="x"),
        fields.String(attribute="a.b"),
        fields.Function(lambda obj: obj),
    ],
)
def test_fields_it_cannot_dump_faithfully_are_refused_up_front(field):
    schema = BaseSchema.from_dict({"value": field})()
    with pytest.raises(TypeError, match="cannot dump"):
        plain_dumper(schema)
