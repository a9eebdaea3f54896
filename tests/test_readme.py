"""The README's shell blocks run as a newcomer pastes them: all of them, twice in a row.

How the test maps onto the README. A folder holding links to the checkout's files (with an
`instance/` of its own, so the service gets a fresh SQLite database) stands for the newcomer's
clone. The first block is the two commands: its first line starts the service, run as the tour
says, `bash scripts/dev.sh 2> dev.log`, in the background on a free `PORT`; its second line,
`bash scripts/test.sh`, runs the suite this test belongs to and is not run again here. Every
other bash block then runs in that folder, in README order, under `bash -e -o pipefail` with the
test run's environment (less `DATABASE_URL`: the newcomer's service uses its SQLite file) and
`PORT` set, as the README tells; then every one of them again against the same service.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from .gunicorn_helpers import ROOT, free_port

pytestmark = pytest.mark.slow

BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
START = "bash scripts/dev.sh"
SUITE = "bash scripts/test.sh"
# The service as the tour section starts it: the email section reads the links from dev.log.
STARTED_AS = f"{START} 2> dev.log"
# Files the blocks write in the folder they run in: never linked from the real checkout.
WRITTEN = {"instance", "dev.log", "jar.txt", "bea.txt", ".git"}


def readme_blocks() -> list[str]:
    """The README's bash blocks, in order."""
    return BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8"))


def command_lines(block: str) -> list[str]:
    """The block's commands, without comments and blank lines."""
    lines = (line.split("#", 1)[0].strip() for line in block.splitlines())
    return [line for line in lines if line]


def test_the_first_block_is_the_start_and_test_commands():
    assert command_lines(readme_blocks()[0]) == [START, SUITE]
    assert f"`{STARTED_AS}`" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.fixture
def clone(tmp_path) -> Path:
    """A folder that looks like a fresh clone: links to the checkout's files, no instance/."""
    folder = tmp_path / "smartcv-account"
    folder.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in WRITTEN:
            (folder / entry.name).symlink_to(entry)
    return folder


@pytest.fixture
def environment() -> dict[str, str]:
    """The newcomer's shell: this run's environment on a free port, no database named."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYTEST_") and key != "DATABASE_URL"
    }
    env["PORT"] = str(free_port())
    return env


@pytest.fixture
def service(clone, environment) -> Iterator[Path]:
    """`bash scripts/dev.sh 2> dev.log` running in the clone until the test ends."""
    process = subprocess.Popen(
        ["bash", "-c", STARTED_AS],
        cwd=clone,
        env=environment,
        stdout=subprocess.DEVNULL,
        start_new_session=True,  # its own process group: dev.sh, the mail worker, gunicorn
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{environment['PORT']}", process, clone)
        yield clone
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def wait_until_serving(base: str, process: subprocess.Popen, clone: Path) -> None:
    """Poll /healthz until it answers 200; fail with dev.log if the service never does."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"dev.sh exited with {process.returncode}:\n{log(clone)}")
        try:
            if requests.get(base + "/healthz", timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the service did not answer /healthz in 120 s:\n{log(clone)}")


def log(clone: Path) -> str:
    """The end of the service's dev.log."""
    path = clone / "dev.log"
    return path.read_text(errors="replace")[-4000:] if path.exists() else "(no dev.log)"


def test_every_block_of_the_readme_runs_twice_as_pasted(service, environment):
    blocks = readme_blocks()[1:]
    assert len(blocks) >= 2, "the README lost its tour or its email section"
    for run in (1, 2):
        for number, block in enumerate(blocks, start=2):
            result = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block],
                cwd=service,
                env=environment,
                capture_output=True,
                text=True,
                timeout=180,
            )
            assert result.returncode == 0, (
                f"README block {number}, run {run}, exited with {result.returncode}\n"
                f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}\n"
                f"--- dev.log\n{log(service)}"
            )
