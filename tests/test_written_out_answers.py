"""The account and usage answers are written out by hand for speed; their schemas stay the truth.

For any account or usage object, the hand-built JSON must equal what the declared marshmallow
schema dumps, key for key and in the same order (the dump writes every declared field, so a
field added to a schema and not to its written-out answer fails here).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smartcv_account.catalogue import PLAN_TYPE_ORDER
from smartcv_account.schemas.account import (
    SUBSCRIPTION_STATUSES,
    THEMES,
    account_json,
    account_schema,
)
from smartcv_account.schemas.usage import usage_json, usage_schema
from smartcv_account.services.accounts import AccountView

times = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
maybe_times = st.none() | times
counters = st.integers(min_value=0, max_value=2**63 - 1)
limits = st.just(-1) | st.integers(min_value=0, max_value=2**40)
texts = st.text(max_size=40)

preferences = st.fixed_dictionaries(
    {
        "language": st.sampled_from(["en", "zh-cn"]),
        "timezone": st.sampled_from(["UTC", "Europe/Paris", "Asia/Shanghai"]),
        "theme": st.sampled_from(THEMES),
        "email_notifications": st.booleans(),
        "marketing_emails": st.booleans(),
    }
)
accounts = st.builds(
    AccountView,
    id=texts,
    email=texts,
    name=texts,
    avatar=st.none() | texts,
    email_verified=st.booleans(),
    email_verified_at=maybe_times,
    subscription_type=st.sampled_from(PLAN_TYPE_ORDER),
    subscription_status=st.sampled_from(SUBSCRIPTION_STATUSES),
    subscription_expires_at=maybe_times,
    resumes_created=counters,
    resumes_limit=limits,
    api_requests_used=counters,
    api_requests_limit=limits,
    storage_used=counters,
    storage_limit=limits,
    preferences=preferences,
    created_at=times,
    updated_at=times,
    last_login_at=maybe_times,
)
usages = st.fixed_dictionaries(
    {
        "resumes_created": counters,
        "resumes_limit": limits,
        "api_requests_used": counters,
        "api_requests_limit": limits,
        "storage_used": counters,
        "storage_limit": limits,
        "reset_date": times,
    }
)


CASES = {
    "account": (accounts, account_json, account_schema),
    "usage": (usages, usage_json, usage_schema),
}


@pytest.mark.parametrize("answer", CASES)
@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_written_out_answer_is_what_its_schema_dumps(answer, data):
    objects, write, schema = CASES[answer]
    value = data.draw(objects)
    written = write(value)
    dumped = schema.dump(value)
    assert written == dumped
    # The same keys in the same order, nested objects included.
    assert json.dumps(written) == json.dumps(dumped)
