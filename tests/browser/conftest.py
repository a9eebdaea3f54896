"""Fixtures for the browser tests: a Chromium binary, installed on demand.

CI must not skip these tests silently: when /usr/bin/chromium is missing, the `chromium`
fixture runs scripts/install-browser.sh once (as root, with apt-get). Only when installing is
impossible (not root, or no apt-get) does it skip, saying why.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
INSTALL_SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install-browser.sh"


@pytest.fixture(scope="session")
def chromium() -> Path:
    """The Chromium binary; installed with scripts/install-browser.sh when it is missing."""
    if CHROMIUM.exists():
        return CHROMIUM
    reasons = []
    if os.geteuid() != 0:
        reasons.append("not running as root")
    if shutil.which("apt-get") is None:
        reasons.append("apt-get is not available")
    if reasons:
        reason = f"{CHROMIUM} is missing and cannot be installed: {', '.join(reasons)}"
        print(f"tests/browser: skipping: {reason}", file=sys.stderr)
        pytest.skip(reason)
    completed = subprocess.run(
        ["bash", str(INSTALL_SCRIPT)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if completed.returncode != 0 or not CHROMIUM.exists():
        pytest.fail(
            f"{INSTALL_SCRIPT} failed (exit {completed.returncode}):\n"
            f"{completed.stdout[-4000:]}\n{completed.stderr[-4000:]}"
        )
    return CHROMIUM
