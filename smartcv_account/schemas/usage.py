"""Schemas of the internal usage endpoint and of the usage object it shares with subscriptions."""

from __future__ import annotations

from marshmallow import ValidationError, fields, validate, validates

from ..services.usage import METRICS
from .base import BaseSchema, StrictInteger, Timestamp

# JavaScript's largest exact integer: a bigger delta is a client bug, and it keeps the
# BIGINT counters far from overflowing.
MAX_DELTA = 2**53 - 1


class UsageChangeSchema(BaseSchema):
    """POST /api/internal/users/<userId>/usage: one metric and a non-zero integer delta."""

    metric = fields.String(required=True, validate=validate.OneOf(tuple(METRICS)))
    delta = StrictInteger(required=True, validate=validate.Range(min=-MAX_DELTA, max=MAX_DELTA))

    @validates("delta")
    def _non_zero(self, value: int, **kwargs) -> None:
        """Refuse a zero delta: it would record nothing, so the caller has a bug."""
        if value == 0:
            raise ValidationError("Must be a non-zero integer.")


class UsageSchema(BaseSchema):
    """The usage object: the internal endpoint's data and GET subscription's `usage`."""

    resumes_created = fields.Integer(data_key="resumesCreated")
    resumes_limit = fields.Integer(data_key="resumesLimit")
    api_requests_used = fields.Integer(data_key="apiRequestsUsed")
    api_requests_limit = fields.Integer(data_key="apiRequestsLimit")
    storage_used = fields.Integer(data_key="storageUsed")
    storage_limit = fields.Integer(data_key="storageLimit")
    reset_date = Timestamp(data_key="resetDate")


usage_change_schema = UsageChangeSchema()
usage_schema = UsageSchema()
