"""The reference's account of each error code: an example answer and the shape of `details`.

`openapi/document.py` builds the ErrorEnvelope component from these tables and
`openapi/postprocess.py` each error answer's examples; `tests/test_openapi.py` checks that every
code of `errors.ERRORS` is here and that each example validates against the envelope.
"""

from __future__ import annotations

from typing import Any

from .errors import ERRORS
from .services.usage import METRICS

# code -> (the sentence of a typical answer, its `details`).
ERROR_EXAMPLES: dict[str, tuple[str, dict[str, Any]]] = {
    "USER_NOT_FOUND": ("No user has this id.", {}),
    "INVALID_PASSWORD": (
        "Current password is incorrect.",
        {"field": "currentPassword"},
    ),
    "WEAK_PASSWORD": (
        "The password is too weak: This is a top-10 common password.",
        {
            "field": "password",
            "feedback": {
                "warning": "This is a top-10 common password.",
                "suggestions": ["Add another word or two. Uncommon words are better."],
            },
        },
    ),
    "SUBSCRIPTION_NOT_FOUND": ("You have no subscription to change.", {}),
    "PAYMENT_FAILED": (
        "The payment was declined (insufficient_funds).",
        {"field": "paymentMethodId", "declineCode": "insufficient_funds"},
    ),
    "PLAN_NOT_FOUND": ("There is no self-serve plan with id 'gold'.", {"field": "planId"}),
    "SUBSCRIPTION_LIMIT_EXCEEDED": (
        "This would pass your plan's resumes limit of 5 (5 used). "
        "Premium (plan_premium_monthly or plan_premium_yearly) lifts it.",
        {"metric": "resumes", "limit": 5, "used": 5},
    ),
    "VALIDATION_ERROR": (
        "name: Must be between 1 and 100 characters.",
        {"field": "name", "fields": {"name": ["Must be between 1 and 100 characters."]}},
    ),
    "INVALID_JSON": ("The request body is not valid JSON.", {}),
    "UNAUTHORIZED": ("Authentication is required.", {}),
    "INVALID_CREDENTIALS": ("The email or password is incorrect.", {}),
    "TWO_FACTOR_REQUIRED": (
        "Enter the code from your authenticator app or a backup code.",
        {"field": "twoFactorCode"},
    ),
    "INVALID_TWO_FACTOR_CODE": (
        "The two-factor code is incorrect or has already been used.",
        {"field": "twoFactorCode"},
    ),
    "FORBIDDEN": (
        "Requests from this page's origin are not allowed.",
        {"origin": "https://elsewhere.example"},
    ),
    "NOT_FOUND": ("The requested resource does not exist.", {}),
    "METHOD_NOT_ALLOWED": ("This method is not allowed for this resource.", {}),
    "EMAIL_TAKEN": ("An account with this email already exists.", {"field": "email"}),
    "SUBSCRIPTION_ALREADY_EXISTS": (
        "You already have a subscription; change it instead of creating another.",
        {},
    ),
    "INVALID_PLAN_CHANGE": ("plan_premium_monthly is not above your current plan.", {}),
    "INVALID_COUPON": (
        "The coupon WELCOME20 is for a first subscription and was already used.",
        {"field": "couponCode", "reason": "already_redeemed"},
    ),
    "PAYLOAD_TOO_LARGE": ("The request body is larger than 1 MiB.", {}),
    "UNSUPPORTED_MEDIA_TYPE": ("Send the request body as application/json.", {}),
    "RATE_LIMITED": ("Too many requests; try again in 42 seconds.", {"retryAfter": 42}),
    "INVALID_SIGNATURE": ("The webhook signature is missing or invalid.", {}),
    "INTERNAL_ERROR": ("An unexpected error occurred.", {}),
    "SERVICE_UNAVAILABLE": ("The service is temporarily unavailable.", {}),
    "INVALID_TOKEN": (
        "This link is invalid or has expired; ask for a new one.",
        {"field": "token"},
    ),
    "EMAIL_ALREADY_VERIFIED": ("Your email address is already verified.", {}),
    "SESSION_NOT_FOUND": ("You have no active session with this id.", {"field": "id"}),
    "IDEMPOTENCY_KEY_REUSED": (
        "This Idempotency-Key was already used with another request body; use a new key.",
        {"field": "Idempotency-Key"},
    ),
    "IDEMPOTENCY_KEY_IN_USE": (
        "A request with this Idempotency-Key is still running; retry it in a moment.",
        {"field": "Idempotency-Key"},
    ),
}

