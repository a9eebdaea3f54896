"""Payment gateways, chosen by BILLING_PROVIDER from a registry."""

from __future__ import annotations

from flask import Flask, current_app

from ..config import ConfigError
from .base import PaymentGateway
from .local import LocalGateway

# The local gateway's tables belong to the schema whichever provider runs (the migrations
# create them): building the app imports this package, which declares them.
from .local import models as local_models  # noqa: F401
from .stripe import StripeGateway

# BILLING_PROVIDER's values and the gateway each one names.
GATEWAYS: dict[str, type[PaymentGateway]] = {
    LocalGateway.name: LocalGateway,
    StripeGateway.name: StripeGateway,
}


def register_payments(app: Flask) -> None:
    """Refuse to start with a BILLING_PROVIDER no gateway is registered under.

    Called by the app factory, which so also declares the local gateway's tables.
    """
    name = app.config["BILLING_PROVIDER"]
    if name not in GATEWAYS:
        known = ", ".join(repr(known) for known in GATEWAYS)
        raise ConfigError(f"BILLING_PROVIDER must be one of {known}, not {name!r}")


def get_gateway() -> PaymentGateway:
    """Return the app's configured gateway (one instance per app)."""
    gateway = current_app.extensions.get("smartcv_gateway")
    if gateway is None:
        gateway = GATEWAYS[current_app.config["BILLING_PROVIDER"]].from_config(current_app.config)
        current_app.extensions["smartcv_gateway"] = gateway
    return gateway
