"""What the benchmark sends: its users, the endpoints and their requests, and the checks that
every server answers them as it should (a wrong answer ends the run)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from .processes import INTERNAL_TOKEN, Server, call

PASSWORD = "bench Correct Horse Battery Staple 42"


@dataclass
class BenchUser:
    """A signed-in user: its email, public id and session cookie."""

    email: str
    public_id: str
    cookie: str
    premium: bool


def session_cookie(headers: dict) -> str:
    """Return `name=value` of the session cookie from a response's Set-Cookie header."""
    for name, value in headers.items():
        if name.lower() == "set-cookie" and value.startswith("smartcv_session="):
            return value.split(";", 1)[0]
    raise RuntimeError(f"no session cookie in {headers}")


def seed_users(server: Server, count: int) -> list[BenchUser]:
    """Register `count` users, log each in (a fresh session) and subscribe every other one."""
    from concurrent.futures import ThreadPoolExecutor

    def one(index: int) -> BenchUser:
        email = f"bench-user-{index:02d}@example.com"
        status, _, body = call(
            server,
            "POST",
            "/api/auth/register",
            body={"email": email, "password": PASSWORD, "name": f"Bench User {index:02d}"},
        )
        if status != 201:
            raise RuntimeError(f"register {email}: {status} {body}")
        status, headers, body = call(
            server, "POST", "/api/auth/login", body={"email": email, "password": PASSWORD}
        )
        if status != 200:
            raise RuntimeError(f"login {email}: {status} {body}")
        cookie = session_cookie(headers)
        public_id = body["data"]["id"]
        premium = index % 2 == 1
        if premium:
            status, _, body = call(
                server,
                "POST",
                "/api/account/subscription",
                headers={"Cookie": cookie},
                body={"planId": "plan_premium_monthly", "paymentMethodId": "pm_card_visa"},
            )
            if status != 201 or body["data"]["status"] != "ACTIVE":
                raise RuntimeError(f"subscribe {email}: {status} {body}")
        return BenchUser(email, public_id, cookie, premium)

    # Two at a time: the two workers each spend a core on bcrypt.
    with ThreadPoolExecutor(max_workers=2) as pool:
        return list(pool.map(one, range(count)))


@dataclass
class RequestSpec:
    """One request the load generator sends (it cycles through a list of them)."""

    method: str
    path: str
    headers: dict[str, str]
    body: str | None = None


@dataclass
class Endpoint:
    """An endpoint under test, the requests that exercise it, and the kind of floor it is
    measured against ("read", "write", or None for no floor)."""

    label: str
    requests: list[RequestSpec] = field(default_factory=list)
    floor: str | None = None


def endpoints(users: list[BenchUser], keys: list[str]) -> list[Endpoint]:
    """The five endpoints: four cycling over every seeded user (free and premium), the verify
    call over every seeded API key (one per user)."""
    json_type = {"Content-Type": "application/json"}
    bearer = {"Authorization": f"Bearer {INTERNAL_TOKEN}", **json_type}
    themes = ("dark", "light")
    return [
        Endpoint(
            "GET /api/account",
            [RequestSpec("GET", "/api/account", {"Cookie": u.cookie}) for u in users],
            floor="read",
        ),
        Endpoint(
            "GET /api/account/subscription",
            [RequestSpec("GET", "/api/account/subscription", {"Cookie": u.cookie}) for u in users],
            floor="read",
        ),
        Endpoint(
            "PUT /api/account",
            [
                # Alternating values, so every request really writes a row.
                RequestSpec(
                    "PUT",
                    "/api/account",
                    {"Cookie": u.cookie, **json_type},
                    json.dumps({"preferences": {"theme": theme}}),
                )
                for theme in themes
                for u in users
            ],
        ),
        Endpoint(
            "POST /api/internal/users/{id}/usage",
            [
                # storage is a gauge: +1 then -1 keeps every user far from the limit.
                RequestSpec(
                    "POST",
                    f"/api/internal/users/{u.public_id}/usage",
                    bearer,
                    json.dumps({"metric": "storage", "delta": delta}),
                )
                for delta in (1, -1)
                for u in users
            ],
            floor="write",
        ),
        Endpoint(
            "POST /api/internal/api-keys/verify",
            [
                RequestSpec(
                    "POST",
                    "/api/internal/api-keys/verify",
                    bearer,
                    json.dumps({"key": key, "scope": "resumes:read"}),
                )
                for key in keys
            ],
            floor="verify",
        ),
    ]


