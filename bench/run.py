"""Benchmark the authenticated hot path against a bare Flask ceiling, on SQLite and PostgreSQL.

Run it through `bench/run.sh` (which installs wrk and the chart's dependencies first). For each
database it:

1. creates a fresh database, migrates it (`flask db upgrade`) and seeds the plans;
2. starts the service (`wsgi:app`) and the ceiling (`bench.ceiling_app:app`) under gunicorn
   with the very same config file and flags (gunicorn.conf.py, sync workers, -w 2 unless
   --workers says otherwise, loopback);
3. registers and logs users in over HTTP (bcrypt at the service's configured rounds) and
   subscribes half of them to Premium through the local gateway;
4. for each endpoint, drives the service and the ceiling with byte-identical requests,
   interleaved A/B/A/B (three pairs by default) so drift on the machine cancels out;
5. prints requests/s, p50 and p99 latency and the ratio to the ceiling (medians of the
   pairs), writes everything as JSON and draws a PNG chart; every process it started is
   stopped on the way out, whatever happens.

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
PASSWORD = "bench Correct Horse Battery Staple 42"
# The performance budget per endpoint and database; printed as a verdict, never asserted.
BUDGET = {
    "GET /api/account": {
        "sqlite": {"ratio": 0.50, "p99_ms": 15.0},
        "postgresql": {"ratio": 0.35, "p99_ms": 15.0},
    },
    "POST /api/internal/users/{id}/usage": {
        "sqlite": {"ratio": 0.30, "p99_ms": 25.0},
        "postgresql": {"ratio": 0.25, "p99_ms": 25.0},
    },
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
            # The service's health check; the ceiling's catch-all answers it too.
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
    """A signed-in user: its public id and session cookie."""

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
        return BenchUser(public_id, cookie, premium)

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
    """An endpoint under test and the requests that exercise it."""

    label: str
    requests: list[RequestSpec] = field(default_factory=list)


def endpoints(users: list[BenchUser]) -> list[Endpoint]:
    """The four endpoints, each cycling over every seeded user (free and premium)."""
    json_type = {"Content-Type": "application/json"}
    bearer = {"Authorization": f"Bearer {INTERNAL_TOKEN}", **json_type}
    themes = ("dark", "light")
    return [
        Endpoint(
            "GET /api/account",
            [RequestSpec("GET", "/api/account", {"Cookie": u.cookie}) for u in users],
        ),
        Endpoint(
            "GET /api/account/subscription",
            [RequestSpec("GET", "/api/account/subscription", {"Cookie": u.cookie}) for u in users],
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
        ),
    ]


def check_endpoint(server: Server, endpoint: Endpoint) -> None:
    """Send each request once and insist on a 2xx: a fast 401 would be a fake result."""
    for spec in endpoint.requests:
        body = json.loads(spec.body) if spec.body else None
        headers = {k: v for k, v in spec.headers.items() if k != "Content-Type"}
        status, _, data = call(server, spec.method, spec.path, headers, body)
        if not 200 <= status < 300:
            raise RuntimeError(f"{server.name} {spec.method} {spec.path}: {status} {data}")


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


def pair_summary(pairs: list[dict]) -> dict:
    """Medians over the A/B pairs (the ratio is the median of the per-pair ratios)."""
    return {
        "rps": statistics.median(p["service"]["rps"] for p in pairs),
        "p50_ms": statistics.median(p["service"]["p50_ms"] for p in pairs),
        "p99_ms": statistics.median(p["service"]["p99_ms"] for p in pairs),
        "ceiling_rps": statistics.median(p["ceiling"]["rps"] for p in pairs),
        "ceiling_p50_ms": statistics.median(p["ceiling"]["p50_ms"] for p in pairs),
        "ceiling_p99_ms": statistics.median(p["ceiling"]["p99_ms"] for p in pairs),
        "ratio": statistics.median(p["ratio"] for p in pairs),
    }


def bench_database(kind: str, database_url: str, args: argparse.Namespace, workdir: Path) -> dict:
    """Seed one database, start both servers, and measure every endpoint against the ceiling."""
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
    env.pop("GUNICORN_ACCESS_LOG", None)  # same log settings for both: gunicorn.conf.py's
    print(f"\n[{kind}] migrating and seeding plans")
    flask_cli(env, "db", "upgrade")
    flask_cli(env, "seed-plans")
    service = start_server(f"{kind}-service", "wsgi:app", env, workdir, args.workers)
    ceiling = start_server(f"{kind}-ceiling", "bench.ceiling_app:app", env, workdir, args.workers)
    try:
        print(f"[{kind}] registering and logging in {args.users} users (bcrypt, 12 rounds)")
        began = time.perf_counter()
        users = seed_users(service, args.users)
        print(f"[{kind}] seeded in {time.perf_counter() - began:.1f} s")
        generator = run_wrk if args.generator == "wrk" else run_python
        results: dict[str, dict] = {}
        for endpoint in endpoints(users):
            if args.only and not any(word in endpoint.label for word in args.only):
                continue
            check_endpoint(service, endpoint)
            for server in (service, ceiling):  # warm both: imports, pools, caches
                generator(server, endpoint, args, args.warmup, workdir)
            pairs = []
            for _ in range(args.pairs):
                a = generator(service, endpoint, args, args.duration, workdir)
                b = generator(ceiling, endpoint, args, args.duration, workdir)
                if a.errors or b.errors:
                    raise RuntimeError(
                        f"{endpoint.label}: {a.errors} service / {b.errors} ceiling errors "
                        f"(see {service.log_path})"
                    )
                pairs.append({"service": asdict(a), "ceiling": asdict(b), "ratio": a.rps / b.rps})
            summary = pair_summary(pairs)
            results[endpoint.label] = {"pairs": pairs, "median": summary}
            print(
                f"[{kind}] {endpoint.label:38s} {summary['rps']:8.0f} rps  "
                f"p50 {summary['p50_ms']:6.2f} ms  p99 {summary['p99_ms']:6.2f} ms  "
                f"ceiling {summary['ceiling_rps']:7.0f} rps  ratio {summary['ratio']:.3f}"
            )
        return results
    finally:
        stop(ceiling.process)
        stop(service.process)


# --- output -------------------------------------------------------------------------------------


def print_table(report: dict) -> None:
    """Print the medians per database and endpoint, and the budget's verdict."""
    print("\nMedians of", report["config"]["pairs"], "A/B pairs,", report["config"]["load"])
    header = f"{'database':10s} {'endpoint':38s} {'rps':>8s} {'p50 ms':>7s} {'p99 ms':>7s}"
    print(header + f" {'ceiling rps':>11s} {'ratio':>6s}")
    for kind, results in report["results"].items():
        for label, result in results.items():
            m = result["median"]
            print(
                f"{kind:10s} {label:38s} {m['rps']:8.0f} {m['p50_ms']:7.2f} {m['p99_ms']:7.2f} "
                f"{m['ceiling_rps']:11.0f} {m['ratio']:6.3f}"
            )
    for label, budgets in BUDGET.items():
        for kind, budget in budgets.items():
            result = report["results"].get(kind, {}).get(label)
            if result is None:
                continue
            m = result["median"]
            print(
                f"budget {label} on {kind}: "
                f"ratio {m['ratio']:.3f} >= {budget['ratio']}: {m['ratio'] >= budget['ratio']}; "
                f"p99 {m['p99_ms']:.2f} ms < {budget['p99_ms']}: {m['p99_ms'] < budget['p99_ms']}"
            )


