"""Scenario 4b: login answers as slowly for an unknown email as for a wrong password.

gunicorn (one worker, BCRYPT_ROUNDS=12, rate limits off) on a scratch SQLite file; 40 samples
of each kind, interleaved so drift in machine load hits both alike. Prints both distributions,
the median difference and a permutation test's p-value. Passes when the medians are within 5%.

Run: `.venv/bin/python -m reliability.timing` (about 30 s).
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import requests

from .common import PASSWORD, distribution, flask_cli, gunicorns, service_env, write_result

SAMPLES = 40
PERMUTATIONS = 5000
MAX_MEDIAN_GAP = 0.05


def permutation_p_value(a: list[float], b: list[float], rounds: int = PERMUTATIONS) -> float:
    """Two-sided p-value of the difference of medians under random relabelling."""
    observed = abs(statistics.median(a) - statistics.median(b))
    pooled = a + b
    rng = random.Random(12345)
    extreme = 0
    for _ in range(rounds):
        rng.shuffle(pooled)
        left, right = pooled[: len(a)], pooled[len(a) :]
        if abs(statistics.median(left) - statistics.median(right)) >= observed:
            extreme += 1
    return (extreme + 1) / (rounds + 1)


def timed_login(url: str, email: str) -> tuple[float, int]:
    """Milliseconds one failed login takes, and its status."""
    started = time.perf_counter()
    response = requests.post(
        url + "/api/auth/login", json={"email": email, "password": "wrong guess 123"}, timeout=30
    )
    return (time.perf_counter() - started) * 1000, response.status_code


def main() -> int:
    """Run the scenario, write reliability/results/timing.json, return the exit status."""
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'timing.db'}"
        env = service_env(url, BCRYPT_ROUNDS="12", RATELIMIT_ENABLED="0")
        flask_cli(env, "db", "upgrade")
        with gunicorns(env, workers=1) as (g,):
            known = f"timing-{uuid.uuid4().hex[:8]}@example.com"
            body = {"email": known, "password": PASSWORD, "name": "Timing"}
            requests.post(g.url + "/api/auth/register", json=body, timeout=30).raise_for_status()
            for _ in range(3):  # warm both paths (the dummy hash is made on first use)
                timed_login(g.url, known)
                timed_login(g.url, f"nobody-{uuid.uuid4().hex}@example.com")
            unknown_ms, wrong_ms, statuses = [], [], set()
            for _ in range(SAMPLES):
                elapsed, status = timed_login(g.url, f"nobody-{uuid.uuid4().hex}@example.com")
                unknown_ms.append(elapsed)
                statuses.add(status)
                elapsed, status = timed_login(g.url, known)
                wrong_ms.append(elapsed)
                statuses.add(status)
    gap = abs(statistics.median(unknown_ms) - statistics.median(wrong_ms))
    relative = gap / statistics.median(wrong_ms)
    figures = {
        "scenario": "timing",
        "bcrypt_rounds": 12,
        "samples_each": SAMPLES,
        "statuses": sorted(statuses),
        "unknown_email_ms": distribution(unknown_ms),
        "wrong_password_ms": distribution(wrong_ms),
        "median_gap_ms": round(gap, 1),
        "median_gap_relative": round(relative, 4),
        "permutation_p_value": round(permutation_p_value(unknown_ms, wrong_ms), 4),
        "passed": statuses == {401} and relative <= MAX_MEDIAN_GAP,
    }
    write_result("timing", figures)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
