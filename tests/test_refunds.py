"""Refunds: the operator's `flask refund` on the local gateway, seen in the invoice list."""

from __future__ import annotations

import sqlalchemy as sa

from smartcv_account.extensions import db
from smartcv_account.payments.local.models import LocalInvoice

from .test_subscription_money import view


def invoices(client) -> list[dict]:
    """GET the invoices."""
    return client.get("/api/account/invoices").json["data"]


def paid_invoice_id() -> str:
    """The id of the only paid invoice."""
    return db.session.scalar(sa.select(LocalInvoice.id).where(LocalInvoice.status == "paid"))


def test_a_partial_then_the_rest(premium_client, runner):
    invoice_id = paid_invoice_id()
    before = view(premium_client)
    result = runner.invoke(
        args=["refund", invoice_id, "--amount", "10.00", "--reason", "requested_by_customer"]
    )
    assert result.exit_code == 0, result.output
    assert "10.00 in all" in result.output
    assert invoices(premium_client)[0]["amountRefunded"] == 10.0
    result = runner.invoke(args=["refund", invoice_id])
    assert result.exit_code == 0, result.output
    assert invoices(premium_client)[0]["amountRefunded"] == 29.99
    assert view(premium_client) == before  # a refund does not change the subscription


def test_the_same_amount_twice_is_two_refunds(premium_client, runner):
    invoice_id = paid_invoice_id()
    for _ in range(2):
        assert runner.invoke(args=["refund", invoice_id, "--amount", "5"]).exit_code == 0
    assert invoices(premium_client)[0]["amountRefunded"] == 10.0


def test_more_than_was_paid_is_refused(premium_client, runner):
    result = runner.invoke(args=["refund", paid_invoice_id(), "--amount", "30.00"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and "left to refund" in result.output
    assert invoices(premium_client)[0]["amountRefunded"] == 0


def test_bad_input_is_one_error_line(premium_client, runner):
    for args in (["refund", "in_nope"], ["refund", paid_invoice_id(), "--amount", "1.234"]):
        result = runner.invoke(args=args)
        assert (result.exit_code, result.output.count("\n")) == (1, 1), result.output
        assert result.output.startswith("Error: ")
