"""Where the time of one request goes: the WSGI apps called in-process, without the network.

    .venv/bin/python bench/profile_hot_path.py           # CPU µs: service, floor, ceiling
    .venv/bin/python bench/profile_hot_path.py --pyinstrument "GET /api/account"   # a call tree
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/smartcv_profile \
        .venv/bin/python bench/profile_hot_path.py      # the same on PostgreSQL (db recreated)

It seeds a throwaway database, signs a user in, and calls `app.wsgi_app` in a loop with a
prepared environ, timing the process's CPU (so other load on the machine barely moves the
numbers). The difference between the service and the floor (bench/floor_app.py: the same
database work in a bare Flask app) is what the service adds to its database work, and between
the service and the ceiling what it adds to Flask; gunicorn, the socket and the load generator
come on top of all three alike.
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TOKEN = "profile-internal-token"
# The requests that bench/floor_app.py answers (the others have no floor).
FLOORED = ("GET /api/account", "GET /api/account/subscription", "POST usage", "POST verify")
PASSWORD = "bench Correct Horse Battery Staple 42"


def build_apps(database_url: str):
    """Return (service app, floor app, ceiling app, cookie, public id, API key) on a freshly
    seeded database."""
    import flask_migrate

    from bench import floor_app
    from bench.ceiling_app import app as ceiling
    from bench.seed_api_keys import seed
    from smartcv_account import catalogue, create_app
    from smartcv_account.config import _engine_options
    from smartcv_account.services import billing

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            # As the service builds them from DATABASE_URL (PostgreSQL: pre-ping, pool sizes).
            "SQLALCHEMY_ENGINE_OPTIONS": _engine_options(database_url),
            "SESSION_COOKIE_SECURE": False,
            "RATELIMIT_ENABLED": False,
            "INTERNAL_API_TOKEN": TOKEN,
            "BCRYPT_ROUNDS": 4,  # seeding only: login is not what is profiled here
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
        key = seed(2)[1]  # Enterprise: no monthly limit to run into while the loop counts
    _APPS.append(app)
    client = app.test_client()
    email = "profile-user@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Profile User"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    public_id = response.json["data"]["id"]
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    return app, floor_app.create_app(database_url), ceiling, cookie, public_id, key


def requests_for(cookie: str, public_id: str, key: str) -> dict[str, dict]:
    """The benchmarked requests as EnvironBuilder arguments."""
    return {
        "GET /api/account": {"method": "GET", "path": "/api/account"},
        "GET /api/account/subscription": {"method": "GET", "path": "/api/account/subscription"},
        "PUT /api/account": {
            "method": "PUT",
            "path": "/api/account",
            "json": {"preferences": {"theme": "dark"}},
        },
        "POST usage": {
            "method": "POST",
            "path": f"/api/internal/users/{public_id}/usage",
            "json": {"metric": "storage", "delta": 1},
            "headers": {"Authorization": f"Bearer {TOKEN}"},
        },
        "POST verify": {
            "method": "POST",
            "path": "/api/internal/api-keys/verify",
            "json": {"key": key, "scope": "resumes:read"},
            "headers": {"Authorization": f"Bearer {TOKEN}"},
        },
    } | {"_cookie": cookie}


def call_loop(wsgi, spec: dict, cookie: str, count: int) -> float:
    """Call the WSGI app `count` times; return CPU µs per request."""
    from werkzeug.test import EnvironBuilder

    headers = {"Cookie": cookie, **spec.get("headers", {})}
    kwargs = {k: v for k, v in spec.items() if k != "headers"}
    builder = EnvironBuilder(headers=headers, **kwargs)
    template = builder.get_environ()
    payload = template["wsgi.input"].read()
    statuses = []

    def start_response(status, headers, exc_info=None):
        statuses.append(status)

    began = time.process_time()
    for _ in range(count):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(payload)
        for _chunk in wsgi(environ, start_response):
            pass
    elapsed = time.process_time() - began
    bad = [s for s in statuses if not s.startswith("2")]
    if bad:
        raise RuntimeError(f"{spec['path']}: {bad[0]}")
    return elapsed / count * 1e6


def interleaved(apps: dict, spec: dict, cookie: str, count: int) -> dict[str, float]:
    """CPU µs per request of each app, measured in alternating batches of five, so that a
    change in the machine's speed during the run moves all of them alike."""
    totals = dict.fromkeys(apps, 0.0)
    rounds = max(count // 5, 1)
    for _ in range(rounds):
        for name, app in apps.items():
            totals[name] += call_loop(app.wsgi_app, spec, cookie, 5)
    return {name: total / rounds for name, total in totals.items()}


def main() -> int:
    """Print CPU µs per request of each endpoint, its floor and the ceiling, or one
    pyinstrument tree."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pyinstrument", metavar="ENDPOINT", help='e.g. "GET /api/account"')
    parser.add_argument(
        "--breakdown", action="store_true", help="GET /api/account's cost, piece by piece"
    )
    parser.add_argument(
        "--verify-split",
        action="store_true",
        help="the verify call: its statement, its own Python and the request around it",
    )
    args = parser.parse_args()
    # Keep the service's JSON request log (it is part of the cost) but out of the terminal.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/profile.db"
        if url.startswith("postgresql"):
            _fresh_postgres(url)
            atexit.register(_drop_postgres, url)
            url = "postgresql+psycopg://" + url.split("://", 1)[1]
        app, floor, ceiling, cookie, public_id, key = build_apps(url)
        # Alembic's logging configuration (run by the migration above) gives the root logger a
        # handler that gunicorn's workers do not have; it would format every line twice.
        logging.getLogger().handlers.clear()
        specs = requests_for(cookie, public_id, key)
        specs.pop("_cookie")
        if args.pyinstrument:
            from pyinstrument import Profiler

            spec = specs[args.pyinstrument]
            call_loop(app.wsgi_app, spec, cookie, 200)
            profiler = Profiler(interval=0.0005)
            profiler.start()
            call_loop(app.wsgi_app, spec, cookie, args.count)
            profiler.stop()
            show_all = os.environ.get("PROFILE_ALL") == "1"
            sys.__stdout__.write(profiler.output_text(unicode=True, show_all=show_all))
            return 0
        if args.verify_split:
            verify_split(app, floor, ceiling, url, cookie, specs["POST verify"], key, args.count)
            return 0
        if args.breakdown:
            breakdown(app, floor, ceiling, cookie, specs["GET /api/account"], args.count)
            return 0
        results = {}
        for label, spec in specs.items():
            apps = {"service": app, "floor": floor, "ceiling": ceiling}
            if label not in FLOORED:
                del apps["floor"]
            for each in apps.values():
                call_loop(each.wsgi_app, spec, cookie, 200)  # warm
            micros = interleaved(apps, spec, cookie, args.count)
            results[label] = {f"{name}_us": round(value) for name, value in micros.items()}
            floor_part = ""
            if "floor" in micros:
                floor_part = (
                    f"floor {micros['floor']:6.1f} µs  "
                    f"service/floor {micros['service'] / micros['floor']:5.2f}  "
                )
            print(
                f"{label:32s} service {micros['service']:7.1f} µs  {floor_part}"
                f"ceiling {micros['ceiling']:6.1f} µs  "
                f"service/ceiling {micros['service'] / micros['ceiling']:5.2f}",
                file=sys.stdout,
            )
        print(json.dumps(results), file=sys.stdout)
        logging.shutdown()
    return 0


def per_call(function, count: int) -> float:
    """CPU µs per call of `function` (the median of three rounds, after a warm-up)."""
    for _ in range(count // 10):
        function()
    rounds = []
    for _ in range(3):
        began = time.process_time()
        for _ in range(count):
            function()
        rounds.append((time.process_time() - began) / count * 1e6)
    return sorted(rounds)[1]


def breakdown(app, floor, ceiling, cookie: str, spec: dict, count: int) -> None:
    """Print what GET /api/account costs on top of the floor and the ceiling, and its main
    pieces."""
    from werkzeug.test import EnvironBuilder

    from smartcv_account import clock, principal
    from smartcv_account.extensions import db
    from smartcv_account.schemas.account import account_schema
    from smartcv_account.services import accounts

    def whole(wsgi):
        return per_call(lambda: call_loop(wsgi, spec, cookie, 1), count)

    rows = {
        "ceiling (bare Flask)": whole(ceiling.wsgi_app),
        "floor (bare Flask, the hash and one SELECT)": whole(floor.wsgi_app),
        "service": whole(app.wsgi_app),
    }
    request_log = logging.getLogger("smartcv_account.requests")
    request_log.disabled = True
    rows["service without its request log line"] = whole(app.wsgi_app)
    request_log.disabled = False
    environ = EnvironBuilder(path="/api/account", headers={"Cookie": cookie}).get_environ()
    token = cookie.split("=", 1)[1]
    with app.request_context(environ):

        def session_check():
            principal.load(token, clock.now())
            db.session.remove()  # as each request ends: the transaction and checkout with it

        rows["  session check (one SELECT, connection checkout and return)"] = per_call(
            session_check, count
        )
        user = principal.load(token, clock.now())
        rows["  account_view (renewal check, usage, plan snapshot)"] = per_call(
            lambda: accounts.account_view(user), count
        )
        view = accounts.account_view(user)
        rows["  account_schema.dump (marshmallow)"] = per_call(
            lambda: account_schema.dump(view), count
        )
    for label, micros in rows.items():
        print(f"{label:60s} {micros:8.1f} µs", file=sys.stdout)
    print(json.dumps({k.strip(): round(v, 1) for k, v in rows.items()}), file=sys.stdout)


def verify_split(
    app, floor, ceiling, url: str, cookie: str, spec: dict, key: str, count: int
) -> None:
    """Print the verify call's CPU per request with parts of it replaced by their result,
    beside the stack floor, the floor and the ceiling, all in alternating batches of five
    (`--verify-split`):

    - service: the call as it is;
    - without its statements' database work: each statement's parameters still converted,
      the pool's connection still taken, the row handed back without the driver's execute;
    - with its answer made in advance: `key_check.verify` returns a ready answer, so what is
      left is the request around it (hooks, body, schemas, log line).
    """
    from bench import stack_app
    from smartcv_account import clock, driver, principal
    from smartcv_account.logs import REQUEST_LOGGER
    from smartcv_account.services import key_check, key_secrets, usage

    os.environ.setdefault("INTERNAL_API_TOKEN", TOKEN)
    request_log = logging.getLogger(REQUEST_LOGGER)
    handlers = list(request_log.handlers)
    stack = stack_app.create_app(url)
    request_log.handlers[:] = handlers  # one line per request, through the service's handler
    verify, run = key_check.verify, driver.DriverStatement.run
    with app.test_request_context():
        answer = verify(key, "resumes:read", True)
        engine = principal.autocommit_engine()
        counting = key_check._statements(engine).counting
        now = clock.now()
        bound = {"k_hash": key_secrets.secret_hash(key), "k_scope": 1, "now": now}
        with driver.pooled(engine) as connection:
            parameters = bound | usage.counting_parameters(1, now)
            row = run(counting, connection, parameters, commit=True)

    def without_database(self, connection, parameters, commit=False):
        self.bound(parameters)
        return row

    variants = {
        "service": (verify, run),
        "service, statements' database work left out": (verify, without_database),
        "service, answer made in advance": (lambda *_: answer, run),
    }
    others = {"stack floor": stack, "floor": floor, "ceiling": ceiling}
    totals = dict.fromkeys([*variants, *others], 0.0)
    for each in (app, *others.values()):
        call_loop(each.wsgi_app, spec, cookie, 200)  # warm
    rounds = max(count // 5, 1)
    try:
        for _ in range(rounds):
            for label, (verifying, running) in variants.items():
                key_check.verify, driver.DriverStatement.run = verifying, running
                totals[label] += call_loop(app.wsgi_app, spec, cookie, 5)
            key_check.verify, driver.DriverStatement.run = verify, run
            for label, other in others.items():
                totals[label] += call_loop(other.wsgi_app, spec, cookie, 5)
    finally:
        key_check.verify, driver.DriverStatement.run = verify, run
    for label, total in totals.items():
        print(f"{label:48s} {total / rounds:8.1f} µs", file=sys.stdout)
    print(json.dumps({k: round(v / rounds, 1) for k, v in totals.items()}), file=sys.stdout)


def _fresh_postgres(url: str) -> None:
    """Recreate the profile's own PostgreSQL database (the bench's helper)."""
    from bench.run import recreate_postgres

    recreate_postgres(url)


def _drop_postgres(url: str) -> None:
    """Drop it again once the profile is done (its connections closed first)."""
    from bench.run import drop_postgres
    from smartcv_account.extensions import db

    for app in _APPS:
        with app.app_context():
            db.engine.dispose()
    drop_postgres(url)


_APPS: list = []


if __name__ == "__main__":
    sys.exit(main())