def send(server: Server, spec: RequestSpec) -> tuple[int, dict]:
    """Send one of the load's requests once; return the status and the JSON body."""
    body = json.loads(spec.body) if spec.body else None
    headers = {k: v for k, v in spec.headers.items() if k != "Content-Type"}
    status, _, data = call(server, spec.method, spec.path, headers, body)
    return status, data


def check_endpoint(server: Server, endpoint: Endpoint) -> None:
    """Send each request once and insist on a 2xx: a fast 401 would be a fake result."""
    for spec in endpoint.requests:
        status, data = send(server, spec)
        if not 200 <= status < 300:
            raise RuntimeError(f"{server.name} {spec.method} {spec.path}: {status} {data}")


def check_reads_rows(server: Server, users: list[BenchUser]) -> None:
    """Insist that GET /api/account answers each user with their own row, and a cookie that
    names no session with 401: the answer comes from the database, not from a constant."""
    for user in users:
        status, _, data = call(server, "GET", "/api/account", {"Cookie": user.cookie})
        found = data.get("data", {})
        if status != 200 or (found.get("email"), found.get("id")) != (user.email, user.public_id):
            raise RuntimeError(f"{server.name} read of {user.email}: {status} {data}")
    stranger = {"Cookie": "smartcv_session=" + secrets.token_urlsafe(32)}
    status = call(server, "GET", "/api/account", stranger)[0]
    if status != 401:
        raise RuntimeError(f"{server.name} answered {status}, not 401, to a cookie of no session")


def check_write_counts(server: Server, user: BenchUser) -> None:
    """Insist that the usage call changes the stored counter (+1, then -1 back), and that an
    id of no user is refused: the write reaches the row."""
    path = f"/api/internal/users/{user.public_id}/usage"
    headers = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    seen = []
    for delta in (1, -1):
        status, _, data = call(server, "POST", path, headers, {"metric": "storage", "delta": delta})
        if status != 200:
            raise RuntimeError(f"{server.name} usage {delta:+d}: {status} {data}")
        seen.append(data["data"]["storageUsed"])
    if seen[1] != seen[0] - 1:
        raise RuntimeError(f"{server.name} usage +1 then -1 stored {seen}")
    nobody = "/api/internal/users/user_nobody/usage"
    status = call(server, "POST", nobody, headers, {"metric": "storage", "delta": 1})[0]
    if status != 404:
        raise RuntimeError(f"{server.name} answered {status}, not 404, to a usage call of no user")


def check_verify_counts(server: Server, key: str) -> None:
    """Insist that the verify call counts (+1 per call) and that a key of nobody is refused
    with 401: the key is looked up and the counter written."""
    path = "/api/internal/api-keys/verify"
    headers = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    seen = []
    for _ in range(2):
        status, _, data = call(server, "POST", path, headers, {"key": key})
        if status != 200:
            raise RuntimeError(f"{server.name} verify: {status} {data}")
        seen.append(data["data"]["usage"]["apiRequestsUsed"])
    if seen[1] != seen[0] + 1:
        raise RuntimeError(f"{server.name} two verify calls counted {seen}")
    nobody = key[:-8] + ("A" * 8 if not key.endswith("A" * 8) else "B" * 8)
    status = call(server, "POST", path, headers, {"key": nobody})[0]
    if status != 401:
        raise RuntimeError(f"{server.name} answered {status}, not 401, to a key of nobody")
