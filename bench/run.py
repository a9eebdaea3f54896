"""Benchmark the authenticated hot path against its database floor and a bare Flask ceiling.

Run it through `bench/run.sh` (which installs wrk and the chart's dependencies first). For each
database (SQLite, PostgreSQL) it:

1. creates a fresh database, migrates it (`flask db upgrade`) and seeds the plans;
2. starts three apps under gunicorn with the very same config file and flags (gunicorn.conf.py,
   sync workers, -w 2 unless --workers says otherwise, loopback): the service (`wsgi:app`),
   the floor (`bench/floor_app.py`: a bare Flask app doing only the endpoint's database work)
   and the ceiling (`bench/ceiling_app.py`: a bare Flask app doing no work at all);
3. registers and logs users in over HTTP (bcrypt at the service's configured rounds) and
   subscribes half of them to Premium through the local gateway; then writes 2,000 users with
   one API key each straight into the database (bench/seed_api_keys.py) for the verify call;
4. checks that every server answers every request with a 2xx, and that the service and the
   floor read each user's own row (the email in the answer) and really change the counter
   they write (the usage call's, and the verify call's for a key): any failure ends the run
   with a non-zero exit;
5. for each endpoint, drives the servers with byte-identical requests, interleaved in rounds
   (service, floor, ceiling, then the reverse; three rounds by default) so drift on the
   machine cancels out; a non-2xx answer during a run also ends it;
6. prints requests/s, p50 and p99 latency, the ratio to the floor (reads against the read
   floor, the usage call against the write floor, the verify call against its own write floor)
   and to the ceiling (medians of the rounds)
   and the budget's verdict, writes everything as JSON and draws a PNG chart; every process
   it started is stopped on the way out, whatever happens.

Nothing here is asserted by the unit tests: timing depends on the machine.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import platform
import secrets
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from .load import run_python, run_wrk
from .processes import (
    INTERNAL_TOKEN,
    ROOT,
    TARGETS,
    Server,
    drop_postgres,
    flask_cli,
    postgres_reachable,
    recreate_postgres,
    seed_api_keys,
    start_server,
    stop,
    stop_all,
)
from .report import BUDGET, draw_chart, print_table, round_summary, verdicts
from .workload import (
    Endpoint,
    check_endpoint,
    check_reads_rows,
    check_verify_counts,
    check_write_counts,
    endpoints,
    seed_users,
)

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/smartcv_bench"


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
        result["stack_ratio"] = measured["service"].rps / measured["stack"].rps
        result["stack_floor_ratio"] = measured["stack"].rps / measured["floor"].rps
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
        began = time.perf_counter()
        keys = seed_api_keys(env, args.keys, workdir) if args.keys else []
        print(
            f"[{kind}] {len(keys)} API keys of as many users seeded in"
            f" {time.perf_counter() - began:.1f} s"
        )
        for name in ("service", "floor", "stack"):
            check_reads_rows(servers[name], users)
            check_write_counts(servers[name], users[0])
            if keys:
                check_verify_counts(servers[name], keys[0])
        generator = run_wrk if args.generator == "wrk" else run_python
        results: dict[str, dict] = {}
        for endpoint in endpoints(users, keys):
            if not endpoint.requests:
                continue
            if args.only and not any(word in endpoint.label for word in args.only):
                continue
            driven = {name: servers[name] for name in ("service", "floor", "stack", "ceiling")}
            if endpoint.floor is None:
                del driven["floor"], driven["stack"]
            for server in driven.values():
                check_endpoint(server, endpoint)
                generator(server, endpoint, args, args.warmup, workdir)  # imports, pools, caches
            rounds = []
            for number in range(args.pairs):
                # Service, floor, stack, ceiling, then the reverse: the service always runs
                # next to the floor, and a steady drift weighs on each side alike.
                order = list(driven) if number % 2 == 0 else list(reversed(driven))
                rounds.append(measure_round({n: driven[n] for n in order}, endpoint, args, workdir))
            summary = round_summary(rounds)
            results[endpoint.label] = {"floor": endpoint.floor, "rounds": rounds, "median": summary}
            floor = (
                f"floor {summary['floor_rps']:6.0f} rps  x{summary['floor_ratio']:.3f}  "
                f"stack x{summary['stack_ratio']:.3f} (stack/floor "
                f"x{summary['stack_floor_ratio']:.3f})  "
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
        "--keys", type=int, default=2000, help="API keys (of as many users) the verify call cycles"
    )
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