# Every key `details` may hold, and the codes that carry it.
DETAILS_PROPERTIES: dict[str, dict[str, Any]] = {
    "field": {
        "type": "string",
        "description": "The request field (or header) the error is about; with VALIDATION_ERROR "
        "the first invalid one. Also on WEAK_PASSWORD, PAYMENT_FAILED, PLAN_NOT_FOUND, "
        "INVALID_COUPON, EMAIL_TAKEN (when known), INVALID_TOKEN, INVALID_TWO_FACTOR_CODE, "
        "INVALID_PASSWORD, TWO_FACTOR_REQUIRED, SESSION_NOT_FOUND and the two "
        "IDEMPOTENCY_KEY_* codes.",
    },
    "fields": {
        "type": "object",
        "description": "VALIDATION_ERROR: each invalid field (dotted path for nested ones, "
        "`_schema` for the body as a whole) with its messages.",
        "additionalProperties": {"type": "array", "items": {"type": "string"}},
    },
    "feedback": {
        "type": "object",
        "description": "WEAK_PASSWORD: why the password is weak and how to make it stronger.",
        "required": ["warning", "suggestions"],
        "properties": {
            "warning": {"type": "string", "description": "Why the password is easy to guess."},
            "suggestions": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Ways to make it stronger.",
            },
        },
    },
    "declineCode": {
        "type": "string",
        "description": "PAYMENT_FAILED: the card issuer's reason, as Stripe names it "
        "(e.g. `card_declined`, `insufficient_funds`, `expired_card`).",
    },
    "metric": {
        "type": "string",
        "enum": list(METRICS),
        "description": "SUBSCRIPTION_LIMIT_EXCEEDED: the counter that would pass its limit.",
    },
    "limit": {
        "type": "integer",
        "description": "SUBSCRIPTION_LIMIT_EXCEEDED: the plan's limit for that metric.",
    },
    "used": {
        "type": "integer",
        "description": "SUBSCRIPTION_LIMIT_EXCEEDED: how much of it is used now.",
    },
    "retryAfter": {
        "type": "integer",
        "minimum": 0,
        "description": "RATE_LIMITED: seconds to wait before trying again (also `Retry-After`).",
    },
    "reason": {
        "type": "string",
        "description": "INVALID_COUPON: why a known coupon does not apply "
        "(`already_redeemed`: it is for a first subscription only).",
    },
    "origin": {
        "type": "string",
        "description": "FORBIDDEN from the Origin check: the refused page origin.",
    },
}

DETAILS_DESCRIPTION = (
    "More about the error, by code (empty `{}` for the codes not listed):\n\n"
    "- VALIDATION_ERROR: `fields` (field -> messages) and `field` (the first one)\n"
    "- WEAK_PASSWORD: `field` and `feedback` {warning, suggestions}\n"
    "- PAYMENT_FAILED: `field` (`paymentMethodId`) and `declineCode`\n"
    "- SUBSCRIPTION_LIMIT_EXCEEDED: `metric`, `limit` and `used`\n"
    "- RATE_LIMITED: `retryAfter` (seconds)\n"
    "- INVALID_COUPON: `field` (`couponCode`), and `reason` when the coupon exists but "
    "does not apply\n"
    "- FORBIDDEN (Origin check): `origin`\n"
    "- PLAN_NOT_FOUND, EMAIL_TAKEN, INVALID_TOKEN, INVALID_PASSWORD, TWO_FACTOR_REQUIRED, "
    "INVALID_TWO_FACTOR_CODE, SESSION_NOT_FOUND, IDEMPOTENCY_KEY_*: `field`"
)


def error_envelope_schema() -> dict[str, Any]:
    """The contract's error body: `success` false, a sentence, a code and details."""
    return {
        "type": "object",
        "description": "Every error answer: the same four fields whatever the status.",
        "required": ["success", "error", "code", "details"],
        "additionalProperties": False,
        "properties": {
            "success": {"const": False, "description": "Always false on an error."},
            "error": {
                "type": "string",
                "description": "A sentence for a person, saying what went wrong and what to do.",
            },
            "code": {
                "type": "string",
                "enum": list(ERRORS),
                "description": "A stable code for programs; the HTTP status follows from it.",
            },
            "details": {
                "type": "object",
                "description": DETAILS_DESCRIPTION,
                "properties": DETAILS_PROPERTIES,
            },
        },
    }


def error_example(code: str) -> dict[str, Any]:
    """A typical error answer with this code."""
    message, details = ERROR_EXAMPLES[code]
    return {"success": False, "error": message, "code": code, "details": details}
