"""Payment gateways, chosen by BILLING_PROVIDER from a registry."""

from __future__ import annotations

from flask import current_app

from .base import PaymentGateway


def get_gateway() -> PaymentGateway:
    """Return the app's configured gateway (one instance per app)."""
    gateway = current_app.extensions.get("smartcv_gateway")
    if gateway is None:
        gateway = _build(current_app.config["BILLING_PROVIDER"])
        current_app.extensions["smartcv_gateway"] = gateway
    return gateway


def _build(name: str) -> PaymentGateway:
    """Instantiate the gateway named by BILLING_PROVIDER."""
    if name == "local":
        from .local import LocalGateway

        return LocalGateway(current_app.config["STRIPE_WEBHOOK_SECRET"])
    if name == "stripe":
        from .stripe import StripeGateway

        return StripeGateway(
            api_key=current_app.config["STRIPE_SECRET_KEY"],
            api_base=current_app.config["STRIPE_API_BASE"] or None,
            webhook_secret=current_app.config["STRIPE_WEBHOOK_SECRET"],
        )
    raise RuntimeError(f"unknown BILLING_PROVIDER {name!r} (use 'local' or 'stripe')")
