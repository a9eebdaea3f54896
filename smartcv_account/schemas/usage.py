"""Schemas of the internal usage endpoint and of the usage object it shares with subscriptions."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates

from ..services.usage import METRICS
from .base import BaseSchema, StrictInteger, Timestamp, about

# JavaScript's largest exact integer: a bigger delta is a client bug, and it keeps the
# BIGINT counters far from overflowing.
MAX_DELTA = 2**53 - 1
# The metric names as a JSON Schema: the document's UsageMetric component, which the `metric`
# of a SUBSCRIPTION_LIMIT_EXCEEDED answer refers to.
METRIC_NAMES = {"type": "string", "enum": list(METRICS), "description": "A usage counter."}


class UsageChangeSchema(BaseSchema):
    """POST /api/internal/users/<userId>/usage: one metric and a non-zero integer delta."""

    metric = fields.String(
        required=True,
        validate=validate.OneOf(tuple(METRICS)),
        metadata=about("The counter to change.", "resumes"),
    )
    delta = StrictInteger(
        required=True,
        validate=validate.Range(min=-MAX_DELTA, max=MAX_DELTA),
        metadata=about(
            "A non-zero amount to add (negative frees resumes or storage; apiRequests only counts "
            "up). Storage is in bytes.",
            1,
        ),
    )

    @validates("delta")
    def _non_zero(self, value: int, **kwargs) -> None:
        """Refuse a zero delta: it would record nothing, so the caller has a bug."""
        if value == 0:
            raise ValidationError("Must be a non-zero integer.")


class UsageSchema(BaseSchema):
    """The usage object: the internal endpoint's data and GET subscription's `usage`."""

    resumes_created = fields.Integer(
        data_key="resumesCreated", metadata=about("Resumes the user has now.", 4)
    )
    resumes_limit = fields.Integer(
        data_key="resumesLimit", metadata=about("The plan's resume limit; -1 is unlimited.", -1)
    )
    api_requests_used = fields.Integer(
        data_key="apiRequestsUsed", metadata=about("API requests made this month.", 120)
    )
    api_requests_limit = fields.Integer(
        data_key="apiRequestsLimit",
        metadata=about("The plan's monthly API request limit; -1 is unlimited.", 1000),
    )
    storage_used = fields.Integer(
        data_key="storageUsed", metadata=about("Storage used, in bytes.", 1048576)
    )
    storage_limit = fields.Integer(
        data_key="storageLimit",
        metadata=about("The plan's storage limit in bytes; -1 is unlimited.", 104857600),
    )
    reset_date = Timestamp(
        data_key="resetDate", metadata=about("When apiRequestsUsed next resets to 0.")
    )


usage_change_schema = UsageChangeSchema()
usage_schema = UsageSchema()