def draw_chart(report: dict, path: Path) -> None:
    """Draw throughput against the ceiling, and latency, per endpoint and database."""
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
        width = 0.38
        top.bar([i - width / 2 for i in x], [m["rps"] for m in medians], width, label="service")
        top.bar(
            [i + width / 2 for i in x],
            [m["ceiling_rps"] for m in medians],
            width,
            label="ceiling (bare Flask)",
            color="#bbbbbb",
        )
        for i, m in zip(x, medians, strict=True):
            top.annotate(f"{m['ratio']:.2f}x", (i - width / 2, m["rps"]), ha="center", va="bottom")
        top.set_title(f"{kind}: requests/s (ratio to the ceiling above the bar)")
        top.set_xticks(list(x), labels, fontsize=8)
        top.set_ylabel("requests per second")
        top.legend(loc="upper right", fontsize=8)
        bottom = axes[1][column]
        bottom.bar([i - width / 2 for i in x], [m["p50_ms"] for m in medians], width, label="p50")
        bottom.bar([i + width / 2 for i in x], [m["p99_ms"] for m in medians], width, label="p99")
        bottom.axhline(BUDGET["GET /api/account"][kind]["p99_ms"], color="red", linestyle="--")
        bottom.set_title(f"{kind}: service latency (ms)")
        bottom.set_xticks(list(x), labels, fontsize=8)
        bottom.set_ylabel("milliseconds")
        bottom.legend(loc="upper left", fontsize=8)
    config = report["config"]
    fig.suptitle(
        f"SmartCV Account hot path vs bare Flask, {config['gunicorn'].split(' --bind')[0]}, "
        f"{config['load']}, "
        f"median of {config['pairs']} A/B pairs ({report['machine']['cpus']} CPUs)"
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
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument(
        "--workers", type=int, default=2, help="gunicorn sync workers, the same for both servers"
    )
    parser.add_argument("--only", nargs="*", help="endpoints whose label contains these words")
    parser.add_argument(
        "--generator", choices=("wrk", "python"), default="wrk" if shutil.which("wrk") else "python"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write bench/results/bench.json and bench.png."""
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
            "pairs": args.pairs,
            "users": args.users,
            "gunicorn": f"gunicorn.conf.py --workers {args.workers} --worker-class sync"
            " --bind 127.0.0.1:<port>",
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
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    report["machine"]["load_average_after"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, png_path = args.out / "bench.json", args.out / "bench.png"
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    draw_chart(report, png_path)
    print(f"\nwrote {json_path} and {png_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
