"""The gateway's errors: what a payment provider's failure means to the billing service."""

from __future__ import annotations


class GatewayError(Exception):
    """Base class of gateway failures."""


class PaymentDeclined(GatewayError):
    """The card was declined (insufficient funds, generic decline, ...)."""

    def __init__(self, decline_code: str, message: str = "The card was declined.") -> None:
        super().__init__(message)
        self.decline_code = decline_code
        self.message = message


class UnknownPaymentMethod(GatewayError):
    """The payment method id does not exist at the provider."""


class InvalidSignature(GatewayError):
    """A webhook's signature is missing, malformed, stale or wrong."""


class MalformedEvent(GatewayError):
    """A correctly signed webhook whose payload is not a Stripe event of the expected shape."""


class GatewayUnavailable(GatewayError):
    """The provider could not be reached or answered with a server error."""


class IdempotencyKeyReused(GatewayError):
    """An idempotency key came back with other parameters than its first use (Stripe: 400)."""
