"""Scenario 2: SIGKILL a gunicorn worker under load; the master replaces it, no write is lost.

Run: `.venv/bin/python -m reliability.worker_crash` (about 30 s). Exits non-zero on failure.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from .common import gunicorns, scratch_database, service_env, terminate_on_sigterm, write_result
from .load import Load

WORKERS = 3
KILLS = 2
STEADY_SECONDS = 5


def worker_pids(master_pid: int) -> set[int]:
    """The pids of the master's live children (its workers)."""
    children: set[int] = set()
    for task in Path(f"/proc/{master_pid}/task").iterdir():
        text = (task / "children").read_text().split()
        children.update(int(pid) for pid in text)
    return children


def wait_for_replacement(master_pid: int, killed: int, timeout: float = 30) -> float:
    """Seconds until the master again has WORKERS children, none of them `killed`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        pids = worker_pids(master_pid)
        if len(pids) == WORKERS and killed not in pids:
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError(f"worker {killed} was not replaced within {timeout} s")


def main() -> int:
    """Run the scenario, write reliability/results/worker_crash.json, return the exit status."""
    terminate_on_sigterm()
    with scratch_database("crash") as url, gunicorns(service_env(url), workers=WORKERS) as (g,):
        load = Load(g.url, threads=8, max_seconds=90)
        load.start()
        kills = []
        try:
            time.sleep(STEADY_SECONDS)
            for _ in range(KILLS):
                victim = sorted(worker_pids(g.process.pid))[0]
                os.kill(victim, signal.SIGKILL)
                replaced = wait_for_replacement(g.process.pid, victim)
                kills.append({"worker_pid": victim, "replaced_after_s": round(replaced, 2)})
                time.sleep(STEADY_SECONDS)
        finally:
            load.stop()
        summary = load.summary()
        writes = load.verify(url)
        served_after = load.summary(since=time.monotonic() - STEADY_SECONDS)
    by_status = summary["by_status"]
    figures = {
        "scenario": "worker_crash",
        "workers": WORKERS,
        "load_threads": load.threads,
        "kills": kills,
        **summary,
        "writes": writes,
        "answers_2xx_after_last_replacement": sum(
            n for s, n in served_after["by_status"].items() if s.startswith("2")
        ),
        "passed": (
            len(kills) == KILLS
            and writes["lost_writes"] == 0
            and "500" not in by_status
            and summary["not_envelope"] == 0
            and served_after["by_status"].get("200", 0) > 0
        ),
    }
    write_result("worker_crash", figures)
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
