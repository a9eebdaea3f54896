"""Where the time of one request goes: the WSGI apps called in-process, without the network.

    .venv/bin/python bench/profile_hot_path.py           # CPU µs per request, service vs ceiling
    .venv/bin/python bench/profile_hot_path.py --pyinstrument "GET /api/account"   # a call tree
    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/smartcv_profile \
        .venv/bin/python bench/profile_hot_path.py      # the same on PostgreSQL (db recreated)

It seeds a throwaway database, signs a user in, and calls `app.wsgi_app` in a loop with a
prepared environ, timing the process's CPU (so other load on the machine barely moves the
numbers). The difference between the service and the ceiling is what the service adds to
Flask; gunicorn, the socket and the load generator come on top of both alike.
"""

from __future__ import annotations

import argparse
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
PASSWORD = "bench Correct Horse Battery Staple 42"


def build_apps(database_url: str):
    """Return (service app, ceiling app, cookie, public id) on a freshly seeded database."""
    import flask_migrate

    from bench.ceiling_app import app as ceiling
    from smartcv_account import catalogue, create_app
    from smartcv_account.services import billing

    app = create_app(
        {
            "SQLALCHEMY_DATABASE_URI": database_url,
            "SESSION_COOKIE_SECURE": False,
            "RATELIMIT_ENABLED": False,
            "INTERNAL_API_TOKEN": TOKEN,
            "BCRYPT_ROUNDS": 4,  # seeding only: login is not what is profiled here
        }
    )
    with app.app_context():
        flask_migrate.upgrade()
        billing.seed_plans(catalogue.PLANS, catalogue.COUPONS)
    client = app.test_client()
    email = "profile-user@example.com"
    body = {"email": email, "password": PASSWORD, "name": "Profile User"}
    assert client.post("/api/auth/register", json=body).status_code == 201
    response = client.post("/api/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.json
    public_id = response.json["data"]["id"]
    cookie = response.headers["Set-Cookie"].split(";", 1)[0]
    return app, ceiling, cookie, public_id


def requests_for(cookie: str, public_id: str) -> dict[str, dict]:
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


def main() -> int:
    """Print CPU µs per request for each endpoint and the ceiling, or one pyinstrument tree."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--pyinstrument", metavar="ENDPOINT", help='e.g. "GET /api/account"')
    args = parser.parse_args()
    # Keep the service's JSON request log (it is part of the cost) but out of the terminal.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the process's lifetime
    with tempfile.TemporaryDirectory() as tmp:
        url = os.environ.get("DATABASE_URL") or f"sqlite:///{tmp}/profile.db"
        if url.startswith("postgresql"):
            url = _fresh_postgres(url)
        app, ceiling, cookie, public_id = build_apps(url)
        specs = requests_for(cookie, public_id)
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
        results = {}
        for label, spec in specs.items():
            call_loop(app.wsgi_app, spec, cookie, 200)  # warm
            call_loop(ceiling.wsgi_app, spec, cookie, 200)
            service_us = call_loop(app.wsgi_app, spec, cookie, args.count)
            ceiling_us = call_loop(ceiling.wsgi_app, spec, cookie, args.count)
            results[label] = {"service_us": round(service_us), "ceiling_us": round(ceiling_us)}
            print(
                f"{label:32s} service {service_us:7.1f} µs  ceiling {ceiling_us:6.1f} µs  "
                f"added {service_us - ceiling_us:7.1f} µs",
                file=sys.stdout,
            )
        print(json.dumps(results), file=sys.stdout)
        logging.shutdown()
    return 0


def _fresh_postgres(url: str) -> str:
    """Recreate the profile's own PostgreSQL database and return its SQLAlchemy URL."""
    from run import drop_postgres, recreate_postgres  # noqa: F401 - same helpers as the bench

    recreate_postgres(url)
    return "postgresql+psycopg://" + url.split("://", 1)[1]


if __name__ == "__main__":
    sys.exit(main())
