"""One passkey assertion sent twice at once, over HTTP on two gunicorn workers released from a
barrier: its challenge works once, so exactly one of the two signs in, every round."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from functools import partial

import pytest
import requests
import sqlalchemy as sa

from .gunicorn_helpers import COOKIE, gunicorns, service_env, sign_up
from .software_authenticator import SoftwarePasskey
from .test_attack_races import together

pytestmark = pytest.mark.slow

ORIGIN = "http://localhost:3000"
ROUNDS = 12


@pytest.fixture(scope="module")
def service(migrated_url):
    """Two gunicorn workers whose passkeys belong to http://localhost:3000; (url, engine)."""
    env = service_env(migrated_url, APP_BASE_URL=ORIGIN)
    engine = sa.create_engine(migrated_url.replace("postgresql://", "postgresql+psycopg://"))
    with gunicorns(env, workers=2) as (instance,):
        yield instance.url, engine
    engine.dispose()


def registered_passkey(base: str, engine) -> SoftwarePasskey:
    """A new user with a software passkey stored as a registration stores it."""
    account = sign_up(base, "racer")
    passkey = SoftwarePasskey("localhost", ORIGIN, account.id.encode("ascii"))
    with engine.begin() as connection:
        user_id = connection.scalar(
            sa.text("SELECT id FROM users WHERE public_id = :p"), {"p": account.id}
        )
        connection.execute(
            sa.text(
                "INSERT INTO passkeys (public_id, user_id, credential_id, public_key, sign_count,"
                " name, backed_up, created_at) VALUES (:pid, :uid, :cid, :key, 0, 'Racer',"
                " false, :now)"
            ),
            {
                "pid": f"pk_{secrets.token_hex(12)}",
                "uid": user_id,
                "cid": passkey.credential_id,
                "key": passkey.cose_public_key(),
                "now": datetime.now(UTC).replace(tzinfo=None),
            },
        )
    return passkey


def sign_in(base: str, credential: dict) -> requests.Response:
    return requests.post(
        base + "/api/auth/passkey",
        json={"credential": credential},
        headers={"Connection": "close"},
        timeout=30,
    )


def test_one_assertion_sent_twice_at_once_signs_in_once(service):
    base, engine = service
    passkey = registered_passkey(base, engine)
    for _ in range(ROUNDS):
        options = requests.post(base + "/api/auth/passkey/options", timeout=30).json()
        credential = passkey.assertion(options["data"]["publicKey"]["challenge"])

        send = partial(sign_in, base, credential)
        answers = together(send, send)

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [200, 401], [answer.text for answer in answers]
        [refused] = [answer for answer in answers if answer.status_code == 401]
        assert refused.json()["code"] == "INVALID_CREDENTIALS"
        assert COOKIE not in refused.cookies
    with engine.connect() as connection:
        count = connection.scalar(sa.text("SELECT sign_count FROM passkeys"))
        sessions = connection.scalar(
            sa.text(
                "SELECT count(*) FROM auth_sessions JOIN passkeys"
                " ON passkeys.user_id = auth_sessions.user_id"
            )
        )
    assert count == ROUNDS
    assert sessions == ROUNDS + 1  # the sign-up's session and one per round
