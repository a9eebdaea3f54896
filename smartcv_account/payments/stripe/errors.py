"""Stripe's exceptions turned into the gateway's, so services never see `stripe`."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from ..base import GatewayError, GatewayUnavailable, PaymentDeclined, UnknownPaymentMethod


@contextmanager
def translate_errors(payment_method: bool = False) -> Iterator[None]:
    """Turn `stripe` exceptions into the gateway's.

    `payment_method=True` marks calls whose 404 or invalid-parameter answer means the payment
    method id itself is bad (the API shows that as a validation error on `paymentMethodId`).
    """
    try:
        yield
    except stripe.CardError as exc:
        body = _error_body(exc)
        code = body.get("decline_code") or body.get("code") or exc.code or "card_declined"
        raise PaymentDeclined(code, body.get("message") or "The card was declined.") from exc
    except stripe.InvalidRequestError as exc:
        missing = exc.code == "resource_missing" or exc.http_status == 404
        if payment_method and (missing or (exc.param or "").startswith("payment_method")):
            raise UnknownPaymentMethod(str(exc.user_message or exc)) from exc
        raise GatewayError(f"Stripe refused the request: {exc.user_message or exc}") from exc
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise GatewayUnavailable(f"Stripe is unreachable: {exc}") from exc
    except stripe.StripeError as exc:
        # APIError and anything else from Stripe's side (5xx, unreadable bodies).
        if exc.http_status is None or exc.http_status >= 500:
            raise GatewayUnavailable(f"Stripe failed: {exc}") from exc
        raise GatewayError(f"Stripe error: {exc}") from exc


def _error_body(exc: stripe.StripeError) -> dict[str, Any]:
    """Return the `error` object of a Stripe error response, or {}."""
    body = exc.json_body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        return dict(body["error"])
    return {}


def retrieve_or_none(retrieve: Callable[[str], Any], object_id: str) -> Any | None:
    """Retrieve an object by id, or None when Stripe has none with that id."""
    try:
        return retrieve(object_id)
    except stripe.InvalidRequestError as exc:
        if exc.code == "resource_missing" or exc.http_status == 404:
            return None
        raise
