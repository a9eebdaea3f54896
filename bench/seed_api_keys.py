"""Seed the verify call's keys straight into the benchmark's database, one key per user.

Run by bench/run.py as `python -m bench.seed_api_keys COUNT OUT` with the service's environment
(DATABASE_URL): it writes COUNT users with a verified email, each with one live key of every
scope, half of them on Premium and half on Enterprise (comped, as `flask assign-plan` does:
the plan's limit is in the verify call's WHERE, and a free plan's 100 calls a month would run
out during a long run), and writes the keys' secrets to OUT, one a line. Going through the
app's models and key format rather than over HTTP: 2,000 sign-ups would cost 2,000 bcrypt
hashes and 2,000 password checks, which the verify call never pays.
"""

from __future__ import annotations

import secrets
import sys
from datetime import timedelta
from pathlib import Path

from smartcv_account import clock, create_app
from smartcv_account.extensions import db
from smartcv_account.models import ApiKey, User
from smartcv_account.services import api_keys, billing, credentials, key_secrets
from smartcv_account.services.identity import new_public_id

PLANS = ("plan_premium_monthly", "plan_enterprise")
BATCH = 500


def seed(count: int) -> list[str]:
    """Write `count` users with one key each; return the keys' secrets."""
    now = clock.now()
    # Nobody signs in as these users: one hash of a random password serves them all.
    password_hash = credentials.hash_password(secrets.token_urlsafe(24))
    every_scope = api_keys.scope_bits(list(api_keys.SCOPES))
    found: list[str] = []
    for start in range(0, count, BATCH):
        users = [
            User(
                public_id=new_public_id("user"),
                email=f"bench-key-{index:05d}@example.com",
                password_hash=password_hash,
                name=f"Bench Key {index:05d}",
                email_verified_at=now,
                created_at=now,
                updated_at=now,
            )
            for index in range(start, min(start + BATCH, count))
        ]
        db.session.add_all(users)
        db.session.flush()
        for user in users:
            secret = key_secrets.new_secret()
            db.session.add(
                ApiKey(
                    public_id=new_public_id("key"),
                    user_id=user.id,
                    name="bench",
                    scope_bits=every_scope,
                    prefix=key_secrets.shown_prefix(secret),
                    secret_hash=key_secrets.secret_hash(secret),
                    created_at=now,
                    expires_at=now + timedelta(days=365),
                )
            )
            found.append(secret)
        db.session.commit()
        for index, user in enumerate(users, start):
            billing.assign_plan(user, PLANS[index % 2])  # commits
    return found


def main(argv: list[str]) -> int:
    """Seed COUNT keys and write their secrets to OUT."""
    count, out = int(argv[0]), Path(argv[1])
    app = create_app()
    with app.app_context():
        found = seed(count)
    out.write_text("\n".join(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
