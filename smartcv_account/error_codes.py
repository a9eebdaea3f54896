"""The contract's error codes: one record per code (status, the sentence of its example answer
and what its `details` hold, each key's JSON Schema with the example's value). errors.py
raises and answers them; the document's ErrorEnvelope and examples are built from them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The keys `details` may hold; an ErrorCode gives each the example's value (`detail`).
FIELD = {
    "type": "string",
    "description": "The request field (or header) the error is about; with VALIDATION_ERROR "
    "the first invalid one.",
}
FIELDS = {
    "type": "object",
    "description": "Each invalid field (dotted path for nested ones, `_schema` for the body as "
    "a whole) with its messages.",
    "additionalProperties": {"type": "array", "items": {"type": "string"}},
}
FEEDBACK = {
    "type": "object",
    "description": "Why the password is weak and how to make it stronger.",
    "required": ["warning", "suggestions", "score"],
    "properties": {
        "warning": {"type": "string", "description": "Why the password is easy to guess."},
        "suggestions": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Ways to make it stronger.",
        },
        "score": {
            "type": "integer",
            "minimum": 0,
            "maximum": 4,
            "description": "Its zxcvbn strength score, 0 (weakest) to 4; 3 is needed.",
        },
    },
}
DECLINE_CODE = {
    "type": "string",
    "description": "The card issuer's reason, as Stripe names it (e.g. `card_declined`, "
    "`insufficient_funds`, `expired_card`).",
}
# The metric names are the usage service's; the document defines this component from them.
METRIC = {
    "$ref": "#/components/schemas/UsageMetric",
    "description": "The counter that would pass its limit.",
}
LIMIT = {"type": "integer", "description": "The plan's limit for that metric."}
USED = {"type": "integer", "description": "How much of it is used now."}
RETRY_AFTER = {
    "type": "integer",
    "minimum": 0,
    "description": "Seconds to wait before trying again (also `Retry-After`).",
}
REASON = {
    "type": "string",
    "description": "INVALID_COUPON: why a known coupon does not apply (`already_redeemed`: it is "
    "for a first subscription only); absent when the coupon does not exist. INVALID_PASSKEY: "
    "what was wrong with the browser's response: `challenge` (unknown, used or expired), "
    "`credential` (refused by the verification) or `duplicate` (the passkey is added already). "
    "INVALID_API_KEY: `unknown` (also a malformed key or a deleted user's key), `revoked` or "
    "`expired`.",
}
ORIGIN = {
    "type": "string",
    "description": "The refused page origin, when the Origin check refused the request.",
}
SCOPE = {"type": "string", "description": "The scope the call needs."}
SCOPES = {"type": "array", "items": {"type": "string"}, "description": "The key's scopes."}
SEATS = {"type": "integer", "minimum": 1, "description": "The team's seats."}
TEAMS = {
    "type": "array",
    "description": "The teams the account is the only owner of, with other members: make "
    "someone else an owner, or remove the others, first.",
    "items": {
        "type": "object",
        "required": ["id", "name"],
        "properties": {
            "id": {"type": "string", "description": "The team's id."},
            "name": {"type": "string", "description": "The team's name."},
        },
    },
}


@dataclass(frozen=True)
class ErrorCode:
    """One code of the contract: its HTTP status, a sentence the service answers it with, and
    what its `details` hold (each key's JSON Schema, with the value of the example answer).

    The document's ErrorEnvelope and every error answer's examples are built from these;
    `tests/test_errors.py` makes the service answer each code and compares it with the example.
    """

    status: int
    example: str
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def example_answer(self, code: str) -> dict[str, Any]:
        """The example as the envelope the service answers with."""
        details = {key: schema["example"] for key, schema in self.details.items()}
        return {"success": False, "error": self.example, "code": code, "details": details}


def detail(schema: dict[str, Any], example: Any) -> dict[str, Any]:
    """A `details` key's JSON Schema with the value the code's example carries."""
    return {**schema, "example": example}


def about_field(name: str) -> dict[str, dict[str, Any]]:
    """`details.field`: the request field (or header) the error is about."""
    return {"field": detail(FIELD, name)}


# Every error code of the contract: the one place its status, example and details are written.
ERRORS: dict[str, ErrorCode] = {
    "USER_NOT_FOUND": ErrorCode(404, "No user has this id."),
    "INVALID_PASSWORD": ErrorCode(
        400, "Current password is incorrect.", about_field("currentPassword")
    ),
    "WEAK_PASSWORD": ErrorCode(
        422,
        "The password is too weak: This is a top-10 common password.",
        about_field("password")
        | {
            "feedback": detail(
                FEEDBACK,
                {
                    "warning": "This is a top-10 common password.",
                    "suggestions": ["Add another word or two. Uncommon words are better."],
                    "score": 0,
                },
            )
        },
    ),
    "SUBSCRIPTION_NOT_FOUND": ErrorCode(404, "You have no subscription to change."),
    "PAYMENT_FAILED": ErrorCode(
        402,
        "The payment was declined (insufficient_funds).",
        about_field("paymentMethodId")
        | {"declineCode": detail(DECLINE_CODE, "insufficient_funds")},
    ),
    "PLAN_NOT_FOUND": ErrorCode(
        404, "There is no self-serve plan with id 'gold'.", about_field("planId")
    ),
    "SUBSCRIPTION_LIMIT_EXCEEDED": ErrorCode(
        429,
        "This would pass your plan's resumes limit of 5 (5 used). "
        "Premium (plan_premium_monthly or plan_premium_yearly) lifts it.",
        {"metric": detail(METRIC, "resumes"), "limit": detail(LIMIT, 5), "used": detail(USED, 5)},
    ),
    "VALIDATION_ERROR": ErrorCode(
        400,
        "name: Length must be between 1 and 100.",
        about_field("name")
        | {"fields": detail(FIELDS, {"name": ["Length must be between 1 and 100."]})},
    ),
    "INVALID_JSON": ErrorCode(400, "The request body is not valid JSON."),
    "UNAUTHORIZED": ErrorCode(401, "Sign in to continue."),
    "INVALID_CREDENTIALS": ErrorCode(401, "The email or password is incorrect."),
    "TWO_FACTOR_REQUIRED": ErrorCode(
        401,
        "Enter the code from your authenticator app or a backup code.",
        about_field("twoFactorCode"),
    ),
    "INVALID_TWO_FACTOR_CODE": ErrorCode(
        401,
        "The two-factor code is incorrect or has already been used.",
        about_field("twoFactorCode"),
    ),
    "FORBIDDEN": ErrorCode(
        403,
        "Requests from this page's origin are not allowed.",
        {"origin": detail(ORIGIN, "https://elsewhere.example")},
    ),
    "NOT_FOUND": ErrorCode(404, "The requested resource does not exist."),
    "METHOD_NOT_ALLOWED": ErrorCode(405, "This method is not allowed for this resource."),
    "EMAIL_TAKEN": ErrorCode(
        409, "An account with this email already exists.", about_field("email")
    ),
    "SUBSCRIPTION_ALREADY_EXISTS": ErrorCode(
        409, "You already have a subscription; change it instead of creating another."
    ),
    "INVALID_PLAN_CHANGE": ErrorCode(409, "You are already on Premium Monthly Plan."),
    "TRIAL_NOT_AVAILABLE": ErrorCode(
        409,
        "You have already had a trial or a paid subscription; subscribe without a trial.",
        about_field("trial"),
    ),
    "PAYMENT_METHOD_IN_USE": ErrorCode(
        409,
        "This card pays your subscription; make another card the default before removing it.",
        about_field("id"),
    ),
    "PAYMENT_METHOD_NOT_FOUND": ErrorCode(
        404, "You have no saved card with this id.", about_field("id")
    ),
    "PAYMENT_METHOD_LIMIT_REACHED": ErrorCode(
        409, "You can save at most 5 cards; remove one first.", about_field("paymentMethodId")
    ),
    "INVALID_COUPON": ErrorCode(
        400,
        "The coupon WELCOME20 is for a first subscription and was already used.",
        about_field("couponCode") | {"reason": detail(REASON, "already_redeemed")},
    ),
    "PAYLOAD_TOO_LARGE": ErrorCode(413, "The request body is larger than 1 MiB."),
    "UNSUPPORTED_MEDIA_TYPE": ErrorCode(415, "Send the request body as application/json."),
    "RATE_LIMITED": ErrorCode(
        429, "Too many requests; try again in 42 seconds.", {"retryAfter": detail(RETRY_AFTER, 42)}
    ),
    "INVALID_SIGNATURE": ErrorCode(400, "The webhook signature is missing or invalid."),
    "INTERNAL_ERROR": ErrorCode(500, "An unexpected error occurred."),
    "SERVICE_UNAVAILABLE": ErrorCode(503, "The database is unavailable; try again shortly."),
    "INVALID_TOKEN": ErrorCode(
        400, "This link is invalid or has expired; ask for a new one.", about_field("token")
    ),
    "EMAIL_ALREADY_VERIFIED": ErrorCode(409, "Your email address is already verified."),
    "SESSION_NOT_FOUND": ErrorCode(
        404, "You have no active session with this id.", about_field("id")
    ),
    "IDEMPOTENCY_KEY_REUSED": ErrorCode(
        422,
        "This Idempotency-Key was already used with another request body; use a new key.",
        about_field("Idempotency-Key"),
    ),
    "IDEMPOTENCY_KEY_IN_USE": ErrorCode(
        409,
        "A request with this Idempotency-Key is still running; retry it in a moment.",
        about_field("Idempotency-Key"),
    ),
    "INVALID_PASSKEY": ErrorCode(
        400,
        "The passkey could not be verified; try adding it again.",
        {"reason": detail(REASON, "challenge")},
    ),
    "LAST_SIGN_IN_METHOD": ErrorCode(
        409,
        "This is your only way to sign in; add a passkey, link another account or set a"
        " password (through a password reset) first.",
    ),
    "REAUTHENTICATION_REQUIRED": ErrorCode(
        401, "Sign in again to confirm this change (your sign-in is over 10 minutes old)."
    ),
    "EMAIL_NOT_VERIFIED": ErrorCode(403, "Verify your email address before making an API key."),
    "API_KEY_LIMIT_REACHED": ErrorCode(
        409, "You have 10 live API keys, the most allowed; revoke one first."
    ),
    "API_KEY_NOT_FOUND": ErrorCode(
        404, "You have no live API key with this id.", about_field("id")
    ),
    "INVALID_API_KEY": ErrorCode(
        401, "This API key has been revoked.", {"reason": detail(REASON, "revoked")}
    ),
    "INSUFFICIENT_SCOPE": ErrorCode(
        403,
        "This API key does not have the scope ai:use.",
        {"required": detail(SCOPE, "ai:use"), "granted": detail(SCOPES, ["resumes:read"])},
    ),
    "TEAM_NOT_FOUND": ErrorCode(404, "You belong to no team with this id."),
    "NOT_A_MEMBER": ErrorCode(404, "This user is not a member of the team.", about_field("userId")),
    "SEAT_LIMIT_REACHED": ErrorCode(
        409,
        "Every seat of the team is taken by a member or a pending invitation (1 seat).",
        {"seats": detail(SEATS, 1)},
    ),
    "ALREADY_MEMBER": ErrorCode(
        409, "This person is already a member of the team.", about_field("email")
    ),
    "ALREADY_INVITED": ErrorCode(
        409, "This address already has a pending invitation.", about_field("email")
    ),
    "LAST_OWNER": ErrorCode(
        409, "A team needs an owner: make someone else an owner first.", about_field("userId")
    ),
    "INVITATION_EMAIL_MISMATCH": ErrorCode(
        403,
        "This invitation is for another email address; sign in with the invited one (verified).",
    ),
    "TEAM_OWNERSHIP_REQUIRED": ErrorCode(
        409,
        "You are the only owner of teams with other members; make someone else an owner or"
        " remove the others first.",
        {"teams": detail(TEAMS, [{"id": "team_5d0c2a7e9b1f3c4d6e8a0b2c", "name": "Acme"}])},
    ),
}
