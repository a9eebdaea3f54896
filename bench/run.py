"""Benchmark the authenticated hot path against its database floor and a bare Flask ceiling.

Run it through `bench/run.sh` (which installs wrk and the chart's dependencies first). For each
database (SQLite, PostgreSQL) it:

1. creates a fresh database, migrates it (`flask db upgrade`) and seeds the plans;
2. starts three apps under gunicorn with the very same config file and flags (gunicorn.conf.py,
   sync workers, -w 2 unless --workers says otherwise, loopback): the service (`wsgi:app`),
   the floor (`bench/floor_app.py`: a bare Flask app doing only the endpoint's database work)
   and the ceiling (`bench/ceiling_app.py`: a bare Flask app doing no work at all);
3. registers and logs users in over HTTP (bcrypt at the service's configured rounds) and
   subscribes half of them to Premium through the local gateway;
4. checks that every server answers every request with a 2xx, and that the service and the
   floor read each user's own row (the email in the answer) and really change the counter
   they write: any failure ends the run with a non-zero exit;
5. for each endpoint, drives the servers with byte-identical requests, interleaved in rounds
   (service, floor, ceiling, then the reverse; three rounds by default) so drift on the
   machine cancels out; a non-2xx answer during a run also ends it;
6. prints requests/s, p50 and p99 latency, the ratio to the floor (reads against the read
   floor, the usage call against the write floor) and to the ceiling (medians of the rounds)
   and the budget's verdict, writes everything as JSON and draws a PNG chart; every process
   it started is stopped on the way out, whatever happens.

Nothing here is asserted by the unit tests: timing depends on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import http.client
import json
import os
import platform
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/smartcv_bench"
INTERNAL_TOKEN = "bench-internal-token-" + secrets.token_hex(8)
# The gunicorn targets, all started with the same config file, flags and environment.
TARGETS = {
    "service": "wsgi:app",
    "floor": "bench.floor_app:create_app()",
    "ceiling": "bench.ceiling_app:app",
}
PASSWORD = "bench Correct Horse Battery Staple 42"
# The performance budget of an endpoint measured against a floor, by the floor's kind, on both
# databases: the ratio to the floor's requests/s and the service's p99. A verdict, not asserted.
BUDGET = {
    "read": {"floor_ratio": 0.80, "p99_ms": 15.0},
    "write": {"floor_ratio": 0.70, "p99_ms": 25.0},
}


# --- processes ----------------------------------------------------------------------------------

_started: list[subprocess.Popen] = []


def free_port() -> int:
    """Return a loopback TCP port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop(process: subprocess.Popen) -> None:
    """Stop a gunicorn we started: TERM to the master, then KILL its whole group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
    # The group holds only what this master forked (start_new_session), never anyone else's.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    if process in _started:
        _started.remove(process)


def stop_all() -> None:
    """Stop every server this run started (called on exit and on SIGINT/SIGTERM)."""
    for process in list(_started):
        stop(process)


@dataclass
class Server:
    """A gunicorn serving one WSGI target on loopback."""

    name: str
    target: str
    port: int
    process: subprocess.Popen
    log_path: Path

    @property
    def address(self) -> tuple[str, int]:
        """Host and port."""
        return ("127.0.0.1", self.port)


def start_server(
    name: str, target: str, env: dict[str, str], workdir: Path, workers: int = 2
) -> Server:
    """Start gunicorn with the project's config file and the benchmark's fixed flags."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    command = [
        str(VENV_BIN / "gunicorn"),
        "--config",
        str(ROOT / "gunicorn.conf.py"),
        "--workers",
        str(workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{port}",
        target,
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _started.append(process)
    server = Server(name, target, port, process, log_path)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited at start:\n{log_path.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            # The service's health check; the floor's runs SELECT 1, the ceiling's catch-all
            # answers it too.
            if call(server, "GET", "/healthz")[0] == 200:
                return server
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer within 60 s:\n{log_path.read_text()}")


def call(
    server: Server, method: str, path: str, headers: dict | None = None, body: dict | None = None
) -> tuple[int, dict, dict]:
    """Make one HTTP request; return status, response headers and the JSON body (or {})."""
    connection = http.client.HTTPConnection(*server.address, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        sent = dict(headers or {})
        if payload is not None:
            sent["Content-Type"] = "application/json"
        connection.request(method, path, body=payload, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {}
        return response.status, dict(response.getheaders()), data
    finally:
        connection.close()


# --- databases and seeding ----------------------------------------------------------------------


def flask_cli(env: dict[str, str], *args: str) -> None:
    """Run `flask --app wsgi ARGS` as an operator would."""
    result = subprocess.run(
        [sys.executable, "-m", "flask", "--app", "wsgi", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")


def recreate_postgres(url: str) -> None:
    """Drop and create the benchmark's own PostgreSQL database (never any other)."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = target.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{target.database}"')


def drop_postgres(url: str) -> None:
    """Drop the benchmark's PostgreSQL database."""
    import psycopg
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = target.set(database="postgres", drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


def postgres_reachable(url: str) -> bool:
    """Tell whether the PostgreSQL server of `url` accepts connections."""
    try:
        import psycopg
        from sqlalchemy.engine import make_url

        admin = make_url(url).set(database="postgres", drivername="postgresql")
        with psycopg.connect(admin.render_as_string(hide_password=False), connect_timeout=3):
            return True
    except Exception as error:  # noqa: BLE001 - any failure means: skip PostgreSQL
        print(f"  PostgreSQL not reachable ({type(error).__name__}: {error}); skipping it.")
        return False


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


# --- the endpoints driven -----------------------------------------------------------------------


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


def endpoints(users: list[BenchUser]) -> list[Endpoint]:
    """The four endpoints, each cycling over every seeded user (free and premium)."""
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


# --- load generators ----------------------------------------------------------------------------

LUA_TEMPLATE = r"""
-- Generated by bench/run.py: cycles through pre-formatted requests, prints a JSON summary.
local specs = %(specs)s
local prepared = {}
local index = 0

function init(args)
  for _, spec in ipairs(specs) do
    table.insert(prepared, wrk.format(spec.method, spec.path, spec.headers, spec.body))
  end
  index = math.random(#prepared)  -- threads start at different users
end

function request()
  index = index %% #prepared + 1
  return prepared[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"mean_us": %%.1f, "errors": {"connect": %%d, "read": %%d, "write": %%d, ' ..
    '"status": %%d, "timeout": %%d}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def lua_string(text: str) -> str:
    """Quote a Python string as a Lua string literal."""
    return json.dumps(text)  # JSON string escapes are valid Lua escapes for ASCII text


def lua_script(endpoint: Endpoint) -> str:
    """Return a wrk script that sends this endpoint's requests in turn."""
    items = []
    for spec in endpoint.requests:
        headers = ", ".join(f"[{lua_string(k)}] = {lua_string(v)}" for k, v in spec.headers.items())
        body = lua_string(spec.body) if spec.body is not None else "nil"
        items.append(
            f"{{method = {lua_string(spec.method)}, path = {lua_string(spec.path)}, "
            f"headers = {{{headers}}}, body = {body}}}"
        )
    return LUA_TEMPLATE % {"specs": "{\n  " + ",\n  ".join(items) + "\n}"}


@dataclass
class Measurement:
    """One load run against one server."""

    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int


def run_wrk(
    server: Server, endpoint: Endpoint, args: argparse.Namespace, seconds: float, workdir: Path
) -> Measurement:
    """Drive `server` with wrk for `seconds` and parse the script's JSON summary."""
    script = workdir / "endpoint.lua"
    script.write_text(lua_script(endpoint))
    command = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{seconds:g}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        f"http://127.0.0.1:{server.port}",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60)
    for line in result.stdout.splitlines():
        if line.startswith("BENCH_RESULT "):
            data = json.loads(line.removeprefix("BENCH_RESULT "))
            errors = sum(data["errors"].values())
            return Measurement(
                rps=data["requests"] / (data["duration_us"] / 1e6),
                p50_ms=data["p50_us"] / 1000,
                p99_ms=data["p99_us"] / 1000,
                requests=data["requests"],
                errors=errors,
            )
    raise RuntimeError(f"wrk printed no result:\n{result.stdout}\n{result.stderr}")


async def _python_connection(
    raw: list[bytes],
    start: int,
    until: float,
    latencies: list[float],
    counters: dict,
    address: tuple[str, int],
) -> None:
    """One keep-alive connection sending requests back to back until `until`."""
    reader, writer = await asyncio.open_connection(*address)
    index = start
    try:
        while time.perf_counter() < until:
            request = raw[index % len(raw)]
            index += 1
            began = time.perf_counter()
            writer.write(request)
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - began)
            status = int(status_line.split()[1])
            counters["errors"] += not 200 <= status < 400
    finally:
        writer.close()


def _python_worker(
    raw: list[bytes], connections: int, seconds: float, address, offset: int, queue
) -> None:
    """A load-generator process: `connections` asyncio connections for `seconds`."""
    latencies: list[float] = []
    counters = {"errors": 0}

    async def main() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _python_connection(raw, offset + i, until, latencies, counters, address)
                for i in range(connections)
            )
        )

    began = time.perf_counter()
    asyncio.run(main())
    queue.put((latencies, counters["errors"], time.perf_counter() - began))


def run_python(
    server: Server, endpoint: Endpoint, args: argparse.Namespace, seconds: float, workdir: Path
) -> Measurement:
    """The fallback load generator when wrk is unavailable (slower: it shares the 2 cores)."""
    import multiprocessing

    raw = []
    for spec in endpoint.requests:
        body = spec.body.encode() if spec.body is not None else b""
        lines = [f"{spec.method} {spec.path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
        lines += [f"{k}: {v}" for k, v in spec.headers.items()]
        if body:
            lines.append(f"Content-Length: {len(body)}")
        raw.append(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    queue = multiprocessing.Queue()
    per_process = max(1, args.connections // args.threads)
    workers = [
        multiprocessing.Process(
            target=_python_worker,
            args=(raw, per_process, seconds, server.address, n * per_process, queue),
        )
        for n in range(args.threads)
    ]
    for worker in workers:
        worker.start()
    results = [queue.get(timeout=seconds + 60) for _ in workers]
    for worker in workers:
        worker.join()
    latencies = sorted(x for result in results for x in result[0])
    elapsed = max(result[2] for result in results)
    errors = sum(result[1] for result in results)
    if not latencies:
        raise RuntimeError("the Python load generator completed no request")

    def percentile(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p / 100 * len(latencies)))] * 1000

    return Measurement(
        len(latencies) / elapsed, percentile(50), percentile(99), len(latencies), errors
    )


# --- one database -------------------------------------------------------------------------------


def round_summary(rounds: list[dict]) -> dict:
    """Medians over the rounds (each ratio is the median of the per-round ratios)."""

    def median(server: str, key: str) -> float:
        return statistics.median(r[server][key] for r in rounds)

    summary = {
        "rps": median("service", "rps"),
        "p50_ms": median("service", "p50_ms"),
        "p99_ms": median("service", "p99_ms"),
        "ceiling_rps": median("ceiling", "rps"),
        "ceiling_p50_ms": median("ceiling", "p50_ms"),
        "ceiling_p99_ms": median("ceiling", "p99_ms"),
        "ratio": statistics.median(r["ratio"] for r in rounds),
    }
    if "floor" in rounds[0]:
        summary |= {
            "floor_rps": median("floor", "rps"),
            "floor_p50_ms": median("floor", "p50_ms"),
            "floor_p99_ms": median("floor", "p99_ms"),
            "floor_ratio": statistics.median(r["floor_ratio"] for r in rounds),
        }
    return summary


def measure_round(
    servers: dict[str, Server], endpoint: Endpoint, args: argparse.Namespace, workdir: Path
) -> dict:
    """Drive each server once in turn; return their measurements and the service's ratios."""
    generator = run_wrk if args.generator == "wrk" else run_python
    measured = {}
    for name, server in servers.items():
        measured[name] = generator(server, endpoint, args, args.duration, workdir)
    errors = {name: m.errors for name, m in measured.items() if m.errors}
    if errors:
        logs = ", ".join(str(servers[name].log_path) for name in errors)
        raise RuntimeError(f"{endpoint.label}: non-2xx or failed requests {errors} (see {logs})")
    result: dict = {name: asdict(m) for name, m in measured.items()}
    result["ratio"] = measured["service"].rps / measured["ceiling"].rps
    if "floor" in measured:
        result["floor_ratio"] = measured["service"].rps / measured["floor"].rps
    return result


def bench_database(kind: str, database_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Seed one database, start the three servers, and measure every endpoint."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    env.update(
        {
            "DATABASE_URL": database_url,
            "SMARTCV_ENV": "development",
            "SECRET_KEY": "bench-" + secrets.token_hex(24),
            "SESSION_COOKIE_SECURE": "0",
            "RATELIMIT_ENABLED": "0",
            "BILLING_PROVIDER": "local",
            "INTERNAL_API_TOKEN": INTERNAL_TOKEN,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.pop("BCRYPT_ROUNDS", None)  # the service's default (12): login costs what it costs
    env.pop("GUNICORN_ACCESS_LOG", None)  # same log settings for all: gunicorn.conf.py's
    print(f"\n[{kind}] migrating and seeding plans")
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "seed-plans")
    servers = {}
    for name, target in TARGETS.items():
        servers[name] = start_server(f"{kind}-{name}", target, env, workdir, args.workers)
    service = servers["service"]
    try:
        print(f"[{kind}] registering and logging in {args.users} users (bcrypt, 12 rounds)")
        began = time.perf_counter()
        users = seed_users(service, args.users)
        print(f"[{kind}] seeded in {time.perf_counter() - began:.1f} s")
        for name in ("service", "floor"):
            check_reads_rows(servers[name], users)
            check_write_counts(servers[name], users[0])
        generator = run_wrk if args.generator == "wrk" else run_python
        results: dict[str, dict] = {}
        for endpoint in endpoints(users):
            if args.only and not any(word in endpoint.label for word in args.only):
                continue
            driven = {name: servers[name] for name in ("service", "floor", "ceiling")}
            if endpoint.floor is None:
                del driven["floor"]
            for server in driven.values():
                check_endpoint(server, endpoint)
                generator(server, endpoint, args, args.warmup, workdir)  # imports, pools, caches
            rounds = []
            for number in range(args.pairs):
                # Service, floor, ceiling, then the reverse: the service always runs next to
                # the floor, and a steady drift weighs on each side alike.
                order = list(driven) if number % 2 == 0 else list(reversed(driven))
                rounds.append(measure_round({n: driven[n] for n in order}, endpoint, args, workdir))
            summary = round_summary(rounds)
            results[endpoint.label] = {"floor": endpoint.floor, "rounds": rounds, "median": summary}
            floor = (
                f"floor {summary['floor_rps']:6.0f} rps  x{summary['floor_ratio']:.3f}  "
                if endpoint.floor
                else ""
            )
            print(
                f"[{kind}] {endpoint.label:38s} {summary['rps']:6.0f} rps  "
                f"p50 {summary['p50_ms']:6.2f} ms  p99 {summary['p99_ms']:6.2f} ms  {floor}"
                f"ceiling {summary['ceiling_rps']:6.0f} rps  x{summary['ratio']:.3f}"
            )
        return results
    finally:
        for server in servers.values():
            stop(server.process)


# --- output -------------------------------------------------------------------------------------


def verdicts(report: dict) -> list[dict]:
    """The budget against the medians: one verdict per endpoint with a floor, per database."""
    found = []
    for kind, results in report["results"].items():
        for label, result in results.items():
            budget = BUDGET.get(result["floor"] or "")
            if budget is None:
                continue
            m = result["median"]
            ratio_met = m["floor_ratio"] >= budget["floor_ratio"]
            p99_met = m["p99_ms"] < budget["p99_ms"]
            found.append(
                {
                    "database": kind,
                    "endpoint": label,
                    "floor": result["floor"],
                    "floor_ratio": m["floor_ratio"],
                    "floor_ratio_budget": budget["floor_ratio"],
                    "floor_ratio_met": ratio_met,
                    "p99_ms": m["p99_ms"],
                    "p99_ms_budget": budget["p99_ms"],
                    "p99_met": p99_met,
                }
            )
    return found


def print_table(report: dict) -> None:
    """Print the medians per database and endpoint, and the budget's verdict."""
    print("\nMedians of", report["config"]["rounds"], "rounds,", report["config"]["load"])
    print(
        f"{'database':10s} {'endpoint':38s} {'rps':>6s} {'p50 ms':>7s} {'p99 ms':>7s} "
        f"{'floor':>5s} {'floor rps':>9s} {'/floor':>6s} {'ceiling rps':>11s} {'/ceiling':>8s}"
    )
    for kind, results in report["results"].items():
        for label, result in results.items():
            m = result["median"]
            floor = (
                f"{result['floor']:>5s} {m['floor_rps']:9.0f} {m['floor_ratio']:6.3f}"
                if result["floor"]
                else f"{'-':>5s} {'-':>9s} {'-':>6s}"
            )
            print(
                f"{kind:10s} {label:38s} {m['rps']:6.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} "
                f"{floor} {m['ceiling_rps']:11.0f} {m['ratio']:8.3f}"
            )
    for v in report["budget"]:
        print(
            f"budget {v['endpoint']} on {v['database']}: {v['floor']} floor ratio "
            f"{v['floor_ratio']:.3f} >= {v['floor_ratio_budget']}: "
            f"{'met' if v['floor_ratio_met'] else 'NOT MET'}; p99 {v['p99_ms']:.2f} ms "
            f"< {v['p99_ms_budget']}: {'met' if v['p99_met'] else 'NOT MET'}"
        )


def draw_chart(report: dict, path: Path) -> None:
    """Draw throughput against the floor and the ceiling, and latency, per endpoint and
    database."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = list(report["results"])
    fig, axes = plt.subplots(2, len(kinds), figsize=(7 * len(kinds), 9), squeeze=False)
    for column, kind in enumerate(kinds):
        results = report["results"][kind]
        labels = [label.replace(" /api", "\n/api") for label in results]
        medians = [r["median"] for r in results.values()]
        x = range(len(medians))
        top = axes[0][column]
        width = 0.27
        top.bar([i - width for i in x], [m["rps"] for m in medians], width, label="service")
        top.bar(
            list(x),
            [m.get("floor_rps", 0) for m in medians],
            width,
            label="floor (bare Flask, same database work)",
            color="#7a9cc6",
        )
        top.bar(
            [i + width for i in x],
            [m["ceiling_rps"] for m in medians],
            width,
            label="ceiling (bare Flask, no work)",
            color="#bbbbbb",
        )
        for i, m in zip(x, medians, strict=True):
            if "floor_ratio" in m:
                top.annotate(
                    f"{m['floor_ratio']:.2f}", (i - width, m["rps"]), ha="center", va="bottom"
                )
        top.set_title(f"{kind}: requests/s (ratio to the floor above the service's bar)")
        top.set_xticks(list(x), labels, fontsize=8)
        top.set_ylabel("requests per second")
        # Headroom above the tallest bar for the legend.
        top.set_ylim(0, 1.35 * max(max(m["rps"], m["ceiling_rps"]) for m in medians))
        top.legend(loc="upper right", fontsize=8)
        bottom = axes[1][column]
        half = width * 1.4 / 2
        bottom.bar([i - half for i in x], [m["p50_ms"] for m in medians], width * 1.4, label="p50")
        bottom.bar([i + half for i in x], [m["p99_ms"] for m in medians], width * 1.4, label="p99")
        for floor, budget in BUDGET.items():
            bottom.axhline(
                budget["p99_ms"],
                color="red",
                linestyle="--" if floor == "read" else ":",
                label=f"p99 budget, {floor}s",
            )
        bottom.set_title(f"{kind}: service latency (ms)")
        bottom.set_xticks(list(x), labels, fontsize=8)
        bottom.set_ylabel("milliseconds")
        bottom.set_ylim(0, 1.35 * max(max(m["p99_ms"] for m in medians), BUDGET["write"]["p99_ms"]))
        bottom.legend(loc="upper left", fontsize=8)
    config = report["config"]
    gunicorn = config["gunicorn"].split(" --bind")[0]
    fig.suptitle(
        f"SmartCV Account hot path vs its database floor, {gunicorn}, {config['load']}, "
        f"median of {config['rounds']} rounds ({report['machine']['cpus']} CPUs)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --- main ---------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; the defaults are the documented measurement (docs/performance.md)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG_URL))
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds per server, unrecorded")
    parser.add_argument(
        "--pairs", type=int, default=3, help="rounds per endpoint (service, floor, ceiling)"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers, the same for every server"
    )
    parser.add_argument("--only", nargs="*", help="endpoints whose label contains these words")
    parser.add_argument(
        "--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write bench/results/bench.json and bench.png; 1 if it failed."""
    args = parse_args(argv)
    atexit.register(stop_all)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: sys.exit(130))
    load_before = os.getloadavg()
    report = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_before": load_before,
        },
        "config": {
            "generator": args.generator,
            "load": f"{args.generator} -t{args.threads} -c{args.connections} -d{args.duration:g}s",
            "rounds": args.pairs,
            "users": args.users,
            "gunicorn": f"gunicorn.conf.py --workers {args.workers} --worker-class sync"
            " --bind 127.0.0.1:<port>",
            "targets": TARGETS,
            "budget": BUDGET,
        },
        "results": {},
    }
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    if args.generator == "python":
        print("wrk not found: using the Python load generator (it competes for the same cores)")
    workdir = Path(tempfile.mkdtemp(prefix="smartcv-bench-"))
    try:
        for kind in args.databases.split(","):
            if kind == "sqlite":
                url = f"sqlite:///{workdir / 'bench.db'}"
                report["results"][kind] = bench_database(kind, url, args, workdir)
            elif kind == "postgresql":
                if not postgres_reachable(args.pg_url):
                    continue
                recreate_postgres(args.pg_url)
                try:
                    report["results"][kind] = bench_database(kind, args.pg_url, args, workdir)
                finally:
                    drop_postgres(args.pg_url)
            else:
                raise SystemExit(f"unknown database {kind!r}")
    except RuntimeError as error:
        # A server that would not start, a wrong answer, a failed request: no figures.
        print(f"\nbenchmark failed: {error}", file=sys.stderr)
        return 1
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    report["machine"]["load_average_after"] = os.getloadavg()
    report["budget"] = verdicts(report)
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / "bench.json", args.out / "bench.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    draw_chart(report, png_path)
    print(f"\nwrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
