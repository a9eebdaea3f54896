"""The plan catalogue: usage limits per plan type, and the plans and coupon to seed.

This module is the one place limits are defined; `-1` means unlimited.
"""

from __future__ import annotations

PLAN_LIMITS: dict[str, dict[str, int | str | bool]] = {
    "FREE": {
        "resumesLimit": 5,
        "templatesAccess": "basic",
        "aiFeatures": False,
        "apiRequestsLimit": 100,
        "storageLimit": 10485760,
    },
    "PREMIUM": {
        "resumesLimit": -1,
        "templatesAccess": "all",
        "aiFeatures": True,
        "apiRequestsLimit": 1000,
        "storageLimit": 104857600,
    },
    "ENTERPRISE": {
        "resumesLimit": -1,
        "templatesAccess": "all",
        "aiFeatures": True,
        "apiRequestsLimit": -1,
        "storageLimit": -1,
    },
}

PREMIUM_FEATURES = [
    "Unlimited resumes",
    "All premium templates",
    "AI optimization features",
    "Priority customer support",
    "1000 API requests/month",
]

PLANS: list[dict] = [
    {
        "id": "plan_free",
        "type": "FREE",
        "name": "Free Plan",
        "price_cents": 0,
        "currency": "USD",
        "interval": "month",
        "features": ["5 resumes", "Basic templates", "100 API requests/month"],
        "self_serve": False,
        "rank": 0,
        "trial_days": 0,
    },
    {
        "id": "plan_premium_monthly",
        "type": "PREMIUM",
        "name": "Premium Monthly Plan",
        "price_cents": 2999,
        "currency": "USD",
        "interval": "month",
        "features": PREMIUM_FEATURES,
        "self_serve": True,
        "rank": 1,
        "trial_days": 14,
    },
    {
        "id": "plan_premium_yearly",
        "type": "PREMIUM",
        "name": "Premium Yearly Plan",
        "price_cents": 29999,
        "currency": "USD",
        "interval": "year",
        "features": PREMIUM_FEATURES,
        "self_serve": True,
        "rank": 2,
        "trial_days": 14,
    },
    {
        "id": "plan_enterprise",
        "type": "ENTERPRISE",
        "name": "Enterprise Plan",
        "price_cents": None,
        "currency": "USD",
        "interval": "month",
        "features": [
            "Team collaboration",
            "API access",
            "Custom branding",
            "Unlimited resumes",
            "Unlimited API requests",
            "Unlimited storage",
        ],
        "self_serve": False,
        "rank": 3,
        "trial_days": 0,
    },
]

FREE_PLAN_ID = "plan_free"

COUPONS: list[dict] = [
    {"code": "WELCOME20", "percent_off": 20, "duration": "once", "active": True},
]


def limits_for(plan_type: str) -> dict[str, int | str | bool]:
    """Return the usage limits of a plan type."""
    return PLAN_LIMITS[plan_type]


# Plan types from smallest to largest, and how a user gets each one.
PLAN_TYPE_ORDER = ("FREE", "PREMIUM", "ENTERPRISE")
HOW_TO_GET = {
    "PREMIUM": "Premium (plan_premium_monthly or plan_premium_yearly)",
    "ENTERPRISE": "Enterprise (contact sales)",
}


def plan_that_lifts(plan_type: str, limit_key: str, needed: int) -> str | None:
    """Name the smallest plan above `plan_type` whose `limit_key` allows `needed`, if any."""
    for larger in PLAN_TYPE_ORDER[PLAN_TYPE_ORDER.index(plan_type) + 1 :]:
        limit = int(PLAN_LIMITS[larger][limit_key])
        if limit == -1 or limit >= needed:
            return HOW_TO_GET[larger]
    return None
